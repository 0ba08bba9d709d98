"""Serving a service's HTTP API, from one process or from several workers behind one port.

With ``<PREFIX>_HTTP_WORKERS`` above 1, uvicorn's supervisor binds the port once and starts the
workers: each is a fresh interpreter that builds the app (``worker_app``) and accepts from the
shared socket. A worker that dies is replaced within about a second; meanwhile the others take
the connections waiting in the socket's queue, so only the requests the dead worker was serving
are cut, and a client retries those (placement carries an ``Idempotency-Key``: one order).

Each worker is a whole service instance of its own: its own database pools, its own member of
the service's consumer group, its own rate limits and stream slots. What a scrape of ``/metrics``
sees is the instance's, all workers added up (``eventing.metrics.exposition``).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from eventing.logs import configure_logging
from eventing.metrics import HTTP_WORKERS_STARTED, PROCESS_RESTARTS
from eventing.tracing import configure_tracing
from service_kit.settings import ServiceSettings

log = logging.getLogger("service_kit.workers")

# How the supervisor tells a worker what to build; workers inherit the environment.
WORKER_ENV = "SERVICE_KIT_WORKER"
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Created by the first worker to start in a multiprocess directory: the one that counts the
# supervisor's restarts, which would otherwise be counted once per worker.
_RESTARTS_NOTED = "supervisor-restarts-noted"


@dataclass(frozen=True)
class Worker:
    """What a worker process builds and how it logs."""

    service: str
    app_factory: str  # "module:function", a function of no arguments returning the app
    log_level: str
    log_format: str


def note_restart(environ: Mapping[str, str]) -> None:
    """Count and say that this process is a restart (deploy/local/supervise.sh tells it so)."""
    try:
        restarts = int(environ.get("SUPERVISOR_RESTARTS") or 0)
    except ValueError:
        restarts = 0
    if restarts > 0:
        PROCESS_RESTARTS.inc(restarts)
        log.warning(
            "restarted by its supervisor (restart %d; its last run ended with %s)",
            restarts,
            environ.get("SUPERVISOR_LAST_EXIT") or "an unknown status",
        )


def _import_path(factory: Callable[[], FastAPI]) -> str:
    path = f"{factory.__module__}:{factory.__qualname__}"
    module, name = path.split(":")
    if getattr(importlib.import_module(module), name, None) is not factory:
        raise ValueError(f"{path} does not name the app factory: workers could not import it")
    return path


def serve(
    service: str,
    app_factory: Callable[[], FastAPI],
    config: ServiceSettings,
    *,
    log_format: str,
) -> None:
    """Serve the app on the configured address until stopped, from ``config.http_workers``
    processes."""
    import uvicorn

    from service_kit.http_server import BoundedHttpToolsProtocol

    def run(app: FastAPI | str, **workers: Any) -> None:
        uvicorn.run(
            app,
            host=config.http_host,
            port=config.http_port,
            log_config=None,
            access_log=False,
            http=BoundedHttpToolsProtocol,
            proxy_headers=bool(config.http_trusted_proxies),
            forwarded_allow_ips=config.http_trusted_proxies or None,
            **workers,
        )

    if config.http_workers == 1:
        note_restart(os.environ)
        run(app_factory())
        return
    # A directory of this run's own: files of an earlier run (a restart, perhaps with the same
    # pids in a new container) would be added to this one's. Set before the workers start, as
    # prometheus_client picks its mode when first imported.
    directory = tempfile.mkdtemp(prefix=f"{service}-metrics-")
    worker = Worker(service, _import_path(app_factory), config.log_level, log_format)
    os.environ[MULTIPROCESS_DIR_ENV] = directory
    os.environ[WORKER_ENV] = json.dumps(asdict(worker))
    log.info("serving with %d workers; their metrics in %s", config.http_workers, directory)
    try:
        run(f"{__name__}:worker_app", factory=True, workers=config.http_workers)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def worker_app() -> FastAPI:
    """The app of one worker process (uvicorn's factory), set up as ``serve`` was asked to."""
    worker = Worker(**json.loads(os.environ[WORKER_ENV]))
    configure_logging(worker.service, worker.log_level, fmt=worker.log_format)
    configure_tracing(worker.service)
    HTTP_WORKERS_STARTED.inc()
    try:
        (Path(os.environ[MULTIPROCESS_DIR_ENV]) / _RESTARTS_NOTED).touch(exist_ok=False)
    except FileExistsError:
        pass
    else:
        note_restart(os.environ)
    module, name = worker.app_factory.split(":")
    factory: Callable[[], FastAPI] = getattr(importlib.import_module(module), name)
    return factory()
