"""One held-out evaluation of a palindrome run, as the training loop calls it: its forward in
blocks of FORWARD_ROWS sequences (what the pipeline runs) against one forward per EVAL_CHUNK
(the same sums; the baseline), timed in interleaved rounds in one process, on the CPU.

    PYTHONPATH=src python benchmarks/evaluation.py [--lengths 10 20 40] [--rounds 7] [--rows 512]

For each model (RNN, LSTM, phased LSTM, at the default spec's size and held-out set: 128
units, 10,000 sequences, impl auto) and input length it times both, checks that they gave the
same row of eval.csv, to the bit, and prints the median seconds per evaluation of each, their
ratio (baseline / blocks, min–max over the rounds' pairs) and what the health measures (the
reference loop on 1,000 sequences, the same in both) take of it.
"""

import argparse
import statistics
import time

import torch

from rnnrepro.config.kinds import PhasedSpec
from rnnrepro.config.spec import PalindromeSpec
from rnnrepro.models.recurrent import health
from rnnrepro.train import palindrome
from rnnrepro.train.fastpath import keep_freed_memory
from rnnrepro.train.phased import PhasedTask


def task(model, length):
    cpu = torch.device("cpu")
    if model == "phased":
        return PhasedTask(PhasedSpec(input_length=length), cpu)
    return palindrome.PalindromeTask(PalindromeSpec(model=model, input_length=length), cpu)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["rnn", "lstm", "phased"])
    ap.add_argument("--lengths", nargs="+", type=int, default=[10, 20, 40])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--rows", type=int, default=palindrome.FORWARD_ROWS)
    args = ap.parse_args()
    torch.set_num_threads(1)  # what a workflow job runs with
    keep_freed_memory()
    print(f"torch {torch.__version__}, 1 thread; blocks of {args.rows} against one forward "
          f"per {palindrome.EVAL_CHUNK} sequences; {args.rounds} interleaved rounds\n")
    print("| model | input length | baseline (s) | blocks (s) | baseline / blocks | health (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    sides = {"baseline": 10**9, "blocks": args.rows}
    for model in args.models:
        for length in args.lengths:
            t = task(model, length)
            times, rows = {side: [] for side in sides}, {}
            for _ in range(args.rounds + 1):  # the first round warms up, untimed
                for side, n in sides.items():
                    palindrome.FORWARD_ROWS = n
                    seconds, rows[side] = timed(t.evaluate)
                    times[side].append(seconds)
            if rows["baseline"] != rows["blocks"]:
                raise SystemExit(f"{model} at length {length}: the rows differ: {rows}")
            h = statistics.median(timed(lambda: health(t.model, t.test[0]))[0] for _ in range(3))
            base, blocks = (times[side][1:] for side in sides)
            ratios = sorted(b / k for b, k in zip(base, blocks))
            print(f"| {model} | {length} | {statistics.median(base):.3f} | "
                  f"{statistics.median(blocks):.3f} | {statistics.median(ratios):.2f} "
                  f"({ratios[0]:.2f}–{ratios[-1]:.2f}) | {h:.3f} |")


if __name__ == "__main__":
    main()
