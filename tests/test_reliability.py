"""What goes wrong on real machines: killed jobs, diverged runs, a second Snakemake, and
whether a second run from scratch gives the same tables. All through the real workflow."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from .workflow_utils import make_workdir, snakemake

pytestmark = pytest.mark.slow
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def only(studies):
    """An edit for make_workdir: keep the named studies of the test config (and extras)."""
    def edit(config):
        config["studies"] = {k: v for k, v in config["studies"].items() if k in studies}
        config["studies"].update(studies.get("extra", {}))
    return edit


def training_pids(root, run_id):
    """The `rnnrepro train` processes of run_id among the descendants of pid `root`."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # "pid (comm) state ppid ...": comm may hold spaces and parentheses
            ppid = int(stat.read_text().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"train" in argv and run_id.encode() in b" ".join(argv):  # not the shell around it
            found.append(pid)
    return found


def test_a_killed_training_job_resumes_from_its_checkpoint(tmp_path, corpus_path):
    long = {"kind": "palindrome", "grid": {"model": ["lstm"], "optimizer": ["adam"], "input_length": [8]},
            "set": {"steps": 3000, "hidden": 48, "eval_every": 500}, "seeds": [0]}
    workdir = make_workdir(tmp_path, corpus_path, edit=only({"extra": {"long": long}}))
    cmd = [SNAKEMAKE, "--configfile", "test.yaml", "--cores", "1", "results/tables/studies/long/runs.csv"]
    first = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    runs = workdir / "results" / "runs" / "palindrome"
    deadline = time.time() + 180
    while not list(runs.glob("*/resume.pt")) and time.time() < deadline:
        time.sleep(0.1)
    (resume,) = runs.glob("*/resume.pt")
    run_id = resume.parent.name
    training = training_pids(first.pid, run_id)  # this Snakemake's, not another session's
    assert training, f"no training process of {run_id} under Snakemake's pid {first.pid}"
    try:
        # hold the training where it is (SIGSTOP), so that the first Snakemake is surely still
        # running however long the second takes to start, on however fast a machine
        for pid in training:
            os.kill(pid, signal.SIGSTOP)
        # a second Snakemake in the same folder is refused while the first runs
        second = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300)
        assert second.returncode != 0 and "cannot be locked" in second.stdout + second.stderr
    finally:
        # kill the training process itself, as a cluster time limit or the OOM killer would
        # (and never leave it stopped, holding the first Snakemake and its lock)
        for pid in training:
            os.kill(pid, signal.SIGKILL)
    out, _ = first.communicate(timeout=120)
    assert first.returncode != 0, out
    assert resume.exists(), "Snakemake's cleanup must not delete the checkpoint"
    assert not (resume.parent / "summary.json").exists()

    snakemake(workdir, "results/tables/studies/long/runs.csv")
    log = (workdir / "logs" / "train" / "palindrome" / f"{run_id}.log").read_text()
    assert f"resuming {run_id} from step" in log, log[-2000:]
    step = int(log.split(f"resuming {run_id} from step ")[1].split()[0])
    assert 0 < step < 3000 and step % 100 == 0  # at most checkpoint_every steps lost
    assert not resume.exists()

    # the resumed run ends exactly where an uninterrupted one does
    summary = json.loads((resume.parent / "summary.json").read_text())
    assert summary["resumed_from"] == [step]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(summary["spec"]))
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, "-m", "rnnrepro", "train", "palindrome", "--spec", str(spec),
                    "--out", str(clean)], check=True, capture_output=True)
    for name in ("metrics.csv", "eval.csv"):
        assert (clean / name).read_bytes() == (resume.parent / name).read_bytes(), name


@pytest.mark.parametrize("runs_per_job", [1, 4])
def test_a_diverged_run_is_named_and_the_others_finish(tmp_path, corpus_path, runs_per_job):
    """Two runs that diverge, each named with its step; with several runs per job the two
    share one batched step in one job, and each still fails in its own job."""
    diverge = {"kind": "palindrome", "grid": {"model": ["rnn"], "optimizer": ["sgd"], "input_length": [4],
                                              "init": ["default", "normal"]},
               "set": {"lr": 1.0e38}, "seeds": [0]}
    healthy = {"kind": "palindrome", "grid": {"model": ["rnn", "lstm"], "optimizer": ["adam"],
                                              "input_length": [4]}, "seeds": [0]}

    def edit(config):
        only({"extra": {"rnn_adam": healthy, "diverge": diverge}})(config)
        config["execution"]["runs_per_job"] = runs_per_job

    workdir = make_workdir(tmp_path, corpus_path, edit=edit)
    # one job at a time: with several runs per job, the first one trains them all
    res = snakemake(workdir, "--keep-going", "--cores", "1", check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "2 of 4 training runs have no results yet" in out, out[-3000:]
    missing = [line for line in out.splitlines() if "(studies: diverge)" in line]
    assert len(missing) == 2 and all("loss is" in m and "at step" in m for m in missing), missing
    if runs_per_job == 1:
        assert "loss is inf at step 2" in out
    else:
        assert "(trained in the job of run " in out
    assert len(list((workdir / "results" / "runs").glob("palindrome/*/summary.json"))) == 2
    assert "Traceback" not in out


def test_a_second_run_from_scratch_gives_identical_tables(finished_workflow, tmp_path, corpus_path):
    again = make_workdir(tmp_path, corpus_path)
    snakemake(again)
    a, b = finished_workflow / "results" / "tables", again / "results" / "tables"
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()
                   and p.name not in ("compute.csv", "runs.csv"))
    assert len(files) > 30
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    timing = ["wall_seconds", "steps_per_second"]
    for runs in a.rglob("runs.csv"):
        x, y = (pd.read_csv(p).drop(columns=timing) for p in (runs, b / runs.relative_to(a)))
        pd.testing.assert_frame_equal(x, y)


def test_a_latex_error_names_the_line_and_keeps_the_last_good_pdf(finished_workflow, tmp_path):
    workdir = tmp_path / "copy"
    shutil.copytree(finished_workflow, workdir, symlinks=True)
    good = (workdir / "results" / "report" / "last-good" / "report.pdf").read_bytes()
    template = workdir / "report" / "templates" / "05_scorecard.tex.j2"
    template.write_text(template.read_text().replace("\\label{sec:scorecard}",
                                                     "\\label{sec:scorecard}\\undefinedmacro"))
    res = snakemake(workdir, check=False)
    log = (workdir / "logs" / "compile_report.log").read_text()
    assert res.returncode != 0
    assert "Undefined control sequence" in log and "undefinedmacro" in log, log[-2000:]
    assert "report.tex:" in log  # file:line of the first error
    assert (workdir / "results" / "report" / "last-good" / "report.pdf").read_bytes() == good
