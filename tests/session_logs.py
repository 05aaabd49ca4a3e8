"""The session's long-lived processes (daphne, the worker) log to files; when a test fails, what
they wrote while it ran is shown with the failure. A 500 from daphne says nothing by itself; the
traceback behind it is in daphne's log, which is gone with the machine that ran the suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

_TAIL_LINES = 120

# name -> the file it logs to; registered by the fixtures that start the process.
_logs: dict[str, Path] = {}
_starts: dict[str, int] = {}


def session_log(name: str, path: Path) -> None:
    """From now on, a failing test shows what ``path`` gained while it ran, as ``name``."""
    _logs[name] = path
    _starts.setdefault(name, 0)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def written_since(path: Path, start: int, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` lines ``path`` gained after byte ``start``."""
    try:
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except OSError as exc:
        return f"(unreadable: {exc})"
    kept = text.splitlines()[-lines:]
    return "\n".join(kept)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for name, path in _logs.items():
        _starts[name] = _size(path)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for name, path in _logs.items():
        text = written_since(path, _starts.get(name, 0))
        if text.strip():
            report.sections.append((f"{name} log while the test ran ({path})", text))
