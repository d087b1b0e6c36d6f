import kb


def test_public_names_are_exported_and_documented() -> None:
    for name in kb.__all__:
        assert hasattr(kb, name), name
    assert {"Settings", "Ingestor", "Searcher", "KBError"} <= set(kb.__all__)


def test_every_error_has_an_exit_code_and_http_status() -> None:
    errors = [getattr(kb, n) for n in kb.__all__ if n.endswith("Error")]
    codes = {e: (e.exit_code, e.status_code) for e in errors}
    assert all(1 <= exit_code <= 10 and 400 <= status < 600 for exit_code, status in codes.values())
    assert kb.IndexMissingError("x").status_code == 503 and kb.QueryError("x").status_code == 422


def test_every_setting_is_in_the_readme_settings_table() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    missing = [f"KB_{n.upper()}" for n in kb.Settings.model_fields if f"| `KB_{n.upper()}` |" not in readme]
    assert missing == [], f"add these settings to the README's table: {missing}"
