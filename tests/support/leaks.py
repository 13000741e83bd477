"""Where secrets must never show up, and a search of those places.

The places are everything an operator or another local user can read: each process log, every
process's command line (what ``ps`` shows), the output of the operations commands, dead-letter
headers (exception text), and the repr/str of the objects that hold secrets. Bearer tokens are
random (emulators/common/auth.py: ``secrets.token_urlsafe(32)``, 43 characters), so besides the
tokens the test minted itself, every token-shaped string found is shown to the emulators: one
they accept is a live token that leaked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["Place", "cmdlines", "files", "find", "live_tokens", "token_candidates"]

# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
TOKEN_SHAPE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")


@dataclass(frozen=True)
class Place:
    name: str
    text: str


def files(root: Path, pattern: str = "*.log") -> Iterator[Place]:
    for path in sorted(root.rglob(pattern)):
        if path.is_file():
            yield Place(str(path), path.read_text(errors="replace"))


def cmdlines() -> Iterator[Place]:
    """Every readable ``/proc/<pid>/cmdline``: what ``ps -ef`` shows anyone on the machine."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            raw = (proc / "cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if raw:
            yield Place(f"/proc/{proc.name}/cmdline", raw.replace(b"\0", b" ").decode(errors="replace"))


def find(places: Iterable[Place], secrets: dict[str, str]) -> list[str]:
    """``"<secret name> in <place>: ...context..."`` for every occurrence (context masked)."""
    hits: list[str] = []
    for place in places:
        for label, secret in secrets.items():
            at = place.text.find(secret)
            if secret and at >= 0:
                context = place.text[max(0, at - 60):at + len(secret) + 20].replace(secret, "<SECRET>")
                hits.append(f"{label} in {place.name}: {context!r}")
    return hits


def token_candidates(places: Iterable[Place]) -> dict[str, str]:
    """Token-shaped strings -> the first place each was seen."""
    out: dict[str, str] = {}
    for place in places:
        for match in TOKEN_SHAPE.findall(place.text):
            out.setdefault(match, place.name)
    return out


def live_tokens(candidates: dict[str, str], api_urls: Iterable[str]) -> list[str]:
    """Candidates an emulator accepts as a bearer token (401 for anything else)."""
    found: list[str] = []
    with httpx.Client(timeout=10.0) as http:
        for url in api_urls:
            for token, where in candidates.items():
                resp = http.get(url, headers={"Authorization": f"Bearer {token}"})
                if resp.status_code != 401:
                    found.append(f"a live token of {url} in {where} (answered {resp.status_code})")
    return found
