"""Log lines as text or JSON lines (``KB_LOG_FORMAT``), each with the id of the request it belongs to.

Secrets never reach a log line: the request log records method, route, status and duration, never headers or
query strings, and a filter masks anything that still looks like a bearer token or an API key.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from datetime import UTC, datetime

#: The id of the request being handled (``-`` outside requests).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SECRETS = re.compile(
    r"(?i)((?:authorization[\"']?\s*[:=]\s*[\"']?)?(?:bearer|basic|token)\s+"
    r"|authorization[\"']?\s*[:=]\s*[\"']?"
    r"|(?:api[_-]?key|access[_-]?token|token|password|secret)[\"']?\s*[:=]\s*[\"']?)"
    r"[^\s\"'&,;]+"
)
_FIELDS = ("method", "route", "path", "status", "duration_ms", "client")


def redact(text: str) -> str:
    """``text`` with bearer tokens and ``api_key=…``-style values replaced by ``***``."""
    return _SECRETS.sub(lambda m: m.group(1) + "***", text)


class RedactingFilter(logging.Filter):
    """Adds the request id to every record and masks secrets in its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id.get()),
        }
        entry.update({name: getattr(record, name) for name in _FIELDS if hasattr(record, name)})
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> logging.Handler:
    """One handler on the root logger (replacing earlier ones), also used by uvicorn's loggers."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # it logs query strings; our request log does not
    return handler
