"""One line that says which machine the figures were measured on (they mean little without it)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _cpuinfo() -> list[str]:
    return Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()


def _cpu_name(cpuinfo: list[str]) -> str:
    return next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())


def describe() -> str:
    """Cores, CPU with its vector instructions (int8 speed depends on them), RAM, Python, torch, ONNX Runtime."""
    import onnxruntime
    import torch

    info = _cpuinfo()
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = int(next(line.split()[1] for line in meminfo if "MemTotal" in line))
    flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    simd = "/".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if f in flags) or "no AVX2"
    return (
        f"{os.cpu_count()} cores ({_cpu_name(info)}, {simd}), {mem / 2**20:.0f} GiB RAM, "
        f"Python {platform.python_version()}, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        "no GPU"
    )


def with_load() -> str:
    """Cores, CPU, Python and the load average before a run (other work on the machine skews a load test)."""
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    cpu = _cpu_name(_cpuinfo())
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}; load average before: {load}"
