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

from .workflow_utils import ROOT, make_workdir, snakemake

pytestmark = pytest.mark.slow
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
LOCAL_RULES = ("download_corpus", "corpus_stats", "aggregate_study", "compute_table", "figure",
               "save_config", "scorecard", "render_report", "compile_report", "grad_probe",
               "complete_text")


ETC_CONF = Path("/etc/slurm/slurm.conf")


def dead_cluster(conf):
    """Whether conf is the slurm.conf of a cluster.sh state dir none of whose daemons lives."""
    state = conf.parent
    if not ((state / "run").is_dir() and (state / "munge").is_dir()):
        return False
    for pidfile in (state / "run").glob("*.pid"):
        comm = Path(f"/proc/{pidfile.read_text().strip()}/comm")
        if comm.exists() and comm.read_text().strip() == pidfile.stem:
            return False
    return True


def plant_stale_link(tmp):
    """Leave /etc/slurm/slurm.conf as a cluster killed before `cluster.sh down` leaves it: a
    link to a state dir whose daemons are gone (srun inside jobs reads that file). Only where
    no live config of anyone's is there; returns whether it planted one."""
    if os.geteuid() != 0:
        return False
    if ETC_CONF.is_symlink():
        current = Path(os.readlink(ETC_CONF))
        if current.exists() and not dead_cluster(current):
            return False
    elif ETC_CONF.exists():
        return False
    old = Path(tempfile.mkdtemp(prefix="stale-", dir=tmp))
    for sub in ("run", "munge"):
        (old / sub).mkdir()
    (old / "slurm.conf").write_text("# the config of a cluster that is gone\n")
    (old / "run" / "slurmctld.pid").write_text("999999999\n")  # beyond pid_max: never alive
    ETC_CONF.parent.mkdir(parents=True, exist_ok=True)
    ETC_CONF.unlink(missing_ok=True)
    ETC_CONF.symlink_to(old / "slurm.conf")
    return True


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = Path(tempfile.mkdtemp(prefix="rnnrepro-slurm-", dir="/tmp"))
    planted = plant_stale_link(tmp_path_factory.mktemp("stale"))
    up = subprocess.run(["bash", str(CLUSTER), "up", str(state)], capture_output=True, text=True,
                        timeout=600)
    if up.returncode == 3:
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
    assert len(runs) == 33
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
