"""How a dualwrite process logs: ``DUALWRITE_LOG_FORMAT`` picks the renderer.

``console`` is a line a person reads (time, level, logger, message). ``json`` is one JSON
object per line for a log pipeline (Loki, Elasticsearch, CloudWatch), with the same facts as
fields: ``ts`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message``, ``exc`` (the
traceback, when there is one) and whatever a call passed as ``extra``. Logs go to stderr; a
command's own output stays on stdout.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import structlog
from structlog.typing import EventDict, WrappedLogger

__all__ = ["CONSOLE_FORMAT", "LogFormat", "configure", "faust_logging_config", "json_formatter"]

LogFormat = Literal["console", "json"]
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _orjson(value: Any, **_kwargs: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def json_formatter() -> logging.Formatter:
    """A record as one line of JSON, through structlog's stdlib bridge: ``ts``, ``level``,
    ``logger``, ``message`` (its arguments filled in), ``exc`` when there is a traceback, and a
    call's ``extra`` fields; a value JSON cannot hold is written as its ``str``."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            _record_time,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            _exc_named,
            structlog.processors.JSONRenderer(serializer=_orjson),
        ],
    )


def _record_time(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """``ts``: when the record was made (not when it is written), ISO 8601 in UTC."""
    made = datetime.fromtimestamp(event["_record"].created, UTC)
    event["ts"] = made.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return event


def _exc_named(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """The traceback under ``exc``."""
    if "exception" in event:
        event["exc"] = event.pop("exception")
    return event


def _formatter(log_format: LogFormat) -> logging.Formatter:
    return json_formatter() if log_format == "json" else logging.Formatter(CONSOLE_FORMAT)


def configure(log_format: LogFormat, level: str | int = logging.INFO) -> None:
    """The root logger writes ``level`` and above to stderr in ``log_format`` (any handler set
    before is replaced, so ``logging.basicConfig`` after it changes nothing)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)


def faust_logging_config(log_format: LogFormat, level: str = "info") -> dict[str, Any]:
    """The ``logging_config`` a Faust worker applies (it replaces the root's handlers with its
    own colour console otherwise)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"dualwrite": {"()": _formatter, "log_format": log_format}},
        "handlers": {"default": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                 "formatter": "dualwrite"}},
        "root": {"level": level.upper(), "handlers": ["default"]},
    }
