"""Running measured work in a child process and watching its memory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

CHILD = Path(__file__).with_name("child.py")
PAGE_SAMPLE_SECONDS = 0.02


class ChildFailed(RuntimeError):
    """A measured child process exited with an error."""


class ChildTimedOut(RuntimeError):
    """A measured child process took longer than it was allowed; it was stopped."""

    def __init__(self, operation: str, seconds: float) -> None:
        super().__init__(f"{operation} took longer than {seconds:.0f} s; stopped")
        self.seconds = seconds


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc (0 when gone)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(
                int(line.split()[1]) * 1024
                for line in status.splitlines()
                if line.startswith("VmRSS:")
            )
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def watched(
    command: list[str], env: dict[str, str] | None = None, timeout: float | None = None
) -> tuple[str, float, int]:
    """Run ``command``; its stdout, wall time and peak tree RSS: the largest sum of resident
    memory over the process and its descendants (worker processes), sampled every 20 ms.
    Raises ChildFailed when it exits non-zero, ChildTimedOut (after stopping it) on timeout."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its own process group: a timeout stops its workers too
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(PAGE_SAMPLE_SECONDS):
            peak = max(peak, _tree_rss(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ChildTimedOut(Path(command[1]).name, timeout or 0) from None
    finally:
        done.set()
        sampler.join()
    if process.returncode != 0:
        name = " ".join(Path(part).name for part in command[:3])
        raise ChildFailed(f"{name} failed ({process.returncode}):\n{err[-3000:]}")
    return out, time.perf_counter() - started, peak


def run_child(
    operation: str,
    spec: dict[str, Any],
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run ``child.py OPERATION SPEC``; its JSON answer plus wall time and peak tree RSS
    (``watched``); ``max_rss_self``/``max_rss_children`` are the kernel's exact per-process
    peaks (getrusage), reported by the child itself."""
    command = [sys.executable, str(CHILD), operation, json.dumps(spec)]
    try:
        out, seconds, peak = watched(command, env, timeout)
    except ChildTimedOut as exc:
        raise ChildTimedOut(operation, exc.seconds) from None
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["wall_seconds"] = seconds
    result["peak_tree_rss"] = peak
    return result


def command_seconds(command: list[str], repeat: int = 1) -> float:
    """Fastest wall time of a command over ``repeat`` runs; raises ChildFailed on error."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ChildFailed(f"{' '.join(command[:3])} ... failed: {done.stderr[-2000:]}")
        best = min(best, time.perf_counter() - started)
    return best
