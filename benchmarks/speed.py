"""`rnnrepro bench`: the project's training step against a course-style baseline, on this machine.

For each case (palindrome RNN and LSTM at input length 10, batch 128; the two-layer text
model, batch 64, sequence 30) and each thread count, every implementation is built in this
one process and timed interleaved (A, B, C, then C, B, A, ...), after a warm-up, for several
rounds; the table reports the median of the rounds' steps/s:

- `course`: the course-style baseline (benchmarks/course_baseline.py, beside this module in
  the checkout: neither is part of the package; `rnnrepro bench` loads both from there);
- `project`: the project's own step for the same spec, exactly as `fit` runs it
  (`loop.prepare` + `loop.make_step`, impl auto); `project:<impl>` the other paths;
- `plain-nn.LSTM` (text only): `nn.LSTM` + `nn.Linear` on one-hot inputs, fed by the
  project's batch sampler, with the same optimizer and clipping;
- `floor:matmuls`: the step's matrix products alone (forward and backward, in the shapes and
  orientation the project computes them, one-hot products counted as lookups, none for
  h_0 = 0) on preallocated operands. No float32 implementation of this arithmetic, with this
  BLAS and thread count, can beat it; `floor_fraction` is steps/s over its steps/s, and its
  own ratio to the course is the ceiling for any implementation's ratio. For reference the
  rows also carry the machine's rate on a 512³ matmul (`matmul_gflop_per_s`) and the rate
  the step's matmuls reach (`step_matmul_gflop_per_s`).

Everything shares the process, so the allocator setting that `loop.prepare` makes
(`keep_freed_memory`) serves the baseline too: the ratios are, if anything, conservative.
Per-job overhead: wall time of a bare interpreter, of importing the CLI and the training
modules, and of a whole `rnnrepro train palindrome --steps 1` job.
"""

import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from rnnrepro.config.spec import Execution, PalindromeSpec, TextSpec
from rnnrepro.train import fastpath, loop, palindrome, text

COLUMNS = ("case", "implementation", "impl", "threads", "steps_per_s", "ratio_to_baseline",
           "ratio_to_plain", "floor_fraction", "floor_steps_per_s", "flop_per_step",
           "matmul_gflop_per_s", "step_matmul_gflop_per_s", "step_ms", "min_steps_per_s",
           "max_steps_per_s", "rounds", "steps_per_round", "timed_s", "wall_s", "load_avg")
CASES = ("rnn", "lstm", "text")
BASELINE = Path("benchmarks/course_baseline.py")  # in the checkout (the bench rule passes it)


def load_baseline(path=BASELINE):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"the course-style baseline is not at {path} (--baseline)")
    spec = importlib.util.spec_from_file_location("course_baseline", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"--baseline {path} is not a Python module (a .py file is wanted)")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise ValueError(f"--baseline {path} is not a Python module ({err.msg}, line {err.lineno})") from None
    missing = [c for c in ("PalindromeBaseline", "TextBaseline") if not hasattr(module, c)]
    if missing:
        raise ValueError(f"--baseline {path} lacks {', '.join(missing)}: not the course-style baseline")
    return module


# --- FLOPs, the matmul rate and the floor ---------------------------------------------------------
def palindrome_matmuls(spec, gates):
    """The matmuls of one palindrome training step, forward and backward, as (m, k, n, count):
    count products of (m × k) @ (k × n), in the orientation the project computes them.
    None at t = 0 for the recurrent weight (h_0 = 0); a one-hot input is a lookup."""
    B, H, T, G, C = spec.batch, spec.hidden, spec.input_length, gates * spec.hidden, 10
    d = 0 if spec.input_encoding == "onehot" else 1
    mms = [(B, H, G, T - 1),  # forward: h_{t-1} W_hᵀ
           (B, G, H, T - 1),  # dL/dh_{t-1} = dz_t W_h
           (H, (T - 1) * B, G, 1),  # dL/dW_h, all steps at once
           (B, H, C, 1), (C, B, H, 1), (B, C, H, 1)]  # readout: forward, dW_p, dh_T
    if d:
        mms += [(T * B, d, G, 1), (G, T * B, d, 1)]  # input term and dL/dW_x
    return mms


def text_matmuls(spec, vocab):
    """The same for the text model; the first layer's one-hot input is a lookup."""
    B, H, T, L, G = spec.batch, spec.hidden, spec.seq_length, spec.layers, 4 * spec.hidden
    mms = [(B, H, G, L * (T - 1)), (B, G, H, L * (T - 1)), (H, (T - 1) * B, G, L)]
    if L > 1:  # the upper layers' input terms, their input gradients and dL/dW_ih
        mms += [(T * B, H, G, L - 1), (T * B, G, H, L - 1), (G, T * B, H, L - 1)]
    return mms + [(T * B, H, vocab, 1), (T * B, vocab, H, 1), (vocab, T * B, H, 1)]  # head


def flops(matmuls):
    return sum(2 * m * k * n * count for m, k, n, count in matmuls)


def matmul_floor_step(matmuls):
    """A callable doing just the step's matmuls, on preallocated operands: timed with the
    implementations, its steps/s is the floor that no implementation of the same arithmetic
    (float32, this BLAS, this thread count) can pass."""
    gen = torch.Generator().manual_seed(0)
    ops = [(torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen),
            torch.empty(m, n), count) for m, k, n, count in matmuls]

    def step():
        for a, b, out, count in ops:
            for _ in range(count):
                torch.mm(a, b, out=out)

    return step


def matmul_rate(m=512, k=512, n=512, seconds=0.5):
    """GFLOP/s of (m × k) @ (k × n) at the current thread count: the median of 5 rounds."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    reps = 3
    t = time.perf_counter()
    while time.perf_counter() - t < seconds / 5 or reps < 20:  # warm up and size the rounds
        torch.mm(a, b, out=out)
        reps += 1
    rates = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        rates.append(2 * m * k * n * reps / (time.perf_counter() - t) / 1e9)
    return statistics.median(rates)


# --- the implementations -----------------------------------------------------------------------
def project_step(spec, make_task, execution):
    """The step `fit` runs for `spec`: its setup (`prepare`) and step (`make_step`)."""
    run = loop.prepare([spec], make_task, execution)
    run.model.train()
    step = loop.make_step(run.task, run.opt, run.params, spec, run.sched)
    return (lambda: step(run.gens)), run.task.impl


def plain_lstm_step(spec, corpus):
    """nn.LSTM + nn.Linear on one-hot inputs: what one writes with torch's modules."""
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(spec.seed)
    V = len(corpus.vocab)
    lstm = nn.LSTM(V, spec.hidden, spec.layers, batch_first=True)
    head = nn.Linear(spec.hidden, V)
    params = [*lstm.parameters(), *head.parameters()]
    opt = fastpath.make_optimizer(spec, params)
    gen = torch.Generator().manual_seed(spec.seed)

    def step():
        x, y = corpus.batch(spec.batch, spec.seq_length, gen)
        out, _ = lstm(F.one_hot(x, V).float())
        logits = head(out) / spec.temperature
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        acc = (logits.argmax(-1) == y).float().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, spec.max_norm)
        opt.step()
        return acc

    return step


FLOOR = "floor:matmuls"


def build(case, threads, baseline, corpus=None):
    """[(implementation, impl, step callable)] and the step's matmuls for one case; the last
    implementation is the floor: those matmuls alone."""
    execution = Execution(device="cpu", threads=threads)
    if case in ("rnn", "lstm"):
        spec = PalindromeSpec(model=case, input_length=10, batch=128)
        course = baseline.PalindromeBaseline(case, spec.input_length, spec.batch, spec.hidden,
                                             spec.optimizer, spec.lr, spec.max_norm, spec.seed)
        impls = [("course", "", course.step)]
        step, impl = project_step(spec, lambda d: palindrome.PalindromeTask(spec, d), execution)
        impls.append(("project", impl, step))
        for other in ("fused", "bptt"):
            if other != impl:
                def make(d, other=other):
                    return palindrome.PalindromeTask(spec, d, other)

                impls.append((f"project:{other}", other, project_step(spec, make, execution)[0]))
        mms = palindrome_matmuls(spec, 4 if case == "lstm" else 1)
        return impls + [(FLOOR, "", matmul_floor_step(mms))], mms
    spec = TextSpec(batch=64, seq_length=30)
    course = baseline.TextBaseline(corpus.text, spec.batch, spec.seq_length, spec.hidden,
                                   spec.layers, spec.optimizer, spec.lr, spec.max_norm, spec.seed)
    impls = [("course", "", course.step)]
    step, impl = project_step(spec, lambda d: text.TextTask(spec, d, corpus), execution)
    impls.append(("project", impl, step))
    impls.append(("plain-nn.LSTM", "", plain_lstm_step(spec, corpus)))
    mms = text_matmuls(spec, len(corpus.vocab))
    return impls + [(FLOOR, "", matmul_floor_step(mms))], mms


def time_interleaved(impls, rounds, seconds, warmup):
    """Steps/s of each implementation per round, interleaved, after a warm-up that also
    sizes each one's round to about `seconds`."""
    sizes = {}
    for name, _, step in impls:
        n, t = 0, time.perf_counter()
        while n < 2 or time.perf_counter() - t < warmup:
            step()
            n += 1
        sizes[name] = max(2, round(seconds * n / (time.perf_counter() - t)))
    rates = {name: [] for name, _, _ in impls}
    for r in range(rounds):
        for name, _, step in (impls if r % 2 == 0 else impls[::-1]):
            t = time.perf_counter()
            for _ in range(sizes[name]):
                step()
            rates[name].append(sizes[name] / (time.perf_counter() - t))
    return rates, sizes


# --- per-job overhead --------------------------------------------------------------------------
def job_overhead(repeats, eval_size=None):
    """Wall seconds (median of `repeats`) of what every training job pays before its steps."""
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        train_cmd = [py, "-m", "rnnrepro", "train", "palindrome", "--steps", "1", "--device",
                     "cpu", "--out", str(Path(tmp) / "run")]
        if eval_size:
            train_cmd += ["--eval-size", str(eval_size)]
        commands = [("python -c pass", [py, "-c", "pass"]),
                    ("import rnnrepro.cli", [py, "-c", "import rnnrepro.cli"]),
                    ("import rnnrepro.train.loop", [py, "-c", "import rnnrepro.train.loop"]),
                    ("train palindrome --steps 1", train_cmd)]
        rows = []
        for name, cmd in commands:
            walls = []
            for _ in range(repeats):
                shutil.rmtree(Path(tmp) / "run", ignore_errors=True)
                t = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                walls.append(time.perf_counter() - t)
            rows.append({"case": "job-overhead", "implementation": name, "threads": 1,
                         "wall_s": statistics.median(walls), "rounds": repeats,
                         "load_avg": os.getloadavg()[0]})
        return rows


# --- the whole bench ---------------------------------------------------------------------------
def run(cases=CASES, threads=(1, 2), corpus=None, quick=False, rounds=9, seconds=0.4,
        warmup=0.5, overhead=True, baseline=BASELINE, out=None, stream=None):
    """Time every case; return the rows (and write them to `out` as CSV)."""
    stream = stream or sys.stdout
    if quick:
        rounds, seconds, warmup = 2, 0.02, 0.01
    base = load_baseline(baseline)
    text_corpus = None
    if "text" in cases:
        from rnnrepro.data.corpus import Corpus

        if corpus is None or not Path(corpus).exists():
            print(f"bench: no corpus at {corpus}: the text case is skipped", file=stream)
            cases = [c for c in cases if c != "text"]
            if not cases:
                raise FileNotFoundError(f"bench: the text case needs a corpus, and there is none "
                                        f"at {corpus} (--corpus)")
        else:
            text_corpus = Corpus.from_file(corpus)
    saved_threads = torch.get_num_threads()
    rows = []
    started = time.perf_counter()
    try:
        for n in threads:
            torch.set_num_threads(n)
            rate = matmul_rate(seconds=0.05 if quick else 0.5)
            for case in cases:
                impls, mms = build(case, n, base, text_corpus)
                torch.set_num_threads(n)
                rates, sizes = time_interleaved(impls, rounds, seconds, warmup)
                med = {name: statistics.median(r) for name, r in rates.items()}
                floor, step_flops = med[FLOOR], flops(mms)
                for name, impl, _ in impls:
                    rows.append({
                        "case": case, "implementation": name, "impl": impl, "threads": n,
                        "steps_per_s": med[name], "ratio_to_baseline": med[name] / med["course"],
                        "ratio_to_plain": (med[name] / med["plain-nn.LSTM"]
                                           if "plain-nn.LSTM" in med else None),
                        "floor_fraction": med[name] / floor, "floor_steps_per_s": floor,
                        "flop_per_step": step_flops, "matmul_gflop_per_s": rate,
                        "step_matmul_gflop_per_s": floor * step_flops / 1e9,
                        "step_ms": 1000 / med[name], "min_steps_per_s": min(rates[name]),
                        "max_steps_per_s": max(rates[name]), "rounds": rounds,
                        "steps_per_round": sizes[name],
                        "timed_s": sum(sizes[name] / r for r in rates[name]),
                        "load_avg": os.getloadavg()[0]})
                block = rows[-len(impls):]
                print_rows(block, stream, header=len(rows) == len(block))
        if overhead:
            over = job_overhead(1 if quick else 3, eval_size=100 if quick else None)
            rows += over
            print(" ".join(["job overhead (wall s):"] +
                           [f"{r['implementation']} {r['wall_s']:.2f};" for r in over]),
                  file=stream)
    finally:
        torch.set_num_threads(saved_threads)
    print(f"bench: {time.perf_counter() - started:.0f} s, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.2f}", file=stream)
    if out:
        write(rows, out)
    return rows


def print_rows(rows, stream, header=True):
    if header:
        print(f"{'case':6s} {'implementation':18s} {'impl':6s} {'thr':>3s} {'steps/s':>8s} "
              f"{'(min-max)':>13s} {'x course':>8s} {'x plain':>7s} {'floor':>6s} "
              f"{'of floor':>8s}", file=stream)
    for r in rows:
        plain = f"{r['ratio_to_plain']:.2f}" if r["ratio_to_plain"] is not None else ""
        spread = f"{r['min_steps_per_s']:.0f}-{r['max_steps_per_s']:.0f}"
        print(f"{r['case']:6s} {r['implementation']:18s} {r['impl']:6s} {r['threads']:3d} "
              f"{r['steps_per_s']:8.1f} {spread:>13s} {r['ratio_to_baseline']:8.2f} {plain:>7s} "
              f"{r['floor_steps_per_s']:6.0f} {r['floor_fraction']:8.0%}", file=stream)


def write(rows, path):
    from rnnrepro.files import write_csv

    write_csv(path, rows, COLUMNS)
