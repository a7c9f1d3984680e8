"""Where a whole workflow run's time went: job time by rule and, for the training jobs, by
phase; the wall time against what the cores could have done. Read from a finished run:

    python benchmarks/breakdown.py                      # results/ and the newest Snakemake log
    python benchmarks/breakdown.py --results R --log .snakemake/log/<run>.snakemake.log

Sources: Snakemake's log (when each job started and finished), the training jobs' benchmark
files (`results/compute/<kind>/<run>.tsv`: the job's wall seconds, process start included)
and each run's `summary.json` (`phases_s`: the training process's phases, timed in-process).
A training job's time beyond its phases is its process start, imports and the writing of
its results ("start and finish" below). Prints Markdown.
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
        summary = results / "runs" / tsv.parent.name / tsv.stem / "summary.json"
        phases = json.loads(summary.read_text()).get("phases_s", {}) if summary.exists() else {}
        rows.append({"kind": tsv.parent.name, "run": tsv.stem, "s": float(bench["s"]),
                     "phases": phases})
    return rows


def minutes(s):
    return f"{s / 60:.1f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--log", type=Path, help="Snakemake's log (default: the newest)")
    ap.add_argument("--cores", type=int, default=2)
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
    print("\nTraining jobs by phase (minutes of job time; benchmark files and `phases_s`):\n")
    head = ["kind", "jobs", "job time", "steps", "evaluation (health in it)", "setup",
            "task", "logs", "checkpoints", "start and finish"]
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    sums = defaultdict(lambda: defaultdict(float))
    for r in rows:
        k = sums[r["kind"]]
        k["jobs"] += 1
        k["s"] += r["s"]
        for p in PHASES:
            k[p] += r["phases"].get(p, 0.0)
        k["rest"] += r["s"] - sum(v for p, v in r["phases"].items() if p != "health")
    sums["all"] = {key: sum(k[key] for k in list(sums.values())) for key in
                   ("jobs", "s", "rest", *PHASES)}
    for kind, k in sums.items():
        share = lambda key: f"{minutes(k[key])} ({100 * k[key] / k['s']:.0f} %)"  # noqa: E731
        print(f"| {kind} | {int(k['jobs'])} | {minutes(k['s'])} | {share('steps')} | "
              f"{share('evaluation')} ({minutes(k['health'])}) | {share('setup')} | "
              f"{share('task')} | {share('logs')} | {share('checkpoints')} | {share('rest')} |")


if __name__ == "__main__":
    main()
