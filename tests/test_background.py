"""workbench.background: lowering a process's priority, and training in a real child process at
a lower priority with its output in a log file under the project."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from workbench.background import (
    default_threads,
    mark_annotator_activity,
    run_in_background,
    seconds_since_annotator_activity,
    train_in_background,
    wait_while_annotating,
)
from workbench.store import ProjectConfig, Task, create_project

posix_only = pytest.mark.skipif(not hasattr(os, "nice"), reason="niceness is POSIX only")
autogroups = pytest.mark.skipif(
    not Path("/proc/self/autogroup").is_file(), reason="scheduler autogroups are Linux only"
)


def autogroup_nice(pid: int) -> int | None:
    """The niceness of the scheduler autogroup of ``pid``; None where it has none to show: no
    autogroups (not Linux), or a process still in the boot session's default group, whose file
    is empty (a container whose init never called setsid, as on CI)."""
    path = Path(f"/proc/{pid}/autogroup")
    text = path.read_text().split() if path.is_file() else []
    return int(text[-1]) if text else None


def python(code: str, new_session: bool = False) -> str:
    """Run ``code`` in a fresh interpreter (lowering priority there, not in the test run)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=new_session,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    create_project(folder, ProjectConfig("bg", Task.CLASSIFICATION, ("a", "b"))).close()
    return folder


def test_default_threads_leave_a_core_free() -> None:
    assert default_threads() == max((os.cpu_count() or 1) - 1, 1)


@posix_only
def test_lower_priority_sets_niceness_and_torch_threads_once() -> None:
    out = python("""
        import os, torch
        from workbench.background import lower_priority
        first = lower_priority(7, threads=1)
        again = lower_priority(7)  # a target, not an increment: stays at 7
        print(first.niceness, os.getpriority(os.PRIO_PROCESS, 0), torch.get_num_threads(),
              again.niceness, again.threads, first.autogroup_niceness)
    """)
    # not a session leader: its session's autogroup (this test run's) is left alone
    assert out.split() == ["7", "7", "1", "7", str(default_threads()), "None"]


@autogroups
def test_lower_priority_nices_the_autogroup_of_its_own_session() -> None:
    out = python(
        """
        import os
        from workbench.background import lower_priority
        p = lower_priority(6, threads=1)
        print(p.niceness, p.autogroup_niceness, open("/proc/self/autogroup").read().split()[-1])
    """,
        new_session=True,
    )
    assert out.split() == ["6", "6", "6"]


def test_lower_priority_without_os_nice_changes_only_threads() -> None:
    out = python("""
        import os
        del os.nice
        from workbench.background import lower_priority
        p = lower_priority(10, threads=1)
        print(p.niceness, p.threads)
    """)
    assert out.split() == ["None", "1"]


def test_lower_priority_refuses_to_raise_priority() -> None:
    from workbench.background import lower_priority

    with pytest.raises(ValueError, match="niceness"):
        lower_priority(-5)


@posix_only
def test_train_in_background_runs_niced_and_logs_to_the_project(project: Path) -> None:
    ours = autogroup_nice(os.getpid())
    job = train_in_background(project, epochs=1, patience=2, niceness=9, threads=1)
    try:
        child = psutil.Process(job.pid)
        assert child.nice() == 9  # set by the parent at once, before the child's imports
        assert os.getsid(job.pid) == job.pid  # its own session, hence its own autogroup
        # a session leader has an autogroup of its own wherever Linux has autogroups
        group = autogroup_nice(job.pid)
        assert group == (9 if Path("/proc/self/autogroup").is_file() else None)
        assert autogroup_nice(os.getpid()) == ours  # the test run's own is untouched
        assert job.command[-6:] == ("train", str(project), "--epochs", "1", "--patience", "2")
        status = job.wait(timeout=300)
    finally:
        job.stop()
    assert job.log.parent == project / "logs" and job.log.name.startswith("train-")
    text = " ".join(job.log.read_text().split())  # rich wraps lines at 80 columns
    # the child's own report, then the output of `workbench train` (no labels: an error)
    assert (
        f"pid {job.pid}, niceness 9, autogroup niceness {group}, 1 torch threads: "
        f"workbench train {project}"
    ) in text
    assert "training needs at least" in text and status == 1


@posix_only
def test_stop_ends_a_background_command(tmp_path: Path, project: Path) -> None:
    job = run_in_background(["status", str(project)], tmp_path / "own.log", niceness=3)
    assert job.log == tmp_path / "own.log"
    assert psutil.Process(job.pid).nice() == 3
    status = job.stop(timeout=60)
    assert not job.running and job.returncode == status and status != 0
    assert job.stop() == status  # stopping again is harmless


@contextlib.contextmanager
def annotating(project: Path) -> Iterator[None]:
    """Another thread marks annotator activity in ``project`` every 50 ms meanwhile."""
    stop = threading.Event()

    def mark() -> None:
        while not stop.is_set():
            mark_annotator_activity(project)
            time.sleep(0.05)

    worker = threading.Thread(target=mark)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()


def test_wait_while_annotating_waits_for_quiet_and_is_capped(project: Path) -> None:
    assert seconds_since_annotator_activity(project) is None
    assert wait_while_annotating(project, quiet=0.5) == 0.0  # nobody ever annotated
    mark_annotator_activity(project)
    since = seconds_since_annotator_activity(project)
    assert since is not None and since < 0.5
    waited = wait_while_annotating(project, quiet=0.4, poll=0.02)
    assert 0.25 <= waited <= 0.6
    assert wait_while_annotating(project, quiet=0.4) == 0.0  # quiet now: no wait
    with annotating(project):  # a never-ending session still lets training step
        assert wait_while_annotating(project, quiet=0.5, max_pause=0.3) == pytest.approx(
            0.3, abs=0.06
        )


def test_training_pauses_while_the_project_is_annotated(tmp_path: Path) -> None:
    """A real classifier training with `YieldToAnnotators`: while another thread marks
    activity the steps wait; the model still trains to the end."""
    import numpy as np

    from workbench.loop import YieldToAnnotators
    from workbench.recipes import ClassificationRecipe, train_classifier

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (48, 28, 28), dtype=np.uint8)
    y = np.arange(48) % 2
    recipe = ClassificationRecipe(max_epochs=2, patience=2, min_steps_per_epoch=2, mc_samples=2)
    quiet = YieldToAnnotators(tmp_path, quiet=0.3)
    train_classifier(recipe, x, y, seed=0, root_dir=tmp_path / "a", callbacks=[quiet])
    assert quiet.waited == 0.0

    busy = YieldToAnnotators(tmp_path, quiet=0.3, max_pause=0.5)
    with annotating(tmp_path):
        trained = train_classifier(recipe, x, y, seed=0, root_dir=tmp_path / "b", callbacks=[busy])
    assert busy.waited >= 1.0  # at least two steps paused for their 0.5 s
    assert trained.metrics  # and the training still finished


def test_train_in_background_refuses_a_folder_without_a_project(tmp_path: Path) -> None:
    from workbench.errors import ProjectNotFoundError

    with pytest.raises(ProjectNotFoundError, match="no workbench project"):
        train_in_background(tmp_path / "not-a-project")
    assert not (tmp_path / "not-a-project").exists()  # no log folder left behind


def test_train_in_background_refuses_epochs_below_one(project: Path) -> None:
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        train_in_background(project, epochs=0)
    with pytest.raises(ValueError, match="patience must be >= 1, got -2"):
        train_in_background(project, patience=-2)
    assert not (project / "logs").exists()  # nothing started, no log


def test_cli_train_refuses_a_negative_niceness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", str(tmp_path), "--nice", "-3"])
    assert exit_.value.code == 2
    assert "--nice: -3: niceness can only lower the priority" in capsys.readouterr().err
