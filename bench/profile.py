"""``python -m bench.profile``: where the checkout spends its time under load, by py-spy.

It starts the same stack as the benchmark, drives it flat out (or at ``--rate``), samples the
worker (with its pool), daphne and the relay with py-spy for ``--seconds``, and writes, per
process, the collapsed stacks and a summary of the functions that take the most time, inclusive
and self, into ``--out`` (default bench/out/, which git ignores).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from bench.client import Target
from bench.load import FeedSockets, LoadRun
from bench.stack import ROOT, Stack


def _drive(stack: Stack, args: argparse.Namespace, stop: threading.Event) -> None:
    async def go() -> None:
        target = Target.parse(stack.url)
        feed = FeedSockets(target, max(args.sockets, 1))
        await feed.open()
        run = LoadRun(
            target,
            rate=args.rate,
            concurrency=0 if args.rate else args.concurrency,
            duration=args.seconds + 6,
            follow=False,
            feed=feed,
            label="profile load",
            progress=False,
        )
        await run.run()
        feed.close()
        print(
            f"load: {run.stats.shipped} shipped, {run.completed_per_s(skip=2):.1f}/s",
            file=sys.stderr,
        )

    asyncio.run(go())
    stop.set()


def summarize(collapsed: Path, top: int = 40) -> str:
    """Inclusive and self sample counts per function from py-spy's collapsed stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    # A frame's name can hold newlines (py-spy names module code by its docstring): a record
    # ends only at a line ending in a count.
    pending = ""
    for line in collapsed.read_text(errors="replace").splitlines():
        pending += line
        stack, _, count = pending.rpartition(" ")
        if not count.isdigit():
            continue
        pending = ""
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    lines = [f"{collapsed.name}: {total} samples", "", "inclusive %  function (file:line)"]
    lines += [f"{100 * n / total:9.1f}  {f}" for f, n in inclusive.most_common(top)]
    lines += ["", "self %       function (file:line)"]
    lines += [f"{100 * n / total:9.1f}  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def _short(frame: str) -> str:
    return frame.replace(str(ROOT) + "/", "").replace(".venv/lib/python3.11/site-packages/", "~/")


def _resummarize(paths: list[Path]) -> None:
    for path in paths:
        path.with_suffix(".txt").write_text(summarize(path))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--sockets", type=int, default=1)
    parser.add_argument("--rate-hz", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--tag", default="", help="suffix for the output files")
    parser.add_argument(
        "--idle",
        action="store_true",
        help="wall clock: every thread at every sample, waiting included (instead of --gil)",
    )
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    with Stack() as stack:
        stop = threading.Event()
        driver = threading.Thread(target=_drive, args=(stack, args, stop))
        driver.start()
        threading.Event().wait(3)  # let the load reach a steady state
        recorders = []
        for name in ("worker", "daphne", "relay"):
            out = args.out / f"{name}{args.tag}.collapsed"
            cmd = [
                py_spy,
                "record",
                "--pid",
                str(stack.children[name].pid),
                "--duration",
                str(args.seconds),
                "--rate",
                str(args.rate_hz),
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
                # Only samples that hold the GIL: on a loaded 2-core machine a thread waiting for
                # the CPU or the GIL would otherwise look busy. --idle asks where time waits.
                "--idle" if args.idle else "--gil",
            ]
            if name == "worker":
                cmd.append("--subprocesses")
            recorders.append((out, subprocess.Popen(cmd, stdout=subprocess.DEVNULL)))
        for out, rec in recorders:
            rec.wait()
            if out.exists():
                summary = summarize(out)
                (out.with_suffix(".txt")).write_text(summary)
                print(summary[:3000])
        driver.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
