"""The stream processor: table maps, pure decisions and the Faust app that runs them.

Imports only `topics` from the project; meets the connectors on topics. The names below are
loaded when first asked for, so a module of this package that does not need Faust (the maps,
`streams.tuning`, which the settings read) can be imported without it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from streams.native import search as _compiled

# The hot path compiled with mypyc, found first when it was built from these very sources.
__path__[:0] = _compiled()

if TYPE_CHECKING:
    from streams.app import Runtime, StreamsApp, create_app
    from streams.config import StreamsConfig
    from streams.maps import SETUP_MAPS, MapRegistry, TableMap, default_registry
    from streams.runner import run_worker
    from streams.status import ParkedEntry, parked_entries, read_parked

_WHERE = {
    "Runtime": "streams.app", "StreamsApp": "streams.app", "create_app": "streams.app",
    "StreamsConfig": "streams.config",
    "SETUP_MAPS": "streams.maps", "MapRegistry": "streams.maps", "TableMap": "streams.maps",
    "default_registry": "streams.maps",
    "run_worker": "streams.runner",
    "ParkedEntry": "streams.status", "parked_entries": "streams.status", "read_parked": "streams.status",
}

__all__ = [
    "SETUP_MAPS",
    "MapRegistry",
    "ParkedEntry",
    "Runtime",
    "StreamsApp",
    "StreamsConfig",
    "TableMap",
    "create_app",
    "default_registry",
    "parked_entries",
    "read_parked",
    "run_worker",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'streams' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
