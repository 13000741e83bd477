"""No secret leaves the processes that need it (issue 8).

After a full run on the package's stack (the fuzz run before this test, plus traffic of its
own), the client secret (both emulators accept the one distinctive random secret the stack was
started with; every process uses it for both APIs), bearer tokens and a configured SASL
password must appear in no process log, no command line (``/proc/*/cmdline``, what ``ps``
shows), no output of ``dualwrite status --json`` / ``dlq list --json`` (also when the settings
are wrong), no dead letter, and no repr, str or exception text of the objects that hold them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from connectors.common.auth import ClientCredentials, TokenProvider
from connectors.common.kafka import KafkaConfig, read_records
from dualwrite.scenario import Scenario
from tests.integration.fuzz.conftest import FuzzStack
from tests.support.leaks import Place, cmdlines, files, find, live_tokens, token_candidates
from tests.support.pipeline import wait_for
from topics import read_headers

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
MAX_CANDIDATES = 5000


def mint(token_url: str, client_id: str, secret: str, scope: str) -> str:
    resp = httpx.post(token_url, data={"grant_type": "client_credentials", "client_id": client_id,
                                       "client_secret": secret, "scope": scope})
    resp.raise_for_status()
    return str(resp.json()["access_token"])


def cli(env: dict[str, str], *args: str) -> Place:
    proc = subprocess.run([sys.executable, "-m", "dualwrite", *args], cwd=REPO, timeout=120,
                          env={**os.environ, **env}, capture_output=True)
    text = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    return Place(f"`dualwrite {' '.join(args)}` (exit {proc.returncode})", text)


async def refused_token(token_url: str, client_id: str, secret: str, scope: str) -> str:
    """The text of the error a connector raises when the token endpoint says no."""
    async with httpx.AsyncClient() as http:
        provider = TokenProvider(ClientCredentials(token_url=token_url, client_id=client_id,
                                                   client_secret=SecretStr(secret), scope=scope), http)
        try:
            await provider.token()
        except Exception as exc:
            return f"{exc!s} | {exc!r} | {exc.__dict__!r} | {provider!r}"
    raise AssertionError("the token endpoint accepted a wrong client")


@pytest.mark.timeout(600)
def test_no_secret_in_logs_command_lines_status_dead_letters_or_reprs(
        fuzz_stack: FuzzStack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack, secret = fuzz_stack.stack, fuzz_stack.client_secret
    bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
    scenario = Scenario(stack.dataverse(), stack.finance(), prefix="SL", seed=3)
    for _ in range(6):
        scenario.step()
    wait_for(lambda: scenario.progress().done, 240, "the traffic to arrive", interval=2.0)

    apis = {"dataverse": (stack.env["DUALWRITE_DATAVERSE__TOKEN_URL"], f"{stack.dv_url}/.default",
                          f"{stack.dv_url}/api/data/v9.2/cdm_companies?$top=1"),
            "finance": (stack.env["DUALWRITE_FINANCE__TOKEN_URL"], f"{stack.fo_url}/.default",
                        f"{stack.fo_url}/data/LegalEntities?$top=1")}
    client_id = stack.cfg.client_id
    minted = {f"{name} token": mint(token_url, client_id, secret, scope)
              for name, (token_url, scope, _) in apis.items()}
    probes = [probe for _, _, probe in apis.values()]
    # The token search is not vacuous: a token the emulators issued is found as live.
    assert len(live_tokens({minted["finance token"]: "self-check"}, probes)) == 1

    sasl = f"dwsasl-{secrets.token_hex(16)}"
    sasl_env = {"DUALWRITE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
                "DUALWRITE_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
                "DUALWRITE_KAFKA__SASL_USERNAME": "dualwrite",
                "DUALWRITE_KAFKA__SASL_PASSWORD": sasl}
    places = [*files(stack.cfg.workdir / "logs"), *files(stack.cfg.workdir, "broker.log"),
              *cmdlines(),
              cli(stack.env, "status", "--json", "--timeout", "10"),
              cli(stack.env, "dlq", "list", "--json"),
              # a secure cluster it cannot reach, and settings that do not hold together
              cli({**stack.env, **sasl_env}, "status", "--json", "--timeout", "3"),
              cli({**stack.env, **sasl_env, "DUALWRITE_KAFKA__SASL_MECHANISM": "BOGUS"},
                  "status", "--json", "--timeout", "3"),
              cli({**stack.env, **sasl_env, "DUALWRITE_KAFKA__SASL_USERNAME": ""},
                  "status", "--json", "--timeout", "3"),
              cli({**stack.env, "DUALWRITE_FINANCE__CLIENT_ID": "", "DUALWRITE_TOPICS__PARTITIONS": "x"},
                  "status", "--json", "--timeout", "3")]
    for letter in read_records(KafkaConfig(bootstrap_servers=bootstrap), "sync.dlq", timeout=120):
        places.append(Place(f"dead letter {letter.partition}:{letter.offset}",
                            f"{read_headers(letter.headers)} {letter.key!r} {letter.value!r}"))

    # In-process: the objects that hold the secrets, as a log line or a traceback shows them.
    for name, value in {**stack.env, **sasl_env}.items():
        monkeypatch.setenv(name, value)
    from dualwrite.commands.connectors import dataverse_connection, finance_connection, kafka_config
    from dualwrite.settings import Settings

    settings = Settings()
    for label, obj in (("Settings", settings), ("KafkaSettings", settings.kafka),
                       ("KafkaConfig", kafka_config(settings)),
                       ("DataverseConnection", dataverse_connection(settings)),
                       ("FinanceConnection", finance_connection(settings))):
        places.append(Place(f"repr/str of {label}", f"{obj!r} {obj!s}"))
    places.append(Place("Settings.model_dump_json()", settings.model_dump_json()))
    for name, (token_url, scope, _) in apis.items():
        places.append(Place(f"a refused token request ({name})",
                            asyncio.run(refused_token(token_url, "intruder", secret, scope))))

    # The search reaches what it claims to: every child's command line is among the places, and
    # the secret searched for is the one the children really hold (in their environment).
    children = {f"/proc/{c.process.pid}/cmdline": c for c in stack.sup.children.values()
                if c.process is not None and c.alive}
    assert len(children) == len(stack.sup.children), "a child is not running"
    assert set(children) <= {p.name for p in places}
    environs = [Place(name, Path(name.replace("cmdline", "environ")).read_bytes().decode(errors="replace"))
                for name in children]
    assert len(find(environs, {"client secret": secret})) == len(children)

    wanted = {"client secret": secret, "SASL password": sasl, **minted}
    hits = find(places, wanted)
    candidates = token_candidates(places)
    checked = dict(list(candidates.items())[:MAX_CANDIDATES])
    leaked_tokens = live_tokens(checked, probes)
    print(f"\nsearched {len(places)} places ({sum(len(p.text) for p in places):,} characters); "
          f"{len(candidates)} token-shaped strings, {len(checked)} shown to the emulators; "
          f"{len(hits)} secret hits, {len(leaked_tokens)} live tokens")
    assert not hits, "\n".join(hits[:20])
    assert not leaked_tokens, "\n".join(leaked_tokens[:20])
    assert len(candidates) <= MAX_CANDIDATES, f"{len(candidates)} token-shaped strings: not all checked"
