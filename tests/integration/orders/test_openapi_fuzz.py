"""Schema-driven fuzzing of the orders API (schemathesis): no input may cause a 5xx.

The API runs as a real process on a real database; every generated request is sent twice,
anonymously and with a manager's token, so both the auth walls and the handlers behind them
are exercised.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from eventing.auth import AuthSettings, Role, mint_token
from tests.support.infra import Infra
from tests.support.processes import ServiceProcess, base_url, service_process
from tests.support.system import migrated_database


@pytest.fixture(scope="module")
def orders_process(infra: Infra) -> Iterator[ServiceProcess]:
    url = asyncio.run(migrated_database(infra, "orders"))
    process = service_process(
        infra, "orders", url, {"ORDERS_CONSUMER_GROUP": f"fuzz-{time.time_ns()}"}
    )
    process.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(process.ready_url, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not process.alive:
            process.terminate()
            raise RuntimeError(f"orders did not start:\n{process.log_tail()}")
        time.sleep(0.2)
    try:
        yield process
    finally:
        process.terminate()


@pytest.mark.parametrize("role", [None, Role.MANAGER, Role.DRIVER])
def test_no_input_causes_a_server_error(orders_process: ServiceProcess, role: Role | None) -> None:
    """schemathesis generates requests for every operation from the OpenAPI document; the only
    check is the one the issue asks for: no 5xx, whatever the input."""
    headers = []
    if role is not None:
        token = mint_token(AuthSettings(), subject=f"fuzz-{role.value}", roles=[role])
        headers = ["--header", f"Authorization: Bearer {token}"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{base_url(orders_process)}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--seed",
            "20261126",
            "--phases",
            "examples,coverage,fuzzing",
            *headers,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(result.stdout[-1500:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout, result.stdout[-3000:]
