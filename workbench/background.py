"""Training beside an annotator without making the annotator laggy.

A CPU-bound training process and a Jupyter kernel serving the annotator compete for the same
cores; on a small machine (2 cores) the annotator's stroke -> kernel latency got 3.7 times worse
at p95 while a training ran at normal priority. Run training at a lower CPU priority, with one
core left to the kernel and the browser (and, on Linux, in a session of its own whose
scheduler autogroup is niced too: see ``lower_priority``):

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
    autogroup_niceness: int | None = None  # its scheduler autogroup's (Linux), if it leads one


def default_threads() -> int:
    """One thread per core but one, so a core stays free for the kernel and the browser."""
    return max((os.cpu_count() or 1) - 1, 1)


def lower_priority(niceness: int = DEFAULT_NICENESS, threads: int | None = None) -> Priority:
    """Run the calling process at niceness ``niceness`` (at least: a process already nicer
    stays as it is, and calling twice does not add up) with ``threads`` torch threads (default:
    one per core but one).

    On Linux with scheduler autogroups (``/proc/sys/kernel/sched_autogroup_enabled``, the
    default on most distributions) the scheduler first shares the CPU between sessions, and a
    process's niceness only counts against processes of its own session: a niced training in
    one terminal still takes half the CPU from a Jupyter server started in another. So a
    process that leads its own session (``setsid``; ``train_in_background`` starts it so) also
    gets its autogroup niced, which counts against every other session. A process that does not
    lead its session leaves the autogroup alone (it would nice the whole session).

    Niceness is POSIX only: on platforms without ``os.nice`` (Windows) only the thread count
    changes and ``niceness`` in the result is None; lower the process's priority class in the
    Task Manager (or with ``psutil``) there.
    """
    if niceness < 0:
        raise ValueError(f"niceness must be >= 0 (lower priority only), got {niceness}")
    nice = getattr(os, "nice", None)
    now: int | None = None
    group: int | None = None
    if nice is not None:
        current = int(nice(0))
        now = int(nice(niceness - current)) if niceness > current else current
        if os.getsid(0) == os.getpid():
            group = nice_autogroup(os.getpid(), niceness)
    count = default_threads() if threads is None else max(int(threads), 1)
    import torch

    torch.set_num_threads(count)
    return Priority(now, int(torch.get_num_threads()), group)


def nice_autogroup(pid: int, niceness: int) -> int | None:
    """Set the niceness of the scheduler autogroup of process ``pid`` (Linux) to at least
    ``niceness``; returns it, or None where there are no autogroups or it cannot be set."""
    path = Path(f"/proc/{int(pid)}/autogroup")
    try:
        current = int(path.read_text().split("nice")[-1])
        if niceness > current:
            path.write_text(str(int(niceness)))
            current = int(path.read_text().split("nice")[-1])
    except (OSError, ValueError):
        return None
    return current


ACTIVITY_FILE = "annotating.touch"
"""Touched in a project folder by annotation sessions; trainers of that project yield to it."""


def mark_annotator_activity(project_dir: str | Path) -> None:
    """Record that someone is annotating the project now (the activity file's mtime)."""
    path = Path(project_dir) / ACTIVITY_FILE
    try:
        os.utime(path)
    except FileNotFoundError:
        path.touch()


def seconds_since_annotator_activity(project_dir: str | Path) -> float | None:
    """Seconds since an annotation session last marked activity, None if it never did."""
    try:
        return max(time.time() - (Path(project_dir) / ACTIVITY_FILE).stat().st_mtime, 0.0)
    except FileNotFoundError:
        return None


def wait_while_annotating(
    project_dir: str | Path, *, quiet: float = 1.0, max_pause: float = 5.0, poll: float = 0.05
) -> float:
    """Sleep while someone annotated the project in the last ``quiet`` seconds, for at most
    ``max_pause`` seconds (so a training still progresses during long sessions); returns the
    seconds slept. A trainer calls it between steps: strokes and submits then do not queue
    behind a training step on a small machine."""
    waited = 0.0
    while waited < max_pause:
        since = seconds_since_annotator_activity(project_dir)
        if since is None or since >= quiet:
            break
        step = min(poll, max_pause - waited)
        time.sleep(step)
        waited += step
    return waited


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


def train_in_background(
    project_dir: str | Path,
    *,
    seed: int | None = None,
    epochs: int | None = None,
    patience: int | None = None,
    fresh: bool = False,
    niceness: int = DEFAULT_NICENESS,
    threads: int | None = None,
    log: str | Path | None = None,
) -> BackgroundJob:
    """Start ``workbench train PROJECT_DIR`` in a child process at a lower CPU priority
    (``lower_priority(niceness, threads)``), writing its output to ``log`` (default:
    ``<project>/logs/train-<date>-<time>.log``). Returns at once; the training records its
    model version in the project as usual. A folder without a project raises
    `ProjectNotFoundError`, and ``epochs`` or ``patience`` below 1 `ValueError`, here, before
    anything is started or written."""
    from workbench.store import open_project

    for name, value in (("epochs", epochs), ("patience", patience)):
        if value is not None and int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    project = Path(project_dir)
    open_project(project).close()
    args = ["train", str(project)]
    if seed is not None:
        args += ["--seed", str(int(seed))]
    if epochs is not None:
        args += ["--epochs", str(int(epochs))]
    if patience is not None:
        args += ["--patience", str(int(patience))]
    if fresh:
        args.append("--fresh")
    return run_in_background(
        args, project / LOG_DIR if log is None else Path(log), niceness=niceness, threads=threads
    )


def run_in_background(
    args: Sequence[str], log: Path, *, niceness: int = DEFAULT_NICENESS, threads: int | None = None
) -> BackgroundJob:
    """Start ``workbench ARGS`` at a lower priority; ``log`` is the log file, or a folder to
    create one in (named after the command and the time)."""
    if niceness < 0:
        raise ValueError(f"niceness must be >= 0 (lower priority only), got {niceness}")
    count = default_threads() if threads is None else max(int(threads), 1)
    if log.suffix != ".log":
        log = log / f"{args[0] if args else 'workbench'}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = (
        sys.executable,
        "-m",
        "workbench.background",
        "--niceness",
        str(niceness),
        "--threads",
        str(count),
        "--",
        *args,
    )
    env = dict(os.environ)
    env.update({name: str(count) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    env["PYTHONUNBUFFERED"] = "1"
    posix = hasattr(os, "setpriority")
    with open(log, "ab") as out:
        # its own session (and so its own scheduler autogroup on Linux), see lower_priority
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=posix,
        )
    if posix:
        # at once from here too, so that the child's imports already run at low priority
        with contextlib.suppress(ProcessLookupError):
            os.setpriority(
                os.PRIO_PROCESS,
                process.pid,
                max(niceness, os.getpriority(os.PRIO_PROCESS, process.pid)),
            )
            nice_autogroup(process.pid, niceness)
    return BackgroundJob(process, log, command)


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m workbench.background [--niceness N] [--threads T] -- ARGS``: the
    ``workbench`` command ARGS at a lower priority (what ``run_in_background`` starts)."""
    parser = argparse.ArgumentParser(
        prog="python -m workbench.background", description=_main.__doc__
    )
    parser.add_argument("--niceness", type=int, default=DEFAULT_NICENESS)
    parser.add_argument("--threads", type=int)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    args = list(options.args)
    if args[:1] == ["--"]:
        args = args[1:]
    priority = lower_priority(options.niceness, options.threads)
    print(
        f"[workbench.background] pid {os.getpid()}, niceness {priority.niceness}, "
        f"autogroup niceness {priority.autogroup_niceness}, {priority.threads} torch "
        f"threads: workbench {' '.join(args)}",
        flush=True,
    )
    from workbench.cli import main

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop() ends it like Ctrl+C
    return main(args)


if __name__ == "__main__":
    sys.exit(_main())
