"""GPU placement without a GPU: slots over a fake list of devices, taken with file locks.

Several processes take slots at once against CUDA_VISIBLE_DEVICES="0,1" (or a fake
nvidia-smi); none may hold a slot another holds, every job sees one GPU, and a job killed
with SIGKILL gives its slot back.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rnnrepro.config.spec import Execution, PalindromeSpec
from rnnrepro.run import gpus
from rnnrepro.run.jobs import Entry, Job

HOLD = textwrap.dedent("""
    import json, os, sys, time
    from rnnrepro.run import gpus
    slot = gpus.acquire(int(sys.argv[1]), poll=0.02)
    start = time.time()
    time.sleep(float(sys.argv[2]))
    print(json.dumps({"slot": str(slot.path), "gpu": slot.gpu, "start": start,
                      "end": time.time(), "visible": os.environ["CUDA_VISIBLE_DEVICES"]}))
""")


def _env(tmp_path, visible="0,1"):
    env = {**os.environ, "RNNREPRO_GPU_LOCKS": str(tmp_path / "locks")}
    env.pop("SLURM_JOB_ID", None)
    if visible is None:
        env.pop("CUDA_VISIBLE_DEVICES", None)
    else:
        env["CUDA_VISIBLE_DEVICES"] = visible
    return env


@pytest.mark.parametrize("listed,expect", [
    ("0,1", ["0", "1"]), ("", []), ("-1", []), ("1,-1,0", ["1"]), (" 2 , 3", ["2", "3"]),
    ("GPU-8f6a2c1e-0000-1111-2222-333344445555,1",
     ["GPU-8f6a2c1e-0000-1111-2222-333344445555", "1"]),
])
def test_visible_gpus_follow_cuda_visible_devices(listed, expect):
    assert gpus.visible_gpus({"CUDA_VISIBLE_DEVICES": listed}) == expect


def test_visible_gpus_from_nvidia_smi_when_nothing_is_listed(tmp_path, monkeypatch):
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-aaaa-1111)'\n"
                   "echo 'GPU 1: NVIDIA H200 (UUID: GPU-bbbb-2222)'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{smi.parent}:{os.environ['PATH']}")
    assert gpus.visible_gpus({}) == ["GPU-aaaa-1111", "GPU-bbbb-2222"]
    assert gpus.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_slots_spread_over_gpus_before_sharing_one(tmp_path):
    order = gpus.slots(["0", "1"], 2, tmp_path)
    assert [(s.gpu, s.index) for s in order] == [("0", 0), ("1", 0), ("0", 1), ("1", 1)]
    assert len({s.path for s in order}) == 4


def test_concurrent_jobs_never_share_a_slot(tmp_path):
    """Eight jobs, two fake GPUs, two jobs per GPU: at most four at once, never two on one
    slot, each seeing only its own GPU."""
    env = _env(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", HOLD, "2", "0.6"], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(8)]
    held = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert {h["slot"] for h in held} == {str(s.path) for s in gpus.slots(["0", "1"], 2, tmp_path / "locks")}
    for h in held:
        assert h["visible"] == h["gpu"] in ("0", "1")
    for a in held:
        for b in held:
            if a is not b and a["slot"] == b["slot"]:
                assert a["end"] <= b["start"] or b["end"] <= a["start"], (a, b)
    # at no moment more jobs than slots
    events = sorted([(h["start"], 1) for h in held] + [(h["end"], -1) for h in held])
    running, peak = 0, 0
    for _, d in events:
        running += d
        peak = max(peak, running)
    assert peak <= 4


def test_a_killed_job_frees_its_slot(tmp_path):
    env = _env(tmp_path, visible="0")
    first = subprocess.Popen([sys.executable, "-c", HOLD, "1", "600"], env=env,
                             stdout=subprocess.PIPE, text=True)
    lock = gpus.slots(["0"], 1, tmp_path / "locks")[0].path
    deadline = time.time() + 30
    while time.time() < deadline:  # until the first job holds the slot
        fd = gpus._try_lock(lock)
        if fd is None:
            break
        os.close(fd)
        time.sleep(0.05)
    second = subprocess.Popen([sys.executable, "-c", HOLD, "1", "0"], env=env,
                              stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert second.poll() is None, "the second job must wait while the slot is held"
    first.send_signal(signal.SIGKILL)
    first.wait()
    out, _ = second.communicate(timeout=30)
    assert second.returncode == 0 and json.loads(out)["slot"] == str(lock)


def test_acquire_without_gpus_or_without_waiting(tmp_path):
    env = {"CUDA_VISIBLE_DEVICES": "", "RNNREPRO_GPU_LOCKS": str(tmp_path)}
    assert gpus.acquire(1, environ=env) is None
    env = {"CUDA_VISIBLE_DEVICES": "3", "RNNREPRO_GPU_LOCKS": str(tmp_path)}
    slot = gpus.acquire(1, environ=env)
    try:
        assert slot.gpu == "3" and env["CUDA_VISIBLE_DEVICES"] == "3"
        assert gpus.acquire(1, environ=dict(env), wait=False) is None  # this process holds it
    finally:
        gpus.release_all()


def test_the_lock_folder_is_per_slurm_job():
    assert gpus.lock_dir({"SLURM_JOB_ID": "77"}).name == "slurm-77"
    assert gpus.lock_dir({"RNNREPRO_GPU_LOCKS": "/x"}) == gpus.lock_dir(
        {"RNNREPRO_GPU_LOCKS": "/x", "SLURM_JOB_ID": "1"})


def test_a_job_on_a_fake_gpu_without_cuda_names_the_problem(tmp_path, monkeypatch):
    """device cuda where torch cannot use the GPU is an error; device auto falls back to the
    CPU and gives the slot back."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a real GPU is here")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("RNNREPRO_GPU_LOCKS", str(tmp_path))
    own = Entry(PalindromeSpec(), tmp_path / "run")
    with pytest.raises(RuntimeError, match="execution.device is cuda, but this torch build"):
        Job(own, Execution(device="cuda")).place()
    gpus.release_all()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    job = Job(own, Execution(device="auto"))
    job.place()
    assert job.device == "cpu" and job.slot is None and not gpus._HELD
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(RuntimeError, match="no GPU is visible"):
        Job(own, Execution(device="cuda")).place()


def test_workflow_slots_are_gpus_times_jobs_per_gpu(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("execution: {jobs_per_gpu: 3}\n")
    assert gpus.workflow_slots(config, {"CUDA_VISIBLE_DEVICES": "0,1"}) == 6
    assert gpus.workflow_slots(config, {"CUDA_VISIBLE_DEVICES": ""}) == 3  # no GPU: never 0
    assert gpus.workflow_slots(tmp_path / "missing.yaml", {"CUDA_VISIBLE_DEVICES": "0"}) == 1
    res = subprocess.run([sys.executable, "-m", "rnnrepro", "gpu-slots", "--config", str(config)],
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": "4,5,6"}, capture_output=True,
                         text=True, check=True)
    assert res.stdout.strip() == "9"


def test_the_default_profile_counts_gpu_slots_with_the_packages_function(monkeypatch):
    """profiles/default/profile.yaml imports workflow_slots in its definitions, falling back to
    one slot where the package is missing: the import must name the function as it is."""
    import yaml

    root = Path(__file__).parents[1]
    profile = yaml.safe_load((root / "profiles" / "default" / "profile.yaml").read_text())
    (definitions,) = profile["__definitions__"]
    monkeypatch.chdir(root)
    namespace = {}
    exec(definitions, namespace)  # the fallback, were the import wrong, is another function
    assert namespace["workflow_slots"] is gpus.workflow_slots

