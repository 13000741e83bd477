"""Run the stream processor in this process, without the ``faust -A`` command line."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from prometheus_client import start_http_server

from streams import native
from streams.app import create_app
from streams.config import StreamsConfig
from streams.maps.registry import MapRegistry

__all__ = ["run_worker"]


def run_worker(config: StreamsConfig, *, loglevel: str = "info",
               maps: MapRegistry | None = None, logging_config: dict[str, Any] | None = None) -> None:
    """Start a worker for ``config`` (its ``engine``: Faust's agents, or `streams.engine`) and
    block until it is stopped (SIGTERM/SIGINT). ``logging_config``: a `logging.config.dictConfig`
    for Faust's worker to apply (its own console otherwise); the batch engine keeps the root
    logger's handlers when it has some."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(config, maps)
    if config.metrics_port:
        start_http_server(config.metrics_port)
    logging.getLogger("streams").setLevel(loglevel.upper())
    logging.getLogger(__name__).info("hot path: %s", native.status())
    if config.engine == "batch":
        from streams.engine import Engine

        logging.basicConfig(level=loglevel.upper(),
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
        asyncio.run(Engine(app).run())
        return
    worker = faust.Worker(app, loglevel=loglevel, redirect_stdouts=False, logging_config=logging_config)
    # Faust's terminal spinner turns the root logger to DEBUG while it spins, which costs ~10% of
    # the CPU in aiokafka's debug calls at any level above info; a service needs no spinner.
    worker.spinner = None
    worker.execute_from_commandline()
