"""`DUALWRITE_LOG_FORMAT`: the console line, or one JSON object a line (`dualwrite.logs`)."""

import logging
import logging.config
import sys

import orjson
import pytest

from dualwrite.logs import configure, faust_logging_config, json_formatter

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _root_restored():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("streams.gate", logging.WARNING, __file__, 1, msg, args, exc_info)
    record.created = 1_764_547_200.123  # 2025-12-01T00:00:00.123Z
    record.__dict__.update(extra)
    return record


def test_a_json_line_holds_the_time_level_logger_and_the_message_with_its_arguments():
    line = json_formatter().format(_record("paused %s after %d rejects", "projects", 3))
    assert "\n" not in line
    assert orjson.loads(line) == {"ts": "2025-12-01T00:00:00.123Z",
                                  "level": "warning", "logger": "streams.gate",
                                  "message": "paused projects after 3 rejects"}


def test_a_json_line_carries_the_traceback_and_the_extra_fields_a_value_json_cannot_hold_as_text():
    out = orjson.loads(json_formatter().format(_record("failed", exc=True, map="projects", offsets={1: 2},
                                                      at=object)))
    assert out["exc"].startswith("Traceback") and out["exc"].rstrip().endswith("ValueError: boom")
    assert "\n" not in json_formatter().format(_record("failed", exc=True))  # the traceback escaped
    assert out["map"] == "projects" and out["offsets"] == {"1": 2} and out["at"] == str(object)


def test_configure_json_replaces_the_handlers_before_it_and_writes_to_stderr(capfd):
    logging.basicConfig(format="plain %(message)s")
    configure("json", "info")
    logging.getLogger("connectors.sink").info("wrote %d rows", 5)
    logging.getLogger("connectors.sink").debug("not at info")
    logging.basicConfig(format="plain %(message)s")  # changes nothing now
    logging.getLogger("connectors.sink").info("again")
    out, err = capfd.readouterr()
    assert out == ""
    lines = [orjson.loads(line) for line in err.splitlines()]
    assert [(x["logger"], x["message"]) for x in lines] == [("connectors.sink", "wrote 5 rows"),
                                                            ("connectors.sink", "again")]


def test_configure_console_keeps_the_line_a_person_reads(capfd):
    configure("console")
    logging.getLogger("streams.engine").warning("rebalanced")
    err = capfd.readouterr().err
    assert err.rstrip().endswith(" WARNING streams.engine rebalanced") and not err.startswith("{")


def test_the_config_a_faust_worker_applies_writes_json_at_its_level(capfd):
    logging.config.dictConfig(faust_logging_config("json", "warning"))
    logging.getLogger("faust.worker").info("below the level")
    logging.getLogger("faust.worker").warning("ready")
    [line] = capfd.readouterr().err.splitlines()
    assert orjson.loads(line)["message"] == "ready"
