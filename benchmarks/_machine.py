"""What the benchmarks share: the machine a benchmark ran on, written into its result JSON
(the machines are noisy), and where the shared datasets are."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

SHARED_DATA = Path(
    os.environ.get("WORKBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
"""``../shared/data`` beside the repository, or ``$WORKBENCH_SHARED_DATA``."""


def require_shared(path: Path) -> Path:
    """``path`` when it exists; else exit naming it (a benchmark without its data fails)."""
    if not path.exists():
        sys.exit(f"this benchmark needs {path} (set WORKBENCH_SHARED_DATA)")
    return path


def machine_info() -> dict[str, Any]:
    """Python version, CPU count, platform and the load average when the benchmark started."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }
