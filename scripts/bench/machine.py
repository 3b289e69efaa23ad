"""The machine a benchmark ran on, for the record next to its figures."""

import os
import platform
import re
from pathlib import Path


def describe() -> str:
    """CPU model, cores, system and Python version."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        cpu = re.search(r"model name\s*:\s*(.+)", cpuinfo).group(1)  # type: ignore[union-attr]
    except (OSError, AttributeError):
        cpu = platform.processor() or platform.machine()
    python = platform.python_version()
    return f"{cpu} · {os.cpu_count()} CPUs · {platform.system()} · Python {python}"
