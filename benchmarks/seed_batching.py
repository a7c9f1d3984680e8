"""Several seeds of one palindrome setting trained as one batched step: measured on the CPU.

A job that trains several runs stacks those of one shape into one batched step
(src/rnnrepro/train/stack.py; jobs.py decides when). Each run keeps its own data stream, its own
loss (the step minimises the sum of the runs' mean losses, so each run's gradient is its
own), its own gradient clipping (per-run norm, torch's formula) and its own optimizer state
(RMSprop, Adam and SGD are elementwise). On a GPU a step is bound by kernel launches and S
runs cost about what one does; this script measures what a stack costs on the CPU, where
the pipeline keeps one run per job (execution.runs_per_job auto).

    PYTHONPATH=src python benchmarks/seed_batching.py [--seeds 2 3 5] [--threads 1 2] [--csv F]

It first checks the stacked runs against S separate runs of the project's own step after 50
steps: with SGD, where the difference stays at rounding level (~3e-8), and with the spec's
optimizer, where training grows rounding differences (with RMSprop to 1e-4 to 6e-3 by step
50, seed by seed, as much as two single-run implementations differ: impl loop against impl
bptt, 2e-5 to 5e-3 for the same seeds). Then it times, interleaved as `rnnrepro bench`
does, the course-style baseline, the project's step (impl auto, one run) and the stacked
step for each S, and prints steps/s per run (a stacked step advances S runs).
"""

import argparse
import dataclasses
import statistics
from pathlib import Path

import torch

from rnnrepro.cli import load_speed
from rnnrepro.config.spec import Execution, PalindromeSpec
from rnnrepro.train import loop, palindrome
from rnnrepro.train.stack import StackedPalindromeTask

bench = load_speed(Path(__file__).with_name("speed.py"))


def stacked(spec, seeds, execution):
    """The stacked step of `spec` for `seeds`, set up as a job sets it up: (run, step())."""
    specs = [dataclasses.replace(spec, seed=s) for s in seeds]
    run = loop.prepare(specs, lambda d: StackedPalindromeTask(specs, d), execution)
    step = loop.make_step(run.task, run.opt, run.params, spec)
    return run, lambda: step(run.gens)


def check(spec, seeds, steps=50, execution=Execution(device="cpu")):
    """Max |difference| of the stacked runs' parameters from separate runs after `steps`."""
    run, step = stacked(spec, seeds, execution)
    for _ in range(steps):
        step()
    worst = 0.0
    for r, one in enumerate(run.task.specs):
        alone = loop.prepare([one], lambda d: palindrome.PalindromeTask(one, d), execution)
        one_step = loop.make_step(alone.task, alone.opt, alone.params, one)
        for _ in range(steps):
            one_step(alone.gens)
        ref = torch.cat([p.detach().flatten() for p in alone.model.parameters()])
        worst = max(worst, (run.task.flat[r].detach() - ref).abs().max().item())
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 5])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="+", default=["rnn", "lstm"])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--seconds", type=float, default=0.4)
    ap.add_argument("--csv")
    args = ap.parse_args(argv)
    base = bench.load_baseline()
    rows = []
    for threads in args.threads:
        for model in args.models:
            spec = PalindromeSpec(model=model, input_length=10, batch=128)
            execution = Execution(device="cpu", threads=threads)
            sgd = dataclasses.replace(spec, optimizer="sgd", lr=0.05, momentum=0.0)
            diffs = [check(sp, list(range(max(args.seeds))), execution=execution) for sp in (sgd, spec)]
            course = base.PalindromeBaseline(model, spec.input_length, spec.batch, spec.hidden,
                                             spec.optimizer, spec.lr, spec.max_norm, spec.seed)
            step, impl = bench.project_step(spec, lambda d: palindrome.PalindromeTask(spec, d), execution)
            impls = [("course", 1, course.step), (f"project ({impl})", 1, step)]
            impls += [(f"{S} seeds batched", S, stacked(spec, list(range(S)), execution)[1])
                      for S in args.seeds]
            torch.set_num_threads(threads)
            rates, _ = bench.time_interleaved([(n, "", f) for n, _, f in impls],
                                              args.rounds, args.seconds, warmup=0.5)
            med = {n: statistics.median(r) for n, r in rates.items()}
            for name, S, _ in impls:
                per_run = med[name] * S
                rows.append({"model": model, "threads": threads, "implementation": name,
                             "runs_per_step": S, "steps_per_s": med[name],
                             "run_steps_per_s": per_run,
                             "ratio_to_course": per_run / med["course"],
                             "ratio_to_project": per_run / med[impls[1][0]],
                             "max_param_diff_sgd": diffs[0] if S > 1 else None,
                             f"max_param_diff_{spec.optimizer}": diffs[1] if S > 1 else None})
                print(f"{model:5s} {threads} thr  {name:18s} {med[name]:7.1f} steps/s "
                      f"{per_run:7.1f} run-steps/s  {per_run / med['course']:5.2f}x course  "
                      f"{per_run / med[impls[1][0]]:5.2f}x project", flush=True)
            print(f"{model:5s} {threads} thr  batched vs separate runs, max |param diff| after "
                  f"50 steps: {diffs[0]:.1e} with SGD, {diffs[1]:.1e} with {spec.optimizer}",
                  flush=True)
    if args.csv:
        from rnnrepro.files import write_csv

        write_csv(args.csv, rows, list(rows[0]))
    return rows


if __name__ == "__main__":
    main()
