"""A CDC record carrying ``dualwrite.retry`` makes commands that say so (`CommandSource.redriven`)."""

import pytest

from streams.maps import default_registry
from streams.route import route_change
from streams.wire import PendingMsg
from tests.unit.streams import rows
from topics import ChangeEvent
from topics.envelope import Source

pytestmark = pytest.mark.unit


def pending(redriven: bool) -> list[PendingMsg]:
    event = ChangeEvent(after=rows.project(), op="u", ts_ms=1,
                        source=Source(system="dataverse", table="msdyn_projects", version="4", ts_ms=1))
    out = route_change(default_registry(), "dataverse", "msdyn_projects", rows.PROJECT, event, 0,
                       redriven=redriven)
    return [m for _, m in out.messages if isinstance(m, PendingMsg)]


def test_a_redriven_record_marks_its_changes_and_a_live_one_does_not() -> None:
    assert pending(True) and all(m.item.source.redriven for m in pending(True))
    assert pending(False) and not any(m.item.source.redriven for m in pending(False))
