"""Gather run directories into tidy tables (CSV) under results/tables/.

Per study: runs.csv (one row per run: its hyperparameters and summary metrics), curves.csv
(one row per run × logged step), evals.csv (one row per run × held-out evaluation) and,
for text, samples.csv. Every row carries the run's key hyperparameters as columns, and
run_id joins it to runs.csv for the rest.
"""

import json
from pathlib import Path

import pandas as pd

from .io import read_jsonl

KEYS = {
    "palindrome": ["model", "optimizer", "input_length", "lr", "steps", "init", "init_std", "seed"],
    "text": ["temperature", "optimizer", "lr", "steps", "seed"],
}


def _flat(value):
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def run_row(summary, study):
    spec = summary["spec"]
    row = {"study": study, "run_id": summary["run_id"], "kind": summary["kind"]}
    row.update({k: _flat(v) for k, v in spec.items()})
    row.update({
        "parameters": summary["parameters"],
        "init_scheme": summary["init"]["scheme"],
        "final_loss": summary["final_loss"],
        "final_batch_accuracy": summary["final_batch_accuracy"],
        "eval_final_loss": summary["eval_final"]["loss"],
        "eval_final_accuracy": summary["eval_final"]["accuracy"],
        "eval_best_accuracy": summary["eval_best"]["accuracy"],
        "eval_best_step": summary["eval_best"]["step"],
        "steps_to_0.99": summary["steps_to_0.99"],
        "wall_seconds": summary["wall_seconds"],
        "steps_per_second": summary["steps_per_second"],
        "resumed": len(summary["resumed_from"]) > 0,
        "device": summary["device"],
        "torch": summary["torch"],
    })
    if summary["kind"] == "palindrome":
        row["cell_parameters"] = summary["cell_parameters"]
        row["cell_formula"] = summary["cell_formula"]
    else:
        row["eval_final_bpc"] = summary["eval_final"]["bpc"]
    return row


def read_summary(path):
    """A run's summary.json, checked: the error names the file and what is wrong with it."""
    path = Path(path)
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path}: not a readable run summary ({err}); delete the run's folder "
                         "to train it again") from None
    missing = [k for k in ("run_id", "kind", "spec", "eval_final", "wall_seconds")
               if not isinstance(summary, dict) or k not in summary]
    if missing:
        raise ValueError(f"{path}: not a run summary of this project (no {', '.join(missing)}); "
                         "delete the run's folder to train it again")
    if summary["run_id"] != path.parent.name:
        raise ValueError(f"{path} is the summary of run {summary['run_id']}, not of "
                         f"{path.parent.name}: delete the run's folder to train it again")
    return summary


def aggregate_study(study, run_dirs, out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs, curves, evals, samples = [], [], [], []
    for d in map(Path, run_dirs):
        summary = read_summary(d / "summary.json")
        row = run_row(summary, study)
        runs.append(row)
        keys = {"study": study, "run_id": row["run_id"],
                **{k: row[k] for k in KEYS[summary["kind"]]}}
        curves.append(pd.read_csv(d / "metrics.csv").assign(**keys))
        evals.append(pd.read_csv(d / "eval.csv").assign(**keys))
        if summary["kind"] == "text":
            rows = read_jsonl(d / "samples.jsonl")
            samples.append(pd.DataFrame(rows).rename(columns={"temperature": "sample_temperature"})
                           .assign(**keys))
    order = lambda df: df[list(keys) + [c for c in df.columns if c not in keys]]
    sort = ["run_id"]
    pd.DataFrame(runs).sort_values(sort).to_csv(out_dir / "runs.csv", index=False)
    order(pd.concat(curves)).sort_values(sort + ["step"], kind="stable").to_csv(
        out_dir / "curves.csv", index=False)
    order(pd.concat(evals)).sort_values(sort + ["step"], kind="stable").to_csv(
        out_dir / "evals.csv", index=False)
    if samples:
        order(pd.concat(samples)).sort_values(sort + ["step"], kind="stable").to_csv(
            out_dir / "samples.csv", index=False)
    else:  # palindrome studies have no samples; the file keeps the rule's outputs fixed
        pd.DataFrame(columns=list(keys)).to_csv(out_dir / "samples.csv", index=False)


def compute_table(benchmarks, summaries, out):
    """One row per training job: Snakemake's benchmark (wall, memory) beside the run's device.

    A run trained in another run's job (jobs.py) shows that job in `trained_in_job_of`, its
    own job's few seconds in job_seconds (the other job's job_seconds include it), and as
    train_seconds its share of the step it was trained in (the step's wall time over the runs
    in it)."""
    rows = []
    for tsv, summary_path in zip(benchmarks, summaries):
        bench = pd.read_csv(tsv, sep="\t").iloc[0]
        summary = read_summary(summary_path)
        execution = summary.get("execution", {})
        runs_in_step = execution.get("runs_in_step", 1)
        job = execution.get("job", summary["run_id"])
        rows.append({
            "run_id": summary["run_id"], "kind": summary["kind"],
            "steps": summary["spec"]["steps"], "job_seconds": float(bench["s"]),
            "train_seconds": summary["wall_seconds"] / runs_in_step,
            "runs_in_step": runs_in_step,
            "trained_in_job_of": "" if job == summary["run_id"] else job,
            "max_rss_mb": float(bench["max_rss"]) if str(bench["max_rss"]) != "-" else None,
            "cpu_seconds": float(bench["cpu_time"]) if str(bench["cpu_time"]) != "-" else None,
            "device": summary["device"], "threads": summary["threads"],
        })
    pd.DataFrame(rows).sort_values(["kind", "run_id"]).to_csv(out, index=False)
