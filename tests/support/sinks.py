"""The notification sinks (an SMTP server and an SMS API) as a process of their own.

Most tests run the sinks inside the test process (tests/support/notifications.py). A process of
their own is for callers that cannot host them: a synchronous test (schemathesis has codes sent
for real), and load runs, where hundreds of messages a second would take the load generator's
CPU (like a provider, they then run beside the system).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.polling import eventually_blocking
from tests.support.processes import free_port


@contextlib.contextmanager
def sinks_process(directory: Path, log: Path) -> Iterator[dict[str, str]]:
    """Run the sinks, keeping what they receive under ``directory`` and their output in ``log``;
    yields the notifications service's environment that points at them."""
    smtp_port, sms_port = free_port(), free_port()
    directory.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "notifications.adapters.sinks", "--dir", str(directory)]
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*command, "--smtp-port", str(smtp_port), "--sms-port", str(sms_port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        for port in (smtp_port, sms_port):

            def listening(port: int = port) -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"the notification sinks exited: see {log}")
                with socket.socket() as probe:
                    return probe.connect_ex(("127.0.0.1", port)) == 0

            eventually_blocking(
                listening, timeout=30, what=f"notification sinks listening on {port}"
            )
        yield {
            "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
            "NOTIFICATIONS_SMTP_PORT": str(smtp_port),
            "NOTIFICATIONS_SMS_ENDPOINT_URL": f"http://127.0.0.1:{sms_port}"
            "/2010-04-01/Accounts/{account_sid}/Messages.json",
        }
    finally:
        process.terminate()
        process.wait(30)
