"""The test config through profiles/slurm on a real single-node SLURM with a GPU GRES.

tests/slurm/cluster.sh brings up munged, slurmctld and slurmd (installing them with apt when
missing) and stops them again whether the test passes or fails. The node's one GPU is fake
(gres.conf File=/dev/null): jobs that ask for it are scheduled one at a time and run on the
CPU, because the training jobs use device auto. The profile groups the training jobs, eight
to a SLURM job, each group job asking for the one GPU and running its runs on it in turn.
"""

import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from .slurm_utils import ETC_CONF, plant_dead_link
from .workflow_utils import ROOT, config_run_ids, make_workdir, snakemake

pytestmark = pytest.mark.slow
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
LOCAL_RULES = ("download_corpus", "corpus_stats", "aggregate_study", "compute_table", "figure",
               "save_config", "scorecard", "render_report", "compile_report", "grad_probe",
               "complete_text")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = Path(tempfile.mkdtemp(prefix="rnnrepro-slurm-", dir="/tmp"))
    planted = plant_dead_link(tmp_path_factory.mktemp("stale"))
    up = subprocess.run(["bash", str(CLUSTER), "up", str(state)], capture_output=True, text=True,
                        timeout=600)
    if up.returncode == 3:
        if planted:
            ETC_CONF.unlink(missing_ok=True)
        pytest.skip(up.stderr.strip().splitlines()[-1])
    try:
        assert up.returncode == 0, up.stderr
        conf = re.search(r"export SLURM_CONF=(\S+)", up.stdout).group(1)
        if planted:  # the stale link is replaced: jobs' srun must reach this cluster
            assert os.readlink(ETC_CONF) == conf, up.stderr
        yield {"SLURM_CONF": conf}
    finally:
        subprocess.run(["bash", str(CLUSTER), "down", str(state)], capture_output=True, timeout=120)


def scontrol_job(job_id, env):
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True,
                         env=env, check=True).stdout
    return out


def test_the_workflow_runs_through_the_slurm_profile_in_fewer_longer_jobs(cluster, tmp_path,
                                                                           corpus_path):
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
    assert len(runs) == len(config_run_ids())
    logs = workdir / ".snakemake" / "slurm_logs"
    per_rule = {p.name: list(p.rglob("*.log")) for p in logs.iterdir()}
    # the local rules never went through SLURM; training jobs went grouped (profiles/slurm:
    # groups, group-components), each group job one SLURM job with its own log
    assert not {f"rule_{r}" for r in LOCAL_RULES} & set(per_rule), sorted(per_rule)
    assert not [k for k in per_rule if k.startswith("rule_train")], sorted(per_rule)
    # the speed benchmark times a compute node, not the machine that submits
    assert "rule_bench" in per_rule, sorted(per_rule)
    train_jobs = sum(len(v) for k, v in per_rule.items() if k.startswith("group_train"))
    assert -(-len(runs) // 8) <= train_jobs < len(runs), (train_jobs, sorted(per_rule))
    print(f"{train_jobs} SLURM jobs trained the {len(runs)} runs")  # shown with pytest -s
    # each training group job asked SLURM for one GPU (gpu scoped per group job) and ran its
    # runs on it one after another, each training job with its own log
    group_jobs = 0
    for job_id in job_ids:
        info = scontrol_job(job_id, env)
        if "Comment=rule_train" in info:
            group_jobs += 1
            assert re.search(r"gres/gpu(:\w+)?=1\b|gpu:1\b", info), info
    assert group_jobs == train_jobs
    assert len(list((workdir / "logs" / "train").glob("*/*.log"))) == len(runs)
