"""The notification sinks (an SMTP server and an SMS API) as their own process, for load runs.

The tests run the sinks inside the test process; at hundreds of messages a second they would
take the load generator's CPU, so load runs give them a process of their own, like a provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tests.support.processes import free_port


async def _listening(port: int, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if loop.time() > deadline:
            raise TimeoutError(f"notification sinks not listening on {port}")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def sinks_process(directory: Path) -> AsyncIterator[dict[str, str]]:
    """Run the sinks; yields the notifications service's environment that points at them."""
    smtp_port, sms_port = free_port(), free_port()
    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "notifications.adapters.sinks", "--dir", str(directory)]
    process = subprocess.Popen(
        [*command, "--smtp-port", str(smtp_port), "--sms-port", str(sms_port)],
        stdout=subprocess.DEVNULL,
        stderr=(directory / "sinks.log").open("ab"),
    )
    try:
        await _listening(smtp_port)
        await _listening(sms_port)
        yield {
            "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
            "NOTIFICATIONS_SMTP_PORT": str(smtp_port),
            "NOTIFICATIONS_SMS_ENDPOINT_URL": f"http://127.0.0.1:{sms_port}"
            "/2010-04-01/Accounts/{account_sid}/Messages.json",
        }
    finally:
        process.terminate()
        process.wait(30)
