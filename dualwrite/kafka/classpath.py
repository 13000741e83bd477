"""Resolve the broker's classpath with Maven from the POM shipped beside this module.

The jars land in the per-user Maven repository; the classpath Maven prints is cached under the
user's state directory, keyed by a hash of the POM, so a warm start runs no Maven at all.

The POM also pins Kafka's command-line tools (``kafka-tools``) at the broker's version, so the
same classpath runs them (`tool_command`, e.g. the console consumer): one resolution, one cache.
`resolve_classpath` takes another POM too (``pom=``, e.g. dualwrite.flink's), cached the same way
under its own hash: one resolver for every set of jars, none of them downloaded before it is used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["CACHE_DIR", "CONSOLE_CONSUMER", "KAFKA_VERSION", "POM", "ClasspathError",
           "resolve_classpath", "tool_command"]

POM = Path(__file__).with_name("pom.xml")
TOOLS_LOG4J = Path(__file__).with_name("tools-log4j2.yaml")
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
CACHE_DIR = Path.home() / ".cache" / "dualwrite"
KAFKA_VERSION = "4.1.1"


class ClasspathError(RuntimeError):
    """Java or Maven is missing, or Maven could not resolve a POM's jars."""


def require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ClasspathError(f"`{name}` was not found on PATH. {hint}")
    return path


def resolve_classpath(cache_dir: Path = CACHE_DIR, *, pom: Path = POM, timeout: float = 900.0,
                      label: str = "the Kafka jars") -> str:
    """The classpath of ``pom`` (the broker's by default), resolving it with Maven on first use;
    ``label`` names the jars in errors."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    cache = cache_dir / f"classpath-{digest}.txt"
    if cache.exists():
        classpath = cache.read_text().strip()
        if classpath and all(Path(p).exists() for p in classpath.split(":")):
            return classpath
    mvn = require_tool("mvn", "Install Apache Maven 3.8+ (Debian: `apt-get install maven`).")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")  # two processes resolving at once never share it
    cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:build-classpath",
           f"-Dmdep.outputFile={tmp}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ClasspathError(f"Maven did not resolve {label} within {timeout:.0f}s") from None
    if proc.returncode != 0 or not tmp.exists():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise ClasspathError(
            f"Maven could not resolve {label} (is the Maven repository reachable?):\n" + tail
        )
    tmp.replace(cache)
    return cache.read_text().strip()


def tool_command(main_class: str, *args: str, cache_dir: Path = CACHE_DIR) -> list[str]:
    """The argv of one of Kafka's command-line tools (``main_class``, e.g. `CONSOLE_CONSUMER`)
    on the broker's classpath, with its log lines on stderr (its stdout is data). Arguments are
    passed as given: never put a secret in them (the tools take ``--command-config FILE``)."""
    java = require_tool("java", "Install a JDK 17+ (Debian: `apt-get install openjdk-17-jdk-headless`).")
    return [java, f"-Dlog4j2.configurationFile={TOOLS_LOG4J}", "-cp", resolve_classpath(cache_dir),
            main_class, *args]
