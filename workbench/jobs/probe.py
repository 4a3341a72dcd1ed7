"""The ``probe`` stage: what compute this machine offers.

The GUI never imports torch (DESIGN.md section 3), so its status bar learns
about the GPU by running this small job and reading ``probe.json`` (also
summarized in a ``log`` event). Options in the config:

``hold_s`` (float, default 0)
    After probing, keep the device claimed for this many seconds, checking
    for a cancel every 0.1 s. Useful to reserve the GPU slot in the job
    queue (and to exercise cancel in tests).
"""

from __future__ import annotations

import time
from typing import Any

import torch  # at the top: the runner imports the recipe before writing env.json

from .rundir import atomic_write_json

PROBE_FILE = "probe.json"
OPTIONS = ("hold_s",)


def probe_device() -> dict[str, Any]:
    """Torch and CUDA facts as plain data (imports bitsandbytes).

    The top-level ``gpu_name``, ``total_memory`` and ``free_memory`` (bytes)
    describe CUDA device 0 (``None`` without one); ``devices`` lists all.
    ``bf16_supported`` is about the GPU: on a CPU bf16 runs, but slower than
    fp32 (shared/FACTS.md), so recipes should not pick it there.
    """
    info: dict[str, Any] = {
        "time": time.time(),
        "torch": torch.__version__,
        "cuda_version": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "device_count": 0,
        "devices": [],
        "gpu_name": None,
        "total_memory": None,
        "free_memory": None,
        "bf16_supported": False,
        "mps_available": bool(getattr(torch.backends, "mps", None)
                              and torch.backends.mps.is_available()),
    }
    if info["cuda_available"]:
        info["device_count"] = torch.cuda.device_count()
        for i in range(info["device_count"]):
            free, total = torch.cuda.mem_get_info(i)
            major, minor = torch.cuda.get_device_capability(i)
            with torch.cuda.device(i):
                bf16 = bool(torch.cuda.is_bf16_supported())
            info["devices"].append({"index": i, "name": torch.cuda.get_device_name(i),
                                    "total_memory": int(total), "free_memory": int(free),
                                    "capability": f"{major}.{minor}", "bf16_supported": bf16})
        if info["devices"]:
            first = info["devices"][0]
            info.update(gpu_name=first["name"], total_memory=first["total_memory"],
                        free_memory=first["free_memory"], bf16_supported=first["bf16_supported"])
    info["bitsandbytes"] = _bitsandbytes()
    return info


def _bitsandbytes() -> dict[str, Any]:
    # Importing is the real test: a wheel can be installed yet fail to load its native library.
    try:
        import bitsandbytes
    except Exception as e:  # noqa: BLE001 - any import failure means "not usable"
        return {"importable": False, "version": None, "error": f"{type(e).__name__}: {e}"}
    return {"importable": True, "version": getattr(bitsandbytes, "__version__", None),
            "error": None}


def summary(info: dict[str, Any]) -> str:
    """One line for the log: ``torch 2.13.0; GPU: NVIDIA H200 (139.8 GiB, 139.1 GiB free); ...``."""
    if info["gpu_name"]:
        gib = 1024 ** 3
        gpu = (f"GPU: {info['gpu_name']} ({info['total_memory'] / gib:.1f} GiB, "
               f"{info['free_memory'] / gib:.1f} GiB free), bf16 "
               f"{'yes' if info['bf16_supported'] else 'no'}")
        if info["device_count"] > 1:
            gpu += f", {info['device_count']} devices"
    else:
        gpu = "GPU: none (CPU only)" + ("; MPS available" if info["mps_available"] else "")
    bnb = info["bitsandbytes"]
    bnb_text = f"bitsandbytes {bnb['version']}" if bnb["importable"] else "bitsandbytes: not usable"
    return f"torch {info['torch']}; {gpu}; {bnb_text}"


def run(ctx) -> None:
    """Recipe entry: probe, write ``probe.json``, log a summary, then honour ``hold_s``."""
    unknown = sorted(set(ctx.config) - set(OPTIONS))
    if unknown:
        ctx.warn("unknown_option", f"probe: ignoring unknown option(s) {', '.join(unknown)}")
    hold_s = float(ctx.config.get("hold_s") or 0.0)
    info = probe_device()
    atomic_write_json(ctx.run_dir.path / PROBE_FILE, info)
    ctx.log(summary(info))
    if hold_s > 0:
        ctx.log(f"holding the device for {hold_s:g} s")
        deadline = time.monotonic() + hold_s
        while time.monotonic() < deadline:
            ctx.raise_if_stopped()
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
