"""The machine a benchmark ran on, written into its result JSON (the machines are noisy)."""

from __future__ import annotations

import os
import platform
from typing import Any


def machine_info() -> dict[str, Any]:
    """Python version, CPU count, platform and the load average when the benchmark started."""
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}
