"""Gather run directories into tidy tables (CSV) under results/tables/.

Per study: runs.csv (one row per run: its hyperparameters, summary metrics and, for
palindrome runs, its outcome against the convergence threshold: outcomes.classify),
curves.csv (one row per run × logged step), evals.csv (one row per run × held-out
evaluation) and, for text, samples.csv (the samples of every sample step, and those of the
checkpoint of lowest held-out loss: column `checkpoint`). Every row carries the run's key
hyperparameters as columns, and run_id joins it to runs.csv for the rest.
"""

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rnnrepro.analysis import outcomes
from rnnrepro.config.kinds import EVALS, SPECS, learn_word
from rnnrepro.config.spec import PalindromeSpec, SpecError
from rnnrepro.files import (
    METRICS,
    SAMPLE_KEYS,
    SUMMARY_KEYS,
    BadFile,
    read_json,
    read_jsonl,
    read_table,
    write_table,
)

log = logging.getLogger("rnnrepro")

KEYS = {
    "palindrome": ["model", "optimizer", "input_length", "lr", "steps", "init", "init_std", "seed"],
    "text": ["temperature", "optimizer", "lr", "steps", "seed"],
    "phased": ["model", "optimizer", "input_length", "lr", "steps", "tau_low", "tau_high", "learn",
               "seed"],
    "frequency": ["model", "sampling", "learn", "hidden", "steps", "seed"],
}
# the kinds whose runs are judged by the palindrome task's convergence criterion
CONVERGING = ("palindrome", "phased")

# what sets a palindrome run's results apart, besides its seed (PalindromeSpec's training
# fields): a study's table rows are its settings, one per input length unless a study varies more
SETTING_FIELDS = tuple(f.name for f in dataclasses.fields(PalindromeSpec)
                       if f.name not in PalindromeSpec.OBSERVED + ("seed", "input_length"))


# The columns of a study table that every reader (the figures, the scorecard, the report)
# counts on; aggregate_study writes these and more.
STUDY_TABLES = {
    "runs": ("run_id", "eval_final_accuracy"),
    "curves": ("run_id", "step", "loss"),
    "evals": ("run_id", "step", "accuracy"),
    "samples": ("run_id",),
}

# samples.csv's `checkpoint`: the sample steps' own checkpoints, or the lowest held-out loss
SAMPLE_CHECKPOINTS = ("sample step", "lowest held-out loss")


# Where a study's tables live under the tables folder (the workflow's rules ask this too).
STUDY_TABLE = "studies/{study}/{table}.csv"


def study_table_path(tables_dir, study, table):
    return Path(tables_dir) / STUDY_TABLE.format(study=study, table=table)


def read_study_table(path, table):
    """A study table (runs, curves, evals, samples), checked for the columns it always has."""
    return read_table(path, f"study {table} table", STUDY_TABLES[table])


def read_study(tables_dir, study, table):
    """A study's table, or None where the study has no tables (not in the config, or not
    aggregated): the one rule for a missing study table, for every reader."""
    path = study_table_path(tables_dir, study, table)
    return read_study_table(path, table) if path.exists() else None


def _flat(value):
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def run_row(summary, study):
    spec = summary["spec"]
    row = {"study": study, "run_id": summary["run_id"], "kind": summary["kind"]}
    row.update({k: _flat(v) for k, v in spec.items()})
    row.update({
        "parameters": summary["parameters"],
        "init_scheme": summary.get("init", {}).get("scheme", "default"),
        "final_loss": summary["final_loss"],
        "final_batch_accuracy": summary["final_batch_accuracy"],
        "final_window": summary["final_window"],
        "eval_final_loss": summary["eval_final"]["loss"],
        "eval_final_accuracy": summary["eval_final"]["accuracy"],
        "eval_best_accuracy": summary["eval_best"]["accuracy"],
        "eval_best_step": summary["eval_best"]["step"],
        "wall_seconds": summary["wall_seconds"],
        "steps_per_second": summary["steps_per_second"],
        "resumed": len(summary["resumed_from"]) > 0,
        "device": summary["device"],
        "torch": summary["torch"],
    })
    if summary["kind"] == "palindrome":
        row["cell_parameters"] = summary["cell_parameters"]
        row["cell_formula"] = summary["cell_formula"]
    elif summary["kind"] in ("phased", "frequency"):
        row["model"] = spec.get("model", "phased")
        row["learn"] = learn_word(spec["learn"]) if row["model"] == "phased" else "no gate"
        timing = summary.get("timing")
        if timing:  # the phased LSTM's timing at the start and the end
            for key in ("tau_initial", "tau_final", "r_on_initial", "r_on_final"):
                value = timing.get(key)
                if not (isinstance(value, (int, float)) or isinstance(value, list) and value
                        and all(isinstance(v, (int, float)) for v in value)):
                    raise BadFile(f"{summary['run_id']}: summary.json's timing.{key} is not "
                                  "numbers; delete the run's folder to train it again")
            row.update({f"{k}_{when}": float(np.median(timing[f"{k}_{when}"]))
                        for k in ("tau",) for when in ("initial", "final")})
            row.update(r_on_initial=timing["r_on_initial"], r_on_final=timing["r_on_final"])
    else:
        row["eval_final_bpc"] = summary["eval_final"]["bpc"]
        row["eval_lowest_loss"] = summary["eval_lowest_loss"]["loss"]
        row["eval_lowest_loss_step"] = summary["eval_lowest_loss"]["step"]
    return row


def read_summary(path):
    """A run's summary.json, checked: the error names the file and what is wrong with it."""
    path = Path(path)
    try:
        summary = read_json(path, "run summary", SUMMARY_KEYS)
    except BadFile as err:
        raise BadFile(f"{err}; delete the run's folder to train it again") from None
    if summary["run_id"] != path.parent.name:
        raise BadFile(f"{path} is the summary of run {summary['run_id']}, and its folder is named "
                      f"{path.parent.name}: a run's folder is named by its run id (renamed? name "
                      f"it {summary['run_id']} again)")
    return summary


def _rows_problem(steps, expected):
    """How a run file's steps depart from the rows the run writes (`expected`, in order):
    rows missing, repeated or out of order; None where they are the same."""
    steps = [int(s) for s in steps]
    if steps == expected:
        return None
    seen, repeated = set(), []
    for step in steps:
        (repeated.append if step in seen else seen.add)(step)
    missing = sorted(set(expected) - seen)
    unexpected = sorted(seen - set(expected))

    def few(values):
        return ", ".join(map(str, values[:3])) + (f" and {len(values) - 3} more" if len(values) > 3 else "")

    parts = [f"{label} step{'s' * (len(v) > 1)} {few(v)}" for label, v in (
        ("no row for", missing), ("a row repeated for", repeated), ("a row for no logged", unexpected))
        if v] or ["its rows out of order"]
    return f"{len(steps)} rows where the run writes {len(expected)}: {'; '.join(parts)}"


def read_run(run_dir):
    """A finished run's summary and files, each checked whole as it is read: every row the
    run writes (by its spec: logged_steps, eval_steps, sample_steps) is there, once, in
    order, every line complete."""
    d = Path(run_dir)
    summary = read_summary(d / "summary.json")
    kind = summary["kind"]
    if kind not in EVALS:
        raise BadFile(f"{d / 'summary.json'}: run kind {kind!r} is not one of {', '.join(EVALS)}")
    try:
        spec = SPECS[kind].from_dict(summary["spec"])
    except (SpecError, TypeError, AttributeError) as err:
        raise BadFile(f"{d / 'summary.json'}: its spec cannot be read ({err}); delete the run's "
                      "folder to train it again") from None
    metrics = read_table(d / "metrics.csv", "run's step metrics", METRICS, METRICS, rows=True, whole=True)
    evals = read_table(d / "eval.csv", "run's held-out evaluations", EVALS[kind], EVALS[kind],
                       rows=True, whole=True)
    for name, table, expected in (
            ("metrics.csv", metrics, spec.logged_steps()), ("eval.csv", evals, spec.eval_steps())):
        last = table["step"].max()
        if last != spec.steps:
            raise BadFile(f"{d / name} ends at step {last:g}, and the run trained {spec.steps} steps "
                          "(summary.json): the file is cut short; delete the run's folder to "
                          "train it again")
        problem = _rows_problem(table["step"], expected)
        if problem:
            raise BadFile(f"{d / name} has {problem}: it is not the file the run wrote; delete "
                          "the run's folder to train it again")
    samples = None
    if kind == "text":
        samples = []
        per_step = spec.samples_per_step * (1 + len(spec.sampling_temperatures()))
        best = summary.get("eval_lowest_loss", {}).get("step")
        for name, checkpoint, steps in (("samples.jsonl", SAMPLE_CHECKPOINTS[0], spec.sample_steps()),
                                        ("best_samples.jsonl", SAMPLE_CHECKPOINTS[1], [best])):
            rows = read_jsonl(d / name, "run's samples", SAMPLE_KEYS)
            if [r["step"] for r in rows] != [s for s in steps for _ in range(per_step)]:
                raise BadFile(f"{d / name} holds {len(rows)} sample{'s' * (len(rows) != 1)}, and the "
                              f"run writes {per_step} at "
                              f"each of the steps {', '.join(map(str, steps))} ({len(steps) * per_step} "
                              "in all): it is not the file the run wrote; delete the run's folder "
                              "to train it again")
            samples += [{**r, "checkpoint": checkpoint} for r in rows]
    return summary, metrics, evals, samples


def aggregate_study(study, run_dirs, out_dir, threshold):
    """The study's tables from its run directories; `threshold`: the convergence threshold
    the palindrome runs' outcomes are read against."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs, curves, evals, samples = [], [], [], []
    seen, kinds = {}, set()
    for d in run_dirs:
        summary, run_curves, run_evals, run_samples = read_run(d)
        if summary["run_id"] in seen:
            raise BadFile(f"run {summary['run_id']} is listed twice ({seen[summary['run_id']]} and "
                          f"{d}): a study counts each run once")
        seen[summary["run_id"]] = d
        kinds.add(summary["kind"])
        if len(kinds) > 1:
            raise BadFile(f"study {study} mixes runs of the kinds {', '.join(sorted(kinds))} ({d} "
                          f"is a {summary['kind']} run): a study is of one kind")
        row = run_row(summary, study)
        if summary["kind"] in CONVERGING:
            row.update(outcomes.classify(run_evals, run_curves, threshold),
                       outcome_threshold=threshold)
        runs.append(row)
        keys = {"study": study, "run_id": row["run_id"],
                **{k: row[k] for k in KEYS[summary["kind"]]}}
        curves.append(run_curves.assign(**keys))
        evals.append(run_evals.assign(**keys))
        if run_samples is not None:
            samples.append(pd.DataFrame(run_samples, columns=[*SAMPLE_KEYS, "checkpoint"])
                           .rename(columns={"temperature": "sample_temperature"}).assign(**keys))
    def order(df):
        return df[list(keys) + [c for c in df.columns if c not in keys]]

    sort = ["run_id"]
    write_table(out_dir / "runs.csv", pd.DataFrame(runs).sort_values(sort))
    write_table(out_dir / "curves.csv",
                order(pd.concat(curves)).sort_values(sort + ["step"], kind="stable"))
    write_table(out_dir / "evals.csv",
                order(pd.concat(evals)).sort_values(sort + ["step"], kind="stable"))
    if samples:
        write_table(out_dir / "samples.csv",
                    order(pd.concat(samples)).sort_values(sort + ["step"], kind="stable"))
    else:  # palindrome studies have no samples; the file keeps the rule's outputs fixed
        write_table(out_dir / "samples.csv", pd.DataFrame(columns=list(keys)))


BENCHMARK = ("s", "max_rss", "cpu_time")  # the columns of Snakemake's benchmark files it reads


def compute_table(benchmarks, summaries, out):
    """One row per training job: Snakemake's benchmark (wall, memory) beside the run's device.

    A run trained in another run's job (jobs.py) shows that job in `trained_in_job_of`, its
    own job's few seconds in job_seconds (the other job's job_seconds include it), and as
    train_seconds its share of the step it was trained in (the step's wall time over the runs
    in it). A job whose benchmark file is gone (deleted by hand: Snakemake writes one with
    every training job) keeps its row, with its job time and memory left empty."""
    rows = []
    for tsv, summary_path in zip(benchmarks, summaries):
        if Path(tsv).exists():
            bench = read_table(tsv, "Snakemake benchmark", BENCHMARK, ("s",), rows=True, sep="\t").iloc[0]
        else:
            log.warning(
                "%s is missing: that job's time and memory are left out of the table", tsv)
            bench = {"s": None, "max_rss": None, "cpu_time": None}
        summary = read_summary(summary_path)
        execution = summary.get("execution", {})
        runs_in_step = execution.get("runs_in_step", 1)
        job = execution.get("job", summary["run_id"])
        rows.append({
            "run_id": summary["run_id"], "kind": summary["kind"],
            "steps": summary["spec"]["steps"], "job_seconds": _number(bench["s"]),
            "train_seconds": summary["wall_seconds"] / runs_in_step,
            "runs_in_step": runs_in_step,
            "trained_in_job_of": "" if job == summary["run_id"] else job,
            "max_rss_mb": _number(bench["max_rss"]),
            "cpu_seconds": _number(bench["cpu_time"]),
            "device": summary["device"], "threads": summary["threads"],
            **numerics_of(execution),
        })
    write_table(out, pd.DataFrame(rows).sort_values(["kind", "run_id"]))


def numerics_of(execution):
    """How a run's floats were computed, from its summary's execution entry: the numerics
    mode and the CPU kernel set of each stretch (segments), joined by + where they changed
    (a summary that predates segments: its mode, else native, kernels unknown)."""
    segments = execution.get("segments") or [{"numerics": execution.get("numerics", "native")}]

    def joined(key):
        return "+".join(dict.fromkeys(str(s[key]) for s in segments if s.get(key) is not None))

    return {"numerics": joined("numerics"), "cpu_kernels": joined("cpu_capability")}


def _number(value):
    """A benchmark cell: Snakemake writes "-" (or NA) where it could not measure."""
    try:
        return float(value) if value is not None and str(value) not in ("-", "nan", "NA") else None
    except ValueError:
        return None
