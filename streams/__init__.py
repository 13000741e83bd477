"""The stream processor: table maps, pure decisions and the Faust app that runs them.

Imports only `topics` from the project; meets the connectors on topics.
"""

from streams.app import Runtime, StreamsApp, create_app
from streams.config import StreamsConfig
from streams.maps import SETUP_MAPS, MapRegistry, TableMap, default_registry
from streams.runner import run_worker
from streams.status import ParkedEntry, parked_entries, read_parked

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
