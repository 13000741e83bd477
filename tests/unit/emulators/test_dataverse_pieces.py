"""Pure pieces of the Dataverse emulator: key segments, delta tokens, faults, tokens."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from emulators.common.auth import ClientRegistry, is_open_path
from emulators.common.config import FaultConfig
from emulators.common.errors import ODataError
from emulators.common.faults import FaultInjector
from emulators.common.target import parse_target
from emulators.dataverse import seed
from emulators.dataverse.keys import key_columns, parse_key, parse_resource
from emulators.dataverse.messages import API_ROOT
from emulators.dataverse.schema import BY_SET
from emulators.dataverse.tracking import make_token, parse_token

pytestmark = pytest.mark.unit
GUID = "6f1c1c2e-1111-4222-8333-944445555666"
PROJECTS = BY_SET["msdyn_projects"]


def test_key_segments() -> None:
    assert parse_key(GUID.upper()) == GUID
    assert parse_key(f"msdyn_projectnumber='P,''1''',_msdyn_owningcompany_value={GUID}") == {
        "msdyn_projectnumber": "P,'1'", "_msdyn_owningcompany_value": GUID}
    assert key_columns(PROJECTS, {"msdyn_projectnumber": "P", "_msdyn_owningcompany_value": GUID}) == {
        "msdyn_projectnumber": "P", "msdyn_owningcompany": GUID}
    assert key_columns(PROJECTS, {"msdyn_projectid": GUID}) == {"msdyn_projectid": GUID}


@pytest.mark.parametrize("key", [{"msdyn_projectnumber": "P"},
                                 {"msdyn_projectnumber": "P", "msdyn_owningcompany": GUID},
                                 {"msdyn_subject": "x"}])
def test_keys_not_declared_are_refused(key: dict[str, object]) -> None:
    with pytest.raises(ODataError, match="The key in the request URI is not valid"):
        key_columns(PROJECTS, key)  # type: ignore[arg-type]


def test_resource_paths() -> None:
    target = parse_target("https://org/api/data/v9.2/accounts(1)?$select=name", API_ROOT)
    assert target.segments == ("accounts(1)",) and target.query == {"$select": "name"}
    assert parse_target("/api/data/v9.2/accounts", API_ROOT).segments == ("accounts",)
    resource = parse_resource((f"invoices({GUID})", "Microsoft.Dynamics.CRM.msdyn_ConfirmInvoice"))
    assert resource.table.entity_set == "invoices" and resource.key == GUID
    assert resource.action == "Microsoft.Dynamics.CRM.msdyn_ConfirmInvoice"
    with pytest.raises(ODataError) as caught:
        parse_resource(("unicorns",))
    assert caught.value.status == 404


@pytest.mark.parametrize("value", ["A/B", "A#B", "A<B", "A>B", "A*B", "A%B", "A&B", "A:B",
                                   "A\\B", "A?B", "A+B"])
def test_documented_unsupported_alternate_key_characters_are_refused(value: str) -> None:
    literal = value.replace("'", "''")
    with pytest.raises(ODataError, match="alternate key") as caught:
        parse_key(f"msdyn_projectnumber='{literal}',_msdyn_owningcompany_value={GUID}")
    assert caught.value.status == 400


class _Versions:
    def __init__(self, last: int) -> None:
        self.last = last

    def last_version(self) -> int:
        return self.last


def test_delta_tokens() -> None:
    store = _Versions(50)
    assert parse_token(make_token(42, 1000.0), store, 7, now=1000.0 + 86400) == 42  # type: ignore[arg-type]
    for bad in ("x", "42", "42!abc", make_token(51, 1000.0), make_token(1, 1000.0)):
        with pytest.raises(ODataError) as caught:
            parse_token(bad, store, 7, now=1000.0 + 8 * 86400)  # type: ignore[arg-type]
        assert caught.value.status == 400 and caught.value.code == "0x80044352"


def test_fault_updates_are_partial_and_restart_the_storm() -> None:
    now = [0.0]
    faults = FaultInjector(FaultConfig.model_validate({}), clock=lambda: now[0])
    now[0] = 10.0
    faults.update({"throttle_storm_seconds": 5})
    assert faults.storm_remaining() == 5.0
    now[0] = 16.0
    assert faults.storm_remaining() == 0.0
    faults.update({"feed_paused": True})
    assert faults.feed_paused and faults.config.throttle_storm_seconds == 5
    with pytest.raises(ODataError):
        faults.update({"drop_rate": 3})


def test_tokens_expire_and_are_bound_to_a_client() -> None:
    now = [0.0]
    registry = ClientRegistry({"app": SecretStr("secret")}, 60, clock=lambda: now[0])
    assert registry.authenticate("app", "secret") and not registry.authenticate("app", "nope")
    assert not registry.authenticate("ghost", "secret")
    token = registry.issue("app")
    assert registry.verify(token) == "app" and registry.verify("forged") is None
    now[0] = 60.0
    assert registry.verify(token) is None


def test_open_paths() -> None:
    assert is_open_path("/contoso/oauth2/v2.0/token") and is_open_path("/_admin/faults")
    assert not is_open_path("/api/data/v9.2/accounts") and not is_open_path("/_administrator")


def test_seed_guid_table_in_the_docstring_matches_the_code() -> None:
    documented = {}
    for line in (seed.__doc__ or "").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in BY_SET:
            documented[(parts[0], " ".join(parts[1:-1]))] = parts[-1]
    assert len(documented) == len(seed._rows())
    for (entity_set, key), guid in documented.items():
        assert seed.seed_id(entity_set, key) == guid
