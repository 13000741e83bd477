"""Table maps: declarative, frozen descriptions of how one table becomes another."""

from streams.maps.model import (
    Condition,
    Dependency,
    Direction,
    Endpoint,
    FanOut,
    FieldMap,
    Lookup,
    Partner,
    TableMap,
    fanout_key,
    key_fact,
    present_fact,
    row_fact,
)
from streams.maps.registry import MapRegistry, RegistryError, default_registry, load_registry
from streams.maps.setup import CUSTOMERS, LEGAL_ENTITIES, PROJECT_TASKS, PROJECTS, SETUP_MAPS

__all__ = [
    "CUSTOMERS",
    "LEGAL_ENTITIES",
    "PROJECTS",
    "PROJECT_TASKS",
    "SETUP_MAPS",
    "Condition",
    "Dependency",
    "Direction",
    "Endpoint",
    "FanOut",
    "FieldMap",
    "Lookup",
    "MapRegistry",
    "Partner",
    "RegistryError",
    "TableMap",
    "default_registry",
    "fanout_key",
    "key_fact",
    "load_registry",
    "present_fact",
    "row_fact",
]
