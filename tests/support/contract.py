"""schemathesis, a client we did not write, against a service's own OpenAPI document.

Every check schemathesis has (``--checks all``: server errors, status codes, content types,
response headers and schemas, negative data rejected, positive data accepted, auth that is not
ignored, use after free, resource availability...) in every phase (examples, coverage,
fuzzing, stateful). What a service's document cannot say (e.g. that a pizza must be on the
menu *now*) is configured per operation in ``tests/contract/<service>.toml``, each entry with
its reason; nothing else is relaxed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.processes import TEST_LOG_DIR

CONFIGS = Path(__file__).resolve().parents[1] / "contract"
PHASES = "examples,coverage,fuzzing,stateful"
SEED = "20261201"


def run_schemathesis(
    service: str,
    base_url: str,
    *,
    token: str,
    max_examples: int = 25,
) -> str:
    """Run schemathesis against ``base_url``; returns its report, raises if it found anything."""
    report = TEST_LOG_DIR / f"schemathesis-{service}.txt"
    report.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIGS / f"{service}.toml"),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        PHASES,
        "--max-examples",
        str(max_examples),
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--no-color",
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "SCHEMATHESIS_BEARER": token},
    )
    report.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise AssertionError(
            f"schemathesis found problems in the {service} API (whole report: {report}):\n"
            + _failures(result.stdout)
        )
    return result.stdout


def _failures(stdout: str) -> str:
    start = stdout.find("FAILURES")
    section = stdout[start:] if start >= 0 else stdout
    return section[:12000]
