"""The test config through real Snakemake with jobs that train several runs
(execution.runs_per_job, the CUDA default, here on the CPU): every run in its own directory
with its own files, fewer training processes than runs, and reruns as exact as with one run
per job: adding a seed or changing one study's value trains only the new runs."""

import json

import pytest
import yaml

from .workflow_utils import config_run_ids, make_workdir, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared(tmp_path_factory, corpus_path):
    workdir = make_workdir(tmp_path_factory.mktemp("shared"), corpus_path,
                           edit=lambda c: c["execution"].update(runs_per_job=8))
    snakemake(workdir)
    return workdir


def _logs(workdir):
    return {p.stem: p.read_text() for p in (workdir / "logs" / "train").glob("*/*.log")}


def test_every_run_is_complete_in_its_own_directory(shared):
    runs = sorted((shared / "results" / "runs").glob("*/*/summary.json"))
    assert len(runs) == len(config_run_ids()) and (shared / "results" / "report" / "report.pdf").exists()
    assert not list((shared / "results" / "runs").glob("*/*/.staged"))
    assert not list((shared / "results" / "runs").glob("*/*/resume.pt"))
    for summary in runs:
        s = json.loads(summary.read_text())
        assert s["run_id"] == summary.parent.name
        for name in ("metrics.csv", "eval.csv", "timing.csv", "model.pt"):
            assert (summary.parent / name).exists(), (summary.parent, name)
        if s["kind"] == "text":
            assert (summary.parent / "samples.jsonl").exists()
            assert list((summary.parent / "checkpoints").glob("step_*.pt"))


def test_fewer_training_processes_than_runs(shared):
    logs = _logs(shared)
    trained_elsewhere = [r for r, text in logs.items() if "moved into place" in text]
    started = sum(text.count(" INFO starting ") for text in logs.values())
    assert started == len(config_run_ids())  # every run trained once
    assert len(trained_elsewhere) >= 10, sorted(logs)
    stacked = [r for r, text in logs.items() if "more pending runs in one step" in text]
    assert stacked
    for run in trained_elsewhere:  # its summary names the job that trained it
        (summary,) = (shared / "results" / "runs").glob(f"*/{run}/summary.json")
        s = json.loads(summary.read_text())
        assert s["execution"]["job"] != run and s["execution"]["job"] in logs
    compute = (shared / "results" / "tables" / "compute.csv").read_text()
    assert "trained_in_job_of" in compute.splitlines()[0]


def test_nothing_to_do_and_only_new_runs_train(shared):
    jobs, out = planned_jobs(shared)
    assert jobs == [], out
    config = yaml.safe_load((shared / "test.yaml").read_text())
    config["studies"]["lstm_adam"]["seeds"] = [0, 1, 2]
    config["studies"]["rnn_adam_40k"]["set"]["lr"] = 0.002
    write_config(shared / "more.yaml", config)
    jobs, out = planned_jobs(shared, config="more.yaml")
    trained = sorted(w for r, w in jobs if r.startswith("train_"))
    assert len(trained) == 3, out
    assert sum("lstm-adam-len" in w and "seed2" in w for w in trained) == 2, out
    assert sum("rnn-adam-len6-seed0" in w for w in trained) == 1, out
    snakemake(shared, config="more.yaml")
    # the run table the jobs took runs from held exactly what Snakemake planned to train
    table = json.loads((shared / "results" / "runs" / "table.json").read_text())["runs"]
    assert sorted(r["run_id"] for r in table) == [w.split("=", 1)[1] for w in trained]
    logs = _logs(shared)
    assert sum(text.count(" INFO starting ") for text in logs.values()) == len(config_run_ids()) + 3
    jobs, out = planned_jobs(shared, config="more.yaml")
    assert jobs == [], out
