"""How a CPU run's floating point is computed: `execution.numerics`.

Torch's CPU kernels are picked by the CPU they run on: ATen's vectorised kernels by its
instruction set (AVX-512, AVX2 or the baseline), MKL's matrix products by its own CPU
dispatch, and oneDNN (the LSTM kernel on CPU) by the instruction set and the caches. Each
choice changes the order of float operations, so one spec and seed trains to different
metrics.csv bytes on different CPUs, and a run at the edge of stability can land on either
side of a threshold.

- native: what the CPU offers (the fastest; byte-identical only on CPUs alike).
- portable: the same code path on every x86-64 CPU: ATen's baseline kernels
  (ATEN_CPU_CAPABILITY=default), MKL's conditional numerical reproducibility on its
  SSE2 path (MKL_CBWR=COMPATIBLE,STRICT) and no oneDNN (torch's own LSTM on MKL's
  products), so that a run's metrics.csv is meant to be byte-identical on any x86-64 CPU
  with the same torch build and `threads` (seen so far on one CPU: benchmarks/README.md,
  "Numerics", which also gives its cost: 2.0-2.5 times the training time).

ATen and MKL read their variables once, when torch loads, so `set_environment` runs before
torch is imported in every training process (`rnnrepro train`); `configure` then checks
that the mode is in force and turns oneDNN off. On CUDA the mode changes nothing.
"""

import os
import platform

PORTABLE_ENV = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE,STRICT"}


class NumericsError(RuntimeError):
    """A mode that cannot be put in force in this process."""


def set_environment(mode):
    """The environment of `mode`, set before torch loads: portable pins ATen's kernels and
    MKL's code path; native leaves whatever the environment says."""
    if mode == "portable":
        os.environ.update(PORTABLE_ENV)


def in_force():
    """What decides this process's CPU numbers, as torch runs it: ATen's kernel set, whether
    its matrix products are MKL's and MKL's reproducibility setting, oneDNN on or off
    (recorded for each stretch of a run in its summary.json)."""
    import torch

    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkl": bool(torch.backends.mkl.is_available()),
            "mkl_cbwr": os.environ.get("MKL_CBWR"),
            "mkldnn": bool(torch.backends.mkldnn.enabled)}


def configure(mode):
    """Put `mode` in force in this process, once torch is loaded; a NumericsError where torch
    was loaded before `set_environment(mode)` could pin its kernels."""
    import torch

    if mode != "portable":
        return
    found = in_force()
    if not found["mkl"] or platform.machine() not in ("x86_64", "AMD64"):
        raise NumericsError(
            f"numerics portable needs an x86-64 CPU and a torch whose matrix products are MKL's "
            f"(its conditional numerical reproducibility); this is {platform.machine()} with "
            f"torch {torch.__version__}{'' if found['mkl'] else ' without MKL'}: use native")
    if found["cpu_capability"] != "DEFAULT" or found["mkl_cbwr"] != PORTABLE_ENV["MKL_CBWR"]:
        raise NumericsError(
            f"numerics portable needs ATen's baseline kernels and MKL_CBWR "
            f"{PORTABLE_ENV['MKL_CBWR']} from the start of the process, and torch runs with "
            f"{found['cpu_capability']} kernels and MKL_CBWR {found['mkl_cbwr']}: torch was "
            "loaded first. Train in a process of its own (rnnrepro train), or set "
            + " ".join(f"{k}={v}" for k, v in PORTABLE_ENV.items()) + " before starting Python")
    torch.backends.mkldnn.enabled = False
