"""Where a whole workflow run's time went: job time by rule and, for the training jobs, by
phase; the wall time against what the cores could have done. Read from a finished run:

    python benchmarks/breakdown.py                      # results/ and the newest Snakemake log
    python benchmarks/breakdown.py --results R --log .snakemake/log/<run>.snakemake.log

Sources: Snakemake's log (when each job started and finished), the training jobs' benchmark
files (`results/compute/<kind>/<run>.tsv`: the job's wall seconds, process start included)
and each run's `summary.json` (`phases_s`: the training process's phases, timed in-process).
A training job's time beyond its phases is its process start, imports and the writing of
its results ("start and finish" below). Prints Markdown.

Beside the training steps and evaluations it puts their floor: the matrix products they
multiply (from each run's spec: the recurrences, input terms and readouts, forward and
backward; one-hot inputs as lookups, none for h_0 = 0) at `--gflops`, the rate of a plain
matrix product on the machine (the bench's floor:matmuls; benchmarks/README.md). The gates'
pointwise work is not in it, so no implementation reaches it.
"""

import argparse
import csv
import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
STARTED = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")
PHASES = ("setup", "steps", "evaluation", "health", "task", "logs", "checkpoints")
# the matrix-product rate of one thread on the 2-core AMD EPYC VM (90-101 GFLOP/s for these
# models' shapes, torch 2.13.0+cpu; benchmarks/README.md, "Where a training job's time goes")
GFLOPS = 95.0


def frequency_length(sampling):
    """The samples a frequency-task sequence is padded to, as its data module draws them."""
    from rnnrepro.data.frequency import frequency_batch

    return frequency_batch(1, sampling)[0].shape[1]


def recurrence_flops(T, B, H, G, d, classes):
    """Matrix-product FLOPs of B sequences through one recurrent layer of G gate blocks and
    H units over T steps, with inputs of width d (0: a lookup) and a readout of `classes`:
    (forward, forward and backward)."""
    rec, inp, out = 2 * (T - 1) * G * H * H, 2 * T * G * H * d, 2 * H * classes
    return B * (rec + inp + out), B * (3 * rec + 2 * inp + 3 * out)


def matmul_flops(kind, spec, summary, evaluations):
    """(training steps, evaluations) matrix-product FLOPs of a whole run."""
    if kind in ("palindrome", "phased"):
        G = 1 if spec.get("model") == "rnn" else 4
        d = 0 if spec.get("input_encoding") == "onehot" else 1
        one = lambda B: recurrence_flops(spec["input_length"], B, spec["hidden"], G, d, 10)  # noqa: E731
        return spec["steps"] * one(spec["batch"])[1], evaluations * one(spec["eval_size"])[0]
    if kind == "frequency":
        T, d = frequency_length(spec["sampling"]), summary.get("input_dim", 1)
        one = lambda B: recurrence_flops(T, B, spec["hidden"], 4, d, 2)  # noqa: E731
        return spec["steps"] * one(spec["batch"])[1], evaluations * one(spec["eval_size"])[0]
    if kind == "text":  # one layer on looked-up inputs, the others on the layer below
        T, H, V, L = spec["seq_length"], spec["hidden"], summary["corpus"]["distinct"], spec["layers"]
        per_char = L * 2 * 4 * H * H * (T - 1) / T + (L - 1) * 2 * 4 * H * H + 2 * H * V
        corpus = summary["corpus"]
        held_out = corpus["validation_end"] - corpus["validation_start"]
        return spec["steps"] * spec["batch"] * T * 3 * per_char, evaluations * held_out * per_char
    return 0.0, 0.0


def jobs_from_log(path):
    """{jobid: (rule, start, end)} for every job the log saw finish."""
    now, pending, started, done = None, None, {}, {}
    for line in Path(path).read_text().splitlines():
        if m := STAMP.match(line):
            now = datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
        elif m := STARTED.match(line):
            pending = (m.group(1), now)
        elif (m := JOBID.match(line)) and pending:
            started[m.group(1)], pending = pending, None
        elif (m := FINISHED.match(line)) and m.group(1) in started:
            rule, start = started[m.group(1)]
            done[m.group(1)] = (rule, start, now)
    return done


def training_jobs(results):
    """Per training job: kind, the benchmark's wall seconds, and the summary's phases."""
    rows = []
    for tsv in sorted((results / "compute").glob("*/*.tsv")):
        with tsv.open() as f:
            bench = next(csv.DictReader(f, delimiter="\t"))
        run = results / "runs" / tsv.parent.name / tsv.stem
        summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
        evals = (run / "eval.csv").read_text().count("\n") - 1 if (run / "eval.csv").exists() else 0
        kind = summary.get("kind", tsv.parent.name)
        flops = matmul_flops(kind, summary["spec"], summary, evals) if "spec" in summary else (0, 0)
        rows.append({"kind": tsv.parent.name, "run": tsv.stem, "s": float(bench["s"]),
                     "phases": summary.get("phases_s", {}), "flops": flops})
    return rows


def minutes(s):
    return f"{s / 60:.1f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--log", type=Path, help="Snakemake's log (default: the newest)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--gflops", type=float, default=GFLOPS,
                    help=f"one thread's matrix-product rate on the machine (default {GFLOPS:g})")
    a = ap.parse_args(argv)
    log = a.log or max(Path(".snakemake/log").glob("*.snakemake.log"), key=lambda p: p.stat().st_mtime)
    jobs = jobs_from_log(log)
    if not jobs:
        raise SystemExit(f"{log}: no finished jobs in it")
    first = min(s for _, s, _ in jobs.values())
    last = max(e for _, _, e in jobs.values())
    wall = max((last - first).total_seconds(), 1.0)
    by_rule = defaultdict(lambda: [0, 0.0])
    for rule, start, end in jobs.values():
        by_rule[rule][0] += 1
        by_rule[rule][1] += (end - start).total_seconds()
    total = sum(s for _, s in by_rule.values())
    print(f"Wall time {minutes(wall)} min from the first job's start to the last one's end; "
          f"{minutes(total)} min of job time ({len(jobs)} jobs), so {a.cores} cores were busy "
          f"{100 * total / (a.cores * wall):.0f} % of the wall time (from {log.name}, to the "
          "second).\n")
    print("| rule | jobs | job time (min) | share |\n| --- | --- | --- | --- |")
    for rule, (n, s) in sorted(by_rule.items(), key=lambda kv: -kv[1][1]):
        print(f"| {rule} | {n} | {minutes(s)} | {100 * s / total:.1f} % |")

    rows = training_jobs(a.results)
    if not rows:
        return
    print("\nTraining jobs by phase (minutes of job time; benchmark files and `phases_s`; the "
          f"floors: their matrix products at {a.gflops:g} GFLOP/s):\n")
    head = ["kind", "jobs", "job time", "steps", "steps' floor", "evaluation (health in it)",
            "evaluations' floor", "setup", "task", "logs", "checkpoints", "start and finish"]
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    sums = defaultdict(lambda: defaultdict(float))
    for r in rows:
        k = sums[r["kind"]]
        k["jobs"] += 1
        k["s"] += r["s"]
        for p in PHASES:
            k[p] += r["phases"].get(p, 0.0)
        k["rest"] += r["s"] - sum(v for p, v in r["phases"].items() if p != "health")
        k["steps floor"] += r["flops"][0] / (a.gflops * 1e9)
        k["evaluation floor"] += r["flops"][1] / (a.gflops * 1e9)
    sums["all"] = {key: sum(k[key] for k in list(sums.values())) for key in
                   ("jobs", "s", "rest", "steps floor", "evaluation floor", *PHASES)}
    for kind, k in sums.items():
        share = lambda key: f"{minutes(k[key])} ({100 * k[key] / k['s']:.0f} %)"  # noqa: E731
        print(f"| {kind} | {int(k['jobs'])} | {minutes(k['s'])} | {share('steps')} | "
              f"{minutes(k['steps floor'])} | {share('evaluation')} ({minutes(k['health'])}) | "
              f"{minutes(k['evaluation floor'])} | {share('setup')} | "
              f"{share('task')} | {share('logs')} | {share('checkpoints')} | {share('rest')} |")


if __name__ == "__main__":
    main()
