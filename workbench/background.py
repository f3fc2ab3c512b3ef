"""Training beside an annotator without making the annotator laggy.

A CPU-bound training process and a Jupyter kernel serving the annotator compete for the same
cores; on a small machine (2 cores) the annotator's stroke -> kernel latency got 3.7 times worse
at p95 while a training ran at normal priority. Run training at a lower CPU priority, with one
core left to the kernel and the browser:

```python
from workbench.background import train_in_background
job = train_in_background("path/to/project")  # `workbench train` at niceness 10, its output
job.log                                        # in <project>/logs/train-<time>.log
job.wait()                                     # or job.stop()
```

or, inside a process that trains, call ``lower_priority()`` first. Niceness only changes who
waits when both want a core: alone on the machine the training runs as fast as before.

This module imports no widget code (the core never does).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_NICENESS = 10
LOG_DIR = "logs"


@dataclass(frozen=True)
class Priority:
    """What ``lower_priority`` set."""

    niceness: int | None  # the process's niceness now; None where the platform has no os.nice
    threads: int  # torch's intra-op threads now


def default_threads() -> int:
    """One thread per core but one, so a core stays free for the kernel and the browser."""
    return max((os.cpu_count() or 1) - 1, 1)


def lower_priority(niceness: int = DEFAULT_NICENESS, threads: int | None = None) -> Priority:
    """Run the calling process at niceness ``niceness`` (at least: a process already nicer
    stays as it is, and calling twice does not add up) with ``threads`` torch threads (default:
    one per core but one).

    Niceness is POSIX only: on platforms without ``os.nice`` (Windows) only the thread count
    changes and ``niceness`` in the result is None; lower the process's priority class in the
    Task Manager (or with ``psutil``) there.
    """
    if niceness < 0:
        raise ValueError(f"niceness must be >= 0 (lower priority only), got {niceness}")
    nice = getattr(os, "nice", None)
    now: int | None = None
    if nice is not None:
        current = int(nice(0))
        now = int(nice(niceness - current)) if niceness > current else current
    count = default_threads() if threads is None else max(int(threads), 1)
    import torch

    torch.set_num_threads(count)
    return Priority(now, int(torch.get_num_threads()))


@dataclass
class BackgroundJob:
    """A ``workbench`` command running in a child process, its output in ``log``."""

    process: subprocess.Popen[bytes]
    log: Path
    command: tuple[str, ...]

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the command to end; returns its exit status."""
        return int(self.process.wait(timeout))

    def stop(self, timeout: float = 10.0) -> int:
        """Terminate the command (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return int(self.process.wait())


def train_in_background(project_dir: str | Path, *, seed: int | None = None,
                        epochs: int | None = None, fresh: bool = False,
                        niceness: int = DEFAULT_NICENESS, threads: int | None = None,
                        log: str | Path | None = None) -> BackgroundJob:
    """Start ``workbench train PROJECT_DIR`` in a child process at a lower CPU priority
    (``lower_priority(niceness, threads)``), writing its output to ``log`` (default:
    ``<project>/logs/train-<date>-<time>.log``). Returns at once; the training records its
    model version in the project as usual."""
    project = Path(project_dir)
    args = ["train", str(project)]
    if seed is not None:
        args += ["--seed", str(int(seed))]
    if epochs is not None:
        args += ["--epochs", str(int(epochs))]
    if fresh:
        args.append("--fresh")
    return run_in_background(args, project / LOG_DIR if log is None else Path(log),
                             niceness=niceness, threads=threads)


def run_in_background(args: Sequence[str], log: Path, *, niceness: int = DEFAULT_NICENESS,
                      threads: int | None = None) -> BackgroundJob:
    """Start ``workbench ARGS`` at a lower priority; ``log`` is the log file, or a folder to
    create one in (named after the command and the time)."""
    if niceness < 0:
        raise ValueError(f"niceness must be >= 0 (lower priority only), got {niceness}")
    count = default_threads() if threads is None else max(int(threads), 1)
    if log.suffix != ".log":
        log = log / f"{args[0] if args else 'workbench'}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = (sys.executable, "-m", "workbench.background", "--niceness", str(niceness),
               "--threads", str(count), "--", *args)
    env = dict(os.environ)
    env.update({name: str(count) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    env["PYTHONUNBUFFERED"] = "1"
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, env=env)
    if hasattr(os, "setpriority"):
        # at once from here too, so that the child's imports already run at low priority
        with contextlib.suppress(ProcessLookupError):
            os.setpriority(os.PRIO_PROCESS, process.pid, max(niceness, os.getpriority(
                os.PRIO_PROCESS, process.pid)))
    return BackgroundJob(process, log, command)


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m workbench.background [--niceness N] [--threads T] -- ARGS``: the
    ``workbench`` command ARGS at a lower priority (what ``run_in_background`` starts)."""
    parser = argparse.ArgumentParser(prog="python -m workbench.background",
                                     description=_main.__doc__)
    parser.add_argument("--niceness", type=int, default=DEFAULT_NICENESS)
    parser.add_argument("--threads", type=int)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    args = list(options.args)
    if args[:1] == ["--"]:
        args = args[1:]
    priority = lower_priority(options.niceness, options.threads)
    print(f"[workbench.background] pid {os.getpid()}, niceness {priority.niceness}, "
          f"{priority.threads} torch threads: workbench {' '.join(args)}", flush=True)
    from workbench.cli import main

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop() ends it like Ctrl+C
    return main(args)


if __name__ == "__main__":
    sys.exit(_main())
