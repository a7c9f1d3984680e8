"""The test config through profiles/slurm on a real single-node SLURM with a GPU GRES.

tests/slurm/cluster.sh brings up munged, slurmctld and slurmd (installing them with apt when
missing) and stops them again whether the test passes or fails. The node's one GPU is fake
(gres.conf File=/dev/null): jobs that ask for it are scheduled one at a time and run on the
CPU, because the training jobs use device auto.
"""

import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from .workflow_utils import ROOT, make_workdir, snakemake

pytestmark = pytest.mark.slow
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
LOCAL_RULES = ("download_corpus", "corpus_stats", "aggregate_study", "compute_table", "figure",
               "save_config", "scorecard", "render_report")


@pytest.fixture(scope="module")
def cluster():
    state = Path(tempfile.mkdtemp(prefix="rnnrepro-slurm-", dir="/tmp"))
    up = subprocess.run(["bash", str(CLUSTER), "up", str(state)], capture_output=True, text=True,
                        timeout=600)
    if up.returncode == 3:
        pytest.skip(up.stderr.strip().splitlines()[-1])
    try:
        assert up.returncode == 0, up.stderr
        conf = re.search(r"export SLURM_CONF=(\S+)", up.stdout).group(1)
        yield {"SLURM_CONF": conf}
    finally:
        subprocess.run(["bash", str(CLUSTER), "down", str(state)], capture_output=True, timeout=120)


def scontrol_job(job_id, env):
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True,
                         env=env, check=True).stdout
    return out


def test_the_workflow_runs_through_the_slurm_profile(cluster, tmp_path, corpus_path):
    workdir = make_workdir(tmp_path, corpus_path)
    env = {**os.environ, **cluster, "PATH": f"/usr/sbin:/usr/bin:{os.environ['PATH']}"}
    res = snakemake(workdir, "--workflow-profile", "profiles/slurm", "--jobs", "4",
                    "--slurm-no-account", "--slurm-status-command", "squeue",
                    "--slurm-init-seconds-before-status-checks", "2",
                    "--slurm-keep-successful-logs",
                    "--default-resources", "slurm_partition=debug", "runtime=20", "mem_mb=1500",
                    env=env, timeout=1500)
    out = res.stdout + res.stderr
    assert (workdir / "results" / "report" / "report.pdf").exists()

    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", out)
    runs = list((workdir / "results" / "runs").glob("*/*/summary.json"))
    logs = workdir / ".snakemake" / "slurm_logs"
    per_rule = {p.name.removeprefix("rule_"): list(p.rglob("*.log")) for p in logs.iterdir()}
    # every training job ran as a SLURM job and left its SLURM log
    assert len(per_rule.get("train_palindrome", [])) + len(per_rule.get("train_text", [])) == len(runs)
    assert len(job_ids) >= len(runs)
    # the local rules never went through SLURM
    assert not set(per_rule) & set(LOCAL_RULES), sorted(per_rule)
    # training jobs asked SLURM for the GPU; the others did not
    gpu_jobs = 0
    for job_id in job_ids:
        info = scontrol_job(job_id, env)
        asks_gpu = "gres/gpu" in info or "gpu:1" in info
        if "train_" in info:
            assert asks_gpu, info
            gpu_jobs += 1
    assert gpu_jobs == len(runs)
