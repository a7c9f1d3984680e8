"""GPU placement: each running training job takes a slot on one GPU, with a file lock.

Snakemake's `--resources gpu=N` only limits how many GPU jobs run at once; it never says
which GPU a job should use, so without this every job would open cuda:0. A job takes the
first free slot of `jobs_per_gpu` slots per visible GPU (spreading over GPUs before it
doubles up on one), holds an exclusive `flock` on that slot's lock file for as long as the
process lives, and narrows `CUDA_VISIBLE_DEVICES` to its GPU before CUDA starts, so torch
sees it as cuda:0. The kernel drops the lock when the process ends, however it ends (a
kill -9 included): a dead job never keeps a slot.

GPUs are those `CUDA_VISIBLE_DEVICES` lists (indices or UUIDs, as CUDA reads it: up to the
first entry that is not a device), else those `nvidia-smi -L` lists (by UUID). Lock files
live in $RNNREPRO_GPU_LOCKS, else in a folder of the machine's temporary directory, one per
user (and one per SLURM job inside a SLURM allocation, whose GPUs are its own), named by host
and GPU.
Torch-free, so that a job knows its GPU before torch initialises CUDA.
"""

import fcntl
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rnnrepro.config.spec import Execution

log = logging.getLogger("rnnrepro")

_HELD = []  # open lock files of this process: closing one would release its slot


def visible_gpus(environ=None):
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries (ids or UUIDs)."""
    environ = os.environ if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        gpus = []
        for entry in (e.strip() for e in listed.split(",")):
            if not re.fullmatch(r"\d+|(GPU|MIG)-[0-9A-Za-z/-]+", entry) or entry.startswith("-"):
                break  # CUDA ignores the rest of the list after an entry it cannot read
            gpus.append(entry)
        return gpus
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    return re.findall(r"^GPU \d+:.*\(UUID: (GPU-[0-9A-Za-z-]+)\)", out.stdout, re.M)


def lock_dir(environ=None):
    environ = os.environ if environ is None else environ
    if environ.get("RNNREPRO_GPU_LOCKS"):
        return Path(environ["RNNREPRO_GPU_LOCKS"])
    base = Path(tempfile.gettempdir()) / f"rnnrepro-gpu-locks-{os.getuid()}"
    job = environ.get("SLURM_JOB_ID")
    return base / f"slurm-{job}" if job else base


@dataclass(frozen=True)
class Slot:
    gpu: str        # the CUDA_VISIBLE_DEVICES entry of the GPU
    index: int      # which of its jobs_per_gpu slots
    path: Path      # the lock file

    def describe(self, jobs_per_gpu):
        return f"GPU {self.gpu}, slot {self.index + 1} of {jobs_per_gpu} ({self.path})"


def slots(gpus, jobs_per_gpu, directory):
    """Every slot, in the order a job tries them: slot 0 of each GPU, then slot 1, ..."""
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "host"
    return [Slot(g, k, Path(directory) / f"{host}-gpu-{re.sub(r'[^A-Za-z0-9._-]', '_', g)}-slot{k}.lock")
            for k in range(jobs_per_gpu) for g in gpus]


def _try_lock(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # a lock file made by another user (RNNREPRO_GPU_LOCKS shared):
        fd = os.open(path, os.O_RDONLY)  # flock works on a read-only descriptor
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def acquire(jobs_per_gpu=1, environ=None, wait=True, poll=0.5, on_wait=None):
    """Take a free GPU slot and narrow CUDA_VISIBLE_DEVICES to its GPU (in `environ`,
    os.environ by default). Returns the Slot, or None where no GPU is visible. Waits while
    every slot is taken (calling on_wait once), or returns None at once without `wait`."""
    environ = os.environ if environ is None else environ
    gpus = visible_gpus(environ)
    if not gpus:
        return None
    candidates = slots(gpus, jobs_per_gpu, lock_dir(environ))
    waited = False
    while True:
        for slot in candidates:
            fd = _try_lock(slot.path)
            if fd is not None:
                _HELD.append(fd)
                if _writable(fd):  # who holds it, for a curious user
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
                environ["CUDA_VISIBLE_DEVICES"] = slot.gpu
                return slot
        if not wait:
            return None
        if not waited and on_wait:
            on_wait(len(candidates))
        waited = True
        time.sleep(poll)


def _writable(fd):
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY


def workflow_slots(config_path="config/config.yaml", environ=None):
    """The `--resources gpu=` that lets every GPU slot work at once: visible GPUs (at least
    one) times the config's execution.jobs_per_gpu. scripts/reproduce.sh and the default
    profile ask this."""
    import yaml

    try:
        config = yaml.safe_load(Path(config_path).read_text()) or {}
        per_gpu = int((config.get("execution") or {}).get("jobs_per_gpu", Execution.jobs_per_gpu))
    except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError):
        per_gpu = 1  # the workflow's own validation names a broken config
    return max(1, len(visible_gpus(environ))) * max(1, per_gpu)


def release_all():
    """Give back every slot this process holds (process exit does the same)."""
    while _HELD:
        os.close(_HELD.pop())
