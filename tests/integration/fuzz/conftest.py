"""One live stack for the fuzz package: the hostile-input run and the secret-leak check share it
(the leak check then greps what a run with 10,000 hostile records left behind)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from dualwrite.stack import Stack
from tests.support.pipeline import running_stack


@dataclass(frozen=True)
class FuzzStack:
    stack: Stack
    client_secret: str  # distinctive and random, so a grep for it finds only leaks


@pytest.fixture(scope="package")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzStack]:
    secret = f"dwfz-{secrets.token_hex(20)}"
    with running_stack(tmp_path_factory.mktemp("fuzz"), client_secret=SecretStr(secret)) as stack:
        yield FuzzStack(stack, secret)
