"""A short soak: ``python -m bench.soak`` end to end, with kills, a Redis restart and duplicates.

The full run (1,000 orders) is recorded in the README's Reliability section; this one is small
enough for every test run and checks the same things: every order terminal, no violation.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_a_short_soak_ends_with_every_order_terminal_and_the_books_clean(tmp_path):
    report = tmp_path / "soak.json"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DJANGO_DEBUG": "True"}

    result = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--orders", "80", "--rate", "15"]
        + ["--kill-every", "1.5", "--drain-timeout", "180", "--report", str(report)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(report.read_text())
    assert figures["violations"] == 0
    assert figures["shipped"] + figures["cancelled"] == 80
    assert figures["redis restarts"] == 1
    assert sum(figures["kills"].values()) >= 1
    assert figures["events re-published (duplicates sent)"] > 0
