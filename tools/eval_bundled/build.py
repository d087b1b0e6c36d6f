"""Build ``eval/bundled`` (queries, graded topical relevance, usability) from the topic brief's query list.

The set is version 2 of the bundled evaluation set. It starts from the frozen version 1 (``v1_queries.jsonl`` and
``v1_test.tsv`` next to this script), drops most parent queries (parents were 29 % of the personas, the brief asks
for about 10 %), corrects the label slips listed in issue 15, judges the 25 documents added in corpus version 2
against the kept queries, and adds the queries written from the brief in ``eval/bundled/README.md``: short keyword
searches, typos and missing umlauts, district/year/grade/subject constraints, staff looking for translated parent
letters, and questions the corpus does not answer (no qrels line at all).

Topical grades (``qrels/test.tsv``, read by ``kb eval``) are judged by hand; usability (``qrels/usability.tsv``) is
derived from the metadata of each judged document and the query's persona and language, with the rules in
:func:`usability` (documented in the README). Run from the repository root::

    python tools/eval_bundled/build.py          # writes eval/bundled/queries.jsonl, qrels/*.tsv, prints counts
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
OUT = ROOT / "eval" / "bundled"

# --- documents (aliases for the judgements below) ---------------------------------------------------------------
H = "kreis-herford/elternbrief-elternsprechtag.md"
HTR, HAR, HUK, HRU, HEN = (
    f"kreis-herford/elternbrief-elternsprechtag-{x}.md" for x in ("tr", "ar", "uk", "ru", "en")
)
HALL = (H, HTR, HAR, HUK, HRU, HEN)
BOT = "bottrop/elternbrief-rucksack-schule-de-tr.md"
BRU = "bottrop/unterrichtsmaterial-brueche-sprachsensibel-klasse-6.md"
MUF = "muelheim-an-der-ruhr/flyer-sprach-kita-de-ar.md"
MUC = "muelheim-an-der-ruhr/checkliste-erste-schulwoche-seiteneinstieg.md"
ENL = "ennepe-ruhr-kreis/elternbrief-schulanmeldung-de-uk.md"
ENH = "ennepe-ruhr-kreis/sprach-und-kulturmittlung-anfordern.html"
EUS = "kreis-euskirchen/flyer-gemeinsam-klappts.md"
KLD = "kreis-kleve/flyer-durchstarten-ausbildung-arbeit.md"
KL08 = "kreis-kleve/handreichung-elternarbeit-migrationshintergrund-2008.md"
N25 = "rhein-kreis-neuss/integrationskonzept-2025.md"
N12 = "rhein-kreis-neuss/integrationskonzept-2012.md"
WAR = "kreis-warendorf/integrationsmonitoring-2024.md"
STF = "kreis-steinfurt/jahresbericht-2023.docx"
MIN = "kreis-minden-luebbecke/protokoll-netzwerk-kim-2024-09.odt"
HOX = "kreis-hoexter/praesentation-kim-fallmanagement.pptx"
OLP = "kreis-olpe/beschlussvorlage-kim-case-management.pdf"
RBK = "rheinisch-bergischer-kreis/sachstandsbericht-sprachfoerderung-2019.pdf"
LKIM = "laki/kommunales-integrationsmanagement.html"
LTG = "laki/teilhabe-und-integrationsgesetz-2021.html"
# documents of corpus version 1 named below
LIPPE_DE = "kreis-lippe/schule-in-nrw-einfach-erklaert.md"
LIPPE_TR = "kreis-lippe/okul-kaydi-rehberi-tr.md"
RSK_UK = "rhein-sieg-kreis/zapys-do-shkoly-pamyatka-uk.md"
RSK_MOD = "rhein-sieg-kreis/fortbildungsmodul-daz-kita-grundschule.md"
PAD_DE = "kreis-paderborn/elternsprechtag-einfach-erklaert.md"
BIE = "bielefeld/elternsprechtag-mit-dolmetschenden.md"
KOE_SKM = "koeln/sprach-und-kulturmittlung-elterngespraeche.md"
DUE_CHK = "kreis-dueren/checkliste-ankommen-an-der-schule.pdf"
DUI = "duisburg/verfahrenskonzept-seiteneinstieg.md"
OBH = "oberhausen/konzept-schulische-integration-neuzugewanderter.pdf"
BOR = "kreis-borken/konzept-erstfoerderung-gefluechtete.md"
ESS_RU = "essen/rucksack-kita-katernberg.md"
ESS_MA = "essen/textaufgaben-mathematik-sprachsensibel.md"
MG = "moenchengladbach/praxisbericht-rucksack-kita.pdf"
GT_TR = "kreis-guetersloh/evde-dil-destegi-cok-dillilik-tr.md"
GT_AR = "kreis-guetersloh/kita-griffbereit-rucksack-ar.md"
SW_GB = "kreis-siegen-wittgenstein/konzept-griffbereit-ausbau.md"
SW_UK = "kreis-siegen-wittgenstein/dvi-movy-odna-rodyna-seminar-uk.md"
HAGEN = "hagen/konzept-hsu-staerken.md"
REM = "remscheid/hsu-fragen-und-antworten.pdf"
DO_HSU = "dortmund/rahmenkonzept-hsu-kooperation.md"
AC_HSU = "staedteregion-aachen/hsu-anmeldung-einfache-sprache.md"
AC_SE = "staedteregion-aachen/praxisbericht-sprachfoerderung-seiteneinsteigerklassen.md"
MS_DAZ = "muenster/konzept-daz-foerderung-grundschule.md"
MS_WS = "muenster/wortschatzarbeit-sachunterricht.md"
KR = "krefeld/rahmenkonzept-durchgaengige-sprachbildung.pdf"
SO = "kreis-soest/sprachfoerderung-im-fachunterricht.pdf"
KOE_SC = "koeln/fortbildung-scaffolding-sachunterricht.md"
BONN_B = "bonn/interkulturelle-bibliotheksarbeit.md"
BONN_BE = "bonn/leitfaden-mehrsprachige-bescheide.md"
UNNA_C = "kreis-unna/leitfaden-elterncafes.md"
UNNA_E = "kreis-unna/schulung-mehrsprachige-elternabende.md"
MET_P = "kreis-mettmann/konzept-personalgewinnung-vielfalt.md"
WUP_S = "wuppertal/maedchenschwimmkurse-bilanz.md"
SOL_S = "solingen/praxisbericht-schwimmkurse-maedchen.pdf"
MET_S = "kreis-mettmann/leitfaden-schwimmangebote-maedchen-frauen.md"
VIE = "kreis-viersen/komm-an-ehrenamt-praxisbericht.pdf"
GE_UE = "gelsenkirchen/rahmenkonzept-uebergangsbegleitung.md"
HSK = "hochsauerlandkreis/konzept-uebergang-schule-beruf-neuzugewanderte.pdf"
HAMM_B = "hamm/praxiswerkstatt-beruf.md"
REC_S = "kreis-recklinghausen/elternbegleitung-schulstart.md"
MK_P = "maerkischer-kreis/konzept-kultursensible-pflege.pdf"
HAGEN_D = "hagen/fortbildung-demenz-und-migration.md"
OBK_G = "oberbergischer-kreis/gesundheitsbegleiterinnen-laendlicher-raum.md"
WUP_G = "wuppertal/rahmenkonzept-gesundheitslotsen.md"
LEV = "leverkusen/schulung-gefluechtete-kinder-belastungen.pdf"
GE_D = "gelsenkirchen/handlungsleitfaden-diskriminierung-schule.md"

Grades = dict[str, int]


def g(two: tuple[str, ...] | list[str] = (), one: tuple[str, ...] | list[str] = ()) -> Grades:
    grades = {d: 1 for d in one}
    grades.update({d: 2 for d in two})
    return grades


# --- version 1: what is dropped, corrected and added ------------------------------------------------------------
#: Parent queries dropped to bring parents from 61 of 214 to about a tenth (the ones kept cover each language).
DROPPED = set(
    "q010 q019 q024 q027 q029 q036 q038 q039 q046 q048 q056 q065 q070 q085 q093 q102 q104 q108 q110 q111 q119 "
    "q120 q129 q141 q142 q144 q156 q161 q163 q164 q191 q192 q194 q195 q196 q202 q206 q208".split()
)
#: Label slips of version 1 (issue 15), as (query, document, new grade); grade 0 removes the judgement.
CORRECTIONS: list[tuple[str, str, int]] = [
    # q009 asks how districts placed refugee children in 2015: a 2023 procedure concept does not say that
    ("q009", DUI, 0),
    ("q009", N25, 1),  # Anhang AA looks back on the admission of 2015-2017
    ("q009", RBK, 1),  # 2019 report: 640 Seiteneinsteiger in primary schools since 2015
    # q101 asks for Konzeptpapiere on HSU: the FAQ and the easy-language guide are Handreichungen
    ("q101", REM, 0),
    ("q101", AC_HSU, 0),
    # q031 (Elternarbeit in der Kita) missed documents that cover it in substance
    ("q031", KL08, 2),
    ("q031", MUF, 1),
    ("q031", RSK_MOD, 1),
    # q154 (Konzeptpapiere zum Seiteneinstieg) missed concepts that cover it in a section
    ("q154", MS_DAZ, 1),
    ("q154", N25, 1),
    # q083 (German: speak German or the family language at home?) had only Turkish/Ukrainian documents at 2
    ("q083", MUF, 1),
    ("q083", KL08, 1),
    ("q083", ESS_RU, 1),
    ("q083", BOT, 1),
    ("q083", RSK_MOD, 1),
    # q190 (overview of Durchgängige Sprachbildung) judged 6 of the documents tagged with the topic
    *[
        ("q190", d, 1)
        for d in (MS_DAZ, AC_SE, DO_HSU, HAGEN, ESS_RU, MG, SW_GB, BONN_B, GT_TR, GT_AR, N25, RBK, BRU, BOT, MUF)
    ],
]
#: Judgements of the 25 new documents for kept version-1 queries (topic only; usability is derived).
NEW_DOCS_FOR_V1: dict[str, Grades] = {
    "q003": g(one=[STF]),
    "q005": g(one=[ENH, N25]),
    "q007": g(one=[N25]),
    "q015": g(one=[H]),
    "q017": g(one=[WAR, N25, MIN]),
    "q018": g(one=HALL),
    "q021": g(one=[BRU]),
    "q031": g(),
    "q044": g(one=HALL),
    "q051": g(one=[N25]),
    "q058": g(two=[ENL]),
    "q060": g(one=[BRU]),
    "q073": g(one=[STF]),
    "q078": g(one=[ENH]),
    "q081": g(one=[HOX]),
    "q082": g(one=[KL08]),
    "q089": g(one=[STF]),
    "q094": g(two=[ENL]),
    "q095": g(two=[ENL]),
    "q105": g(one=[N25]),
    "q106": g(two=HALL, one=[ENH]),
    "q118": g(two=[ENL]),
    "q126": g(two=[ENL]),
    "q128": g(two=[ENL]),
    "q131": g(one=[KLD, EUS]),
    "q133": g(two=[MUC]),
    "q137": g(one=[KLD, EUS]),
    "q149": g(one=[N25]),
    "q152": g(one=[H, KL08]),
    "q162": g(two=[KLD], one=[EUS, N25]),
    "q167": g(two=HALL, one=[ENH]),
    "q169": g(one=[N25, RBK]),
    "q172": g(one=[N25]),
    "q174": g(one=[MUC]),
    "q175": g(two=[ENL]),
    "q176": g(two=[ENL]),
    "q178": g(one=[H]),
    "q182": g(one=[ENH, N25]),
    "q184": g(one=[STF]),
    "q185": g(two=[BOT], one=[STF]),
    "q203": g(one=[N25, MIN, STF, WAR]),
    "q209": g(one=[BRU]),
    "q214": g(two=HALL, one=[ENH]),
    "q103": g(one=[STF]),
    "q064": g(one=[BRU]),
    "q173": g(one=[EUS, STF, N25]),
    "q097": g(two=[ENL], one=[N25]),
    "q207": g(one=[N25]),
}
#: Kinds of kept version-1 queries that are not plain (length decides keyword vs question).
V1_KINDS = {
    **dict.fromkeys("q023 q088 q135 q138 q077".split(), "typo"),
    **dict.fromkeys("q009 q114 q124 q026 q136 q011".split(), "constraint"),
}

# --- version 2: new queries written from the brief ---------------------------------------------------------------
# (text, language, persona, kind, grades); a no-answer query has no grades.
NEW: list[tuple[str, str, str, str, Grades]] = [
    # keyword searches (1-3 words)
    ("KIM", "de", "ki-staff", "keyword", g(two=[LKIM, HOX, OLP, MIN], one=[N25, STF, WAR, LTG])),
    ("Integrationsmonitoring", "de", "curator", "keyword", g(two=[WAR], one=[N25, STF, LKIM])),
    ("Gemeinsam klappt's", "de", "ki-staff", "keyword", g(two=[EUS], one=[N25, STF])),
    ("Durchstarten Ausbildung", "de", "ki-staff", "keyword", g(two=[KLD], one=[N25, STF])),
    ("Sprach-Kitas", "de", "ki-staff", "keyword", g(two=[MUF], one=[RBK, N25])),
    ("Rucksack Schule", "de", "teacher", "keyword", g(two=[BOT], one=[STF, RBK, N25])),
    ("Teilhabe- und Integrationsgesetz", "de", "ki-staff", "keyword", g(two=[LTG], one=[N25, LKIM])),
    ("Integrationskonzept", "de", "curator", "keyword", g(two=[N25, N12])),
    ("Jahresbericht", "de", "curator", "keyword", g(two=[STF], one=[RBK])),
    ("Protokoll Steuerungsgruppe", "de", "curator", "keyword", g(two=[MIN])),
    ("Beschlussvorlage", "de", "curator", "keyword", g(two=[OLP])),
    ("Case Management", "de", "ki-staff", "keyword", g(two=[LKIM, HOX, OLP], one=[N25, MIN, STF, WAR])),
    ("Sprachmittlung anfordern", "de", "teacher", "keyword", g(two=[ENH], one=[KOE_SKM, BIE, N25])),
    ("Brüche Klasse 6", "de", "teacher", "keyword", g(two=[BRU], one=[ESS_MA])),
    ("Checkliste Seiteneinstieg", "de", "teacher", "keyword", g(two=[MUC, DUE_CHK], one=[DUI])),
    ("Einwanderungsgeschichte Definition", "de", "curator", "keyword", g(two=[LTG], one=[N25, WAR])),
    ("Elternsprechtag Einladung", "de", "teacher", "keyword", g(two=HALL, one=[PAD_DE, BIE])),
    ("Präsentation KIM", "de", "ki-staff", "keyword", g(two=[HOX], one=[LKIM])),
    ("Systemhürden", "de", "ki-staff", "keyword", g(two=[HOX], one=[N25, WAR, MIN, LKIM])),
    ("Kita-Besuchsquote", "de", "ki-staff", "keyword", g(two=[WAR], one=[N25])),
    ("Ausbildungsduldung", "de", "ki-staff", "keyword", g(one=[KLD, N25])),
    ("Mietführerschein", "de", "ki-staff", "keyword", g(one=[N25])),
    ("Schulpflicht Ukraine", "de", "ki-staff", "keyword", g(two=[ENL], one=[RSK_UK, N25])),
    # typos, missing umlauts, split or joined compounds
    ("Integrationsmonitorring", "de", "curator", "typo", g(two=[WAR], one=[N25, STF, LKIM])),
    ("gemeinsam klappts junge gefluechtete", "de", "ki-staff", "typo", g(two=[EUS], one=[N25, STF])),
    ("Sprachkita Elterncafe", "de", "teacher", "typo", g(two=[MUF], one=[RBK])),
    ("Rucksak Schule Elterngruppe", "de", "ki-staff", "typo", g(two=[BOT], one=[STF, RBK])),
    ("Elternsprech tag einladung", "de", "teacher", "typo", g(two=HALL, one=[PAD_DE, BIE])),
    ("Kommunales Integrations management", "de", "ki-staff", "typo", g(two=[LKIM, HOX, OLP], one=[N25, MIN, STF])),
    ("Teilhabe und Integrationsgsetz 2021", "de", "ki-staff", "typo", g(two=[LTG], one=[N25, LKIM])),
    ("durchstartn ausbildung duldung", "de", "ki-staff", "typo", g(two=[KLD], one=[N25, STF])),
    ("Sprachmitler anfordern schule kosten", "de", "teacher", "typo", g(two=[ENH], one=[KOE_SKM])),
    ("Bruchrechnung sprachsensiebel", "de", "teacher", "typo", g(two=[BRU], one=[ESS_MA])),
    ("Jahresbricht KI Steinfurt", "de", "curator", "typo", g(two=[STF])),
    ("Integrationskonzept Neus", "de", "ki-staff", "typo", g(two=[N25, N12])),
    ("Schulanmeldung ukrainisch Eltern brief", "de", "ki-staff", "typo", g(two=[ENL, RSK_UK], one=[LIPPE_DE])),
    ("Fallkonferrenz Protokol", "de", "ki-staff", "typo", g(two=[MIN], one=[HOX, LKIM, N25])),
    ("HSU Gruppengroesse Anmeldung", "de", "teacher", "typo", g(two=[AC_HSU, REM], one=[HAGEN, DO_HSU])),
    ("mehrsprachige Elternbrife Vorlagen", "de", "ki-staff", "typo", g(two=HALL, one=[BOT, N25])),
    (
        "Ubergangsmanagement Schule Beruf Gefluechtete",
        "de",
        "ki-staff",
        "typo",
        g(two=[GE_UE, HSK, HAMM_B], one=[KLD, EUS]),
    ),
    ("Seiteneinsteiger erste Schulwoche checkliste", "de", "teacher", "typo", g(two=[MUC, DUE_CHK], one=[DUI])),
    (
        "kultursensibel Pflege Angehorige",
        "de",
        "ki-staff",
        "typo",
        g(two=[MK_P], one=[HAGEN_D, OBK_G, WUP_G, N25]),
    ),
    ("schwimkurs frauen", "de", "ki-staff", "typo", g(two=[MET_S], one=[SOL_S, WUP_S, N25])),
    (
        "Sprachstand beobachten Kitta",
        "de",
        "teacher",
        "typo",
        g(two=[RSK_MOD], one=["herne/fortbildung-sprachstand-beobachten.pdf"]),
    ),
    (
        "Elterncafe Grundschul",
        "de",
        "ki-staff",
        "typo",
        g(
            two=[
                UNNA_C,
                "dortmund/elterncafe-grundschule-kanalstrasse.md",
                "kreis-heinsberg/elterncafe-an-grundschulen.pdf",
            ],
            one=[KL08],
        ),
    ),
    (
        "Diskriminierung schule beschwerde",
        "de",
        "teacher",
        "keyword",
        g(two=[GE_D], one=["duesseldorf/workshop-diskriminierungssensibel-beraten.md"]),
    ),
    # constraints: a district, a year, a grade, a subject
    (
        "Was hat der Kreis Warendorf 2023 zur Kita-Besuchsquote gemessen?",
        "de",
        "ki-staff",
        "constraint",
        g(two=[WAR]),
    ),
    ("Integrationskonzept Rhein-Kreis Neuss Maßnahmen Wohnen", "de", "ki-staff", "constraint", g(two=[N25])),
    (
        "Sprachförderung Seiteneinsteiger Sekundarstufe I Rheinisch-Bergischer Kreis 2019",
        "de",
        "curator",
        "constraint",
        g(two=[RBK]),
    ),
    ("Unterrichtsmaterial Mathematik Klasse 6 DaZ", "de", "teacher", "constraint", g(two=[BRU], one=[ESS_MA, SO])),
    ("Case Management Kreis Olpe 2022", "de", "ki-staff", "constraint", g(two=[OLP])),
    ("Protokoll Minden-Lübbecke September 2024", "de", "curator", "constraint", g(two=[MIN])),
    (
        "Schulanmeldung Ennepe-Ruhr-Kreis Ukraine",
        "de",
        "ki-staff",
        "constraint",
        g(two=[ENL], one=[RSK_UK, LIPPE_DE]),
    ),
    (
        "Wie viele Fälle hatte das Case Management im Kreis Steinfurt 2023?",
        "de",
        "ki-staff",
        "constraint",
        g(two=[STF]),
    ),
    ("Sprach-Kita Mülheim an der Ruhr", "de", "ki-staff", "constraint", g(two=[MUF])),
    ("Dokumente zur Elternarbeit von vor 2010", "de", "curator", "constraint", g(two=[KL08])),
    ("Gemeinsam klappt's Kreis Euskirchen Sprechzeiten", "de", "ki-staff", "constraint", g(two=[EUS])),
    (
        "Neu zugewanderte in Klasse 5 bis 10: was tun in den ersten zwei Wochen?",
        "de",
        "teacher",
        "constraint",
        g(two=[MUC], one=[DUE_CHK, DUI]),
    ),
    (
        "Wo wurde eine zusätzliche Sprachfördergruppe an der Gesamtschule Kürten empfohlen?",
        "de",
        "ki-staff",
        "constraint",
        g(two=[RBK]),
    ),
    (
        "Förderpauschale pro Vollzeitstelle im Case Management, Kreis Olpe",
        "de",
        "ki-staff",
        "constraint",
        g(two=[OLP]),
    ),
    ("KIM-Vortrag im Kreisausschuss Höxter 2023", "de", "ki-staff", "constraint", g(two=[HOX])),
    ("Mädchenschwimmkurs Wuppertal Bilanz", "de", "ki-staff", "constraint", g(two=[WUP_S], one=[SOL_S])),
    ("HSU-Konzept Hagen 2017", "de", "curator", "constraint", g(two=[HAGEN])),
    (
        "Wartezeit Schulplatz Sekundarstufe I 2024",
        "de",
        "ki-staff",
        "constraint",
        g(two=[MIN], one=[WAR, N25, STF]),
    ),
    # staff looking for translated parent letters
    (
        "Einladung zum Elternsprechtag auf Arabisch",
        "de",
        "teacher",
        "translation",
        g(two=[HAR], one=[H, HTR, HUK, HRU, HEN]),
    ),
    (
        "Elternbrief Elternsprechtag türkisch",
        "de",
        "teacher",
        "translation",
        g(two=[HTR], one=[H, HAR, HUK, HRU, HEN]),
    ),
    (
        "Haben wir den Brief zum Elternsprechtag auch auf Ukrainisch und Russisch?",
        "de",
        "ki-staff",
        "translation",
        g(two=[HUK, HRU], one=[H, HTR, HAR, HEN]),
    ),
    (
        "English version of the parent-teacher day letter",
        "en",
        "ki-staff",
        "translation",
        g(two=[HEN], one=[H, HTR, HAR, HUK, HRU]),
    ),
    ("zweisprachiger Elternbrief deutsch türkisch", "de", "teacher", "translation", g(two=[BOT], one=[HTR])),
    ("Flyer Sprach-Kita auf Arabisch", "de", "ki-staff", "translation", g(two=[MUF], one=[GT_AR])),
    ("Merkblatt Schulanmeldung ukrainisch-deutsch", "de", "ki-staff", "translation", g(two=[ENL, RSK_UK])),
    (
        "Elternbriefe in mehreren Sprachen für Grundschulen",
        "de",
        "ki-staff",
        "translation",
        g(two=HALL, one=[BOT, N25]),
    ),
    # other languages, non-parent personas (HSU teachers, multilingual staff)
    (
        "Anadil dersi öğretmeni olarak okul kadrosuna nasıl dahil olabilirim?",
        "tr",
        "teacher",
        "question",
        g(two=[DO_HSU, HAGEN], one=[REM]),
    ),
    (
        "Veli görüşme günü davet mektubu Türkçe",
        "tr",
        "teacher",
        "translation",
        g(two=[HTR], one=[H, HAR, HUK, HRU, HEN]),
    ),
    (
        "Як українському вчителю допомогти новим учням у перші тижні в німецькій школі?",
        "uk",
        "teacher",
        "question",
        g(two=[MUC, DUE_CHK], one=[DUI]),
    ),
    (
        "Лист-запрошення на день консультацій для батьків українською",
        "uk",
        "teacher",
        "translation",
        g(two=[HUK], one=[H, HTR, HAR, HRU, HEN]),
    ),
    (
        "كيف يعمل وسيط لغوي وثقافي في حديث مع الأهل في المدرسة؟",
        "ar",
        "ki-staff",
        "question",
        g(two=[KOE_SKM], one=[ENH, BIE]),
    ),
    (
        "What does the NRW integration law of 2021 change for municipalities?",
        "en",
        "ki-staff",
        "question",
        g(two=[LTG], one=[N25, LKIM]),
    ),
    (
        "Case management across legal frameworks for migrants in NRW districts",
        "en",
        "ki-staff",
        "question",
        g(two=[LKIM, HOX, OLP], one=[N25, MIN, STF]),
    ),
    ("integration monitoring indicators", "en", "curator", "keyword", g(two=[WAR], one=[N25, STF])),
    ("Teaching fractions to German learners in year 6", "en", "teacher", "constraint", g(two=[BRU], one=[ESS_MA])),
    # questions (paraphrased, not borrowing the documents' words)
    (
        "Wie stellt man sicher, dass eine Familie nicht zwischen Ausländerbehörde, Jobcenter und Schule "
        "verloren geht?",
        "de",
        "ki-staff",
        "question",
        g(two=[LKIM, HOX], one=[OLP, N25, MIN]),
    ),
    (
        "Was hat sich am Begriff Migrationshintergrund geändert und warum sagt man heute anders?",
        "de",
        "curator",
        "question",
        g(two=[LTG], one=[N25, WAR]),
    ),
    (
        "Junge Geflüchtete über 18 fallen aus der Schulpflicht raus. Wer hilft ihnen noch?",
        "de",
        "ki-staff",
        "question",
        g(two=[EUS], one=[KLD, N25]),
    ),
    (
        "Ein Betrieb will einen jungen Mann mit Duldung ausbilden und hat Fragen zur Arbeitserlaubnis",
        "de",
        "ki-staff",
        "question",
        g(two=[KLD], one=[N25]),
    ),
    (
        "Woran misst ein Kreis, ob seine Integrationsziele erreicht werden?",
        "de",
        "ki-staff",
        "question",
        g(two=[WAR, N25], one=[STF]),
    ),
    (
        "Muss ich zum Gespräch in der Schule etwas mitbringen, und dürfen meine kleinen Kinder mit?",
        "de",
        "parent",
        "question",
        g(two=HALL, one=[PAD_DE]),
    ),
    (
        "Mein Sohn ist 19, hat eine Duldung und will eine Ausbildung machen. Wer berät ihn?",
        "de",
        "parent",
        "question",
        g(two=[KLD], one=[EUS, N25]),
    ),
    (
        "Was lernt meine Tochter in der Kita über Sprache, und soll ich zu Hause Arabisch sprechen?",
        "de",
        "parent",
        "question",
        g(two=[MUF], one=[GT_AR, KL08]),
    ),
    # typo and keyword variants of version-1 keyword queries: the same judgements ("=qNNN")
    ("Grifbereit", "de", "ki-staff", "typo", {"=q103": 0}),
    ("Kultur rucksack", "de", "teacher", "typo", {"=q160": 0}),
    ("Herkunftsprachlicher Unterricht", "de", "teacher", "typo", {"=q148": 0}),
    ("Scafolding", "de", "teacher", "typo", {"=q064": 0}),
    ("KOMMAN Projekte", "de", "ki-staff", "typo", {"=q184": 0}),
    ("kultursensible Plfege", "de", "ki-staff", "typo", {"=q037": 0}),
    ("Demenz Migrantn", "de", "ki-staff", "typo", {"=q187": 0}),
    ("Antidiskriminierung Schuhle", "de", "teacher", "typo", {"=q076": 0}),
    ("Übergang Schule Beruf", "de", "ki-staff", "keyword", {"=q162": 0}),
    ("Ehrenamt Flüchtlingshilfe", "de", "curator", "keyword", {"=q173": 0}),
    ("Ukraine Schule", "de", "ki-staff", "keyword", {"=q097": 0}),
    ("Gesundheitslotsen", "de", "ki-staff", "keyword", {"=q207": 0}),
    ("Einfache Sprache Eltern", "de", "curator", "keyword", {"=q091": 0}),
    # no answer in the corpus (checked with grep): no qrels line
    ("Bürgergeld Antrag", "de", "parent", "no-answer", {}),
    ("Hitzeschutz Unterkünfte", "de", "ki-staff", "no-answer", {}),
    ("Kirchenasyl", "de", "curator", "no-answer", {}),
    ("Blaue Karte EU", "de", "ki-staff", "no-answer", {}),
    ("Minijob Rentenversicherung", "de", "parent", "no-answer", {}),
    ("Einbürgerungstest Fragen üben", "de", "ki-staff", "no-answer", {}),
    ("Wie beantrage ich Kindergeld für mein Kind?", "de", "parent", "no-answer", {}),
    ("Elterngeld", "de", "parent", "no-answer", {}),
    ("Legasthenie Nachteilsausgleich", "de", "teacher", "no-answer", {}),
    ("Hochbegabung fördern", "de", "teacher", "no-answer", {}),
    ("AMIF Förderantrag Muster", "de", "ki-staff", "no-answer", {}),
    ("queere Geflüchtete", "de", "curator", "no-answer", {}),
    ("Wohngeld berechnen", "de", "ki-staff", "no-answer", {}),
    ("Gedichtanalyse Abiturvorbereitung", "de", "teacher", "no-answer", {}),
    ("BAföG für geflüchtete Studierende", "de", "ki-staff", "no-answer", {}),
    ("Schulbuchausleihe Eigenanteil", "de", "curator", "no-answer", {}),
    ("Härtefallkommission Antrag", "de", "ki-staff", "no-answer", {}),
    ("Schülerticket beantragen", "de", "teacher", "no-answer", {}),
    ("Türk ehliyetimi Alman ehliyetine nasıl çevirebilirim?", "tr", "parent", "no-answer", {}),
    ("كيف أقدّم طلب إعانة الأطفال (Kindergeld)؟", "ar", "parent", "no-answer", {}),
    ("Як подати податкову декларацію в Німеччині?", "uk", "parent", "no-answer", {}),
    ("EU AMIF funding application for integration projects", "en", "ki-staff", "no-answer", {}),
    ("How do I apply for child benefit (Kindergeld)?", "en", "parent", "no-answer", {}),
    ("Kinderehen erkennen und melden", "de", "ki-staff", "no-answer", {}),
    ("Erasmus Schüleraustausch organisieren", "de", "teacher", "no-answer", {}),
    ("Schufa-Auskunft Wohnungssuche", "de", "ki-staff", "no-answer", {}),
    ("Medienkompetenz Handyregeln Klasse 7", "de", "teacher", "no-answer", {}),
    # Listed here as no-answer at first, but the Oberberg workshop states the Übungsleiterpauschale (tax-free up
    # to 2,400 euros), which answers part of it: judged 1 (kept in place so that no query id moves).
    (
        "Steuererklärung für Ehrenamtliche Übungsleiter",
        "de",
        "ki-staff",
        "question",
        {"oberbergischer-kreis/workshop-neue-engagierte-sportverein.md": 1},
    ),
    ("Bewerbungstraining Lehrerstelle Quereinstieg", "de", "teacher", "no-answer", {}),
]

PERSONA_AUDIENCES = {
    "teacher": {"Lehrkräfte", "Kita-Fachkräfte", "Erzieherinnen", "Schulleitungen", "Fachkräfte"},
    "ki-staff": {"KI-Fachkräfte", "Verwaltung", "Politik", "Ehrenamtliche", "Fachkräfte", "Träger", "Arbeitgeber"},
}
INTERNAL_TYPES = {
    "Protokoll",
    "Beschlussvorlage",
    "Integrationskonzept",
    "Monitoring",
    "Jahresbericht",
    "Präsentation",
}


def metadata(doc: str) -> dict[str, Any]:
    path = CORPUS / doc
    if path.suffix == ".md":
        match = re.match(r"---\n(.*?)\n---\n", path.read_text(encoding="utf-8"), re.S)
        assert match, doc
        return dict(yaml.safe_load(match.group(1)))
    return dict(yaml.safe_load((path.with_name(path.name + ".meta.yaml")).read_text(encoding="utf-8")))


def usability(doc: str, language: str, persona: str) -> int:
    """Can this user read and use the document? 2 yes, 1 with effort, 0 no (rules in eval/bundled/README.md)."""
    meta = metadata(doc)
    languages = set(meta.get("languages") or [meta.get("language", "de")])
    readers = {language} if persona == "parent" else {language, "de"}
    if not languages & readers:
        return 0
    audience = set(meta.get("audience") or [])
    if persona == "parent":
        if meta.get("visibility", "oeffentlich") != "oeffentlich":
            return 0
        if "Eltern" in audience or "Jugendliche" in audience:
            return 2
        kind = str(meta.get("doc_type"))
        return 0 if kind in INTERNAL_TYPES or kind == "Konzeptpapier" else 1
    if persona == "curator":
        return 2
    wanted = PERSONA_AUDIENCES[persona]
    return 2 if audience & wanted or "Eltern" in audience else 1


def words(text: str) -> int:
    return len(text.split())


def main() -> int:
    v1 = [json.loads(line) for line in (HERE / "v1_queries.jsonl").read_text(encoding="utf-8").splitlines()]
    qrels: dict[str, Grades] = {}
    for line in (HERE / "v1_test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, doc, score = line.split("\t")
        qrels.setdefault(qid, {})[doc] = int(score)
    for qid, doc, grade in CORRECTIONS:
        if grade:
            qrels.setdefault(qid, {})[doc] = grade
        else:
            qrels[qid].pop(doc, None)
    for qid, grades in NEW_DOCS_FOR_V1.items():
        for doc, grade in grades.items():
            qrels[qid][doc] = max(grade, qrels[qid].get(doc, 0))
    queries = []
    for row in v1:
        if row["_id"] in DROPPED:
            continue
        kind = V1_KINDS.get(row["_id"]) or ("keyword" if words(row["text"]) <= 3 else "question")
        row["metadata"]["kind"] = kind
        queries.append(row)
    for number, (text, language, persona, kind, grades) in enumerate(NEW, start=215):
        qid = f"q{number:03d}"
        queries.append(
            {"_id": qid, "text": text, "metadata": {"language": language, "persona": persona, "kind": kind}}
        )
        if len(grades) == 1 and next(iter(grades)).startswith("="):
            grades = dict(qrels[next(iter(grades))[1:]])
        if grades:
            qrels[qid] = dict(grades)
        assert (kind == "no-answer") == (not grades), (qid, text)
    random.Random(20261202).shuffle(queries)

    ids = [q["_id"] for q in queries]
    assert len(ids) == len(set(ids)), "duplicate query id"
    kept = set(ids)
    problems = [
        f"{qid}: {doc} is not in corpus/"
        for qid in kept
        for doc in qrels.get(qid, {})
        if not (CORPUS / doc).is_file()
    ]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1

    (OUT / "qrels").mkdir(parents=True, exist_ok=True)
    with (OUT / "queries.jsonl").open("w", encoding="utf-8") as out:
        for q in queries:
            out.write(json.dumps(q, ensure_ascii=False) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    use_lines = ["query-id\tcorpus-id\tusability"]
    for q in queries:
        meta = q["metadata"]
        for doc, grade in sorted(qrels.get(q["_id"], {}).items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"{q['_id']}\t{doc}\t{grade}")
            use_lines.append(f"{q['_id']}\t{doc}\t{usability(doc, meta['language'], meta['persona'])}")
    (OUT / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (OUT / "qrels" / "usability.tsv").write_text("\n".join(use_lines) + "\n", encoding="utf-8")

    # the counts the README reports
    n = len(queries)
    kinds = Counter(q["metadata"]["kind"] for q in queries)
    personas = Counter(q["metadata"]["persona"] for q in queries)
    langs = Counter(q["metadata"]["language"] for q in queries)
    short = sum(words(q["text"]) <= 3 for q in queries)
    judged = [(qid, doc, grade) for qid in kept for doc, grade in qrels.get(qid, {}).items()]
    docs = {
        p.relative_to(CORPUS).as_posix()
        for p in CORPUS.rglob("*")
        if p.is_file() and not p.name.endswith(".meta.yaml") and p.name != "README.md"
    }
    with_two = {doc for _, doc, grade in judged if grade == 2}
    print(f"queries {n}; 1-3 words {short} ({short / n:.0%})")
    print("kinds", {k: f"{v} ({v / n:.0%})" for k, v in kinds.most_common()})
    print("personas", {k: f"{v} ({v / n:.0%})" for k, v in personas.most_common()})
    print("languages", dict(langs.most_common()))
    twos = sum(grade == 2 for *_, grade in judged)
    print(f"judged pairs {len(judged)}: grade 2 {twos}, grade 1 {len(judged) - twos}")
    print(f"documents without a grade 2: {sorted(docs - with_two)}")
    use = Counter(line.rsplit("\t", 1)[1] for line in use_lines[1:])
    print("usability", dict(sorted(use.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
