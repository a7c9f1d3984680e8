"""`rnnrepro bench` and the course-style baseline: the CSV it writes, the step it times is
the one training runs, the floor and flop counts, and the seed-batching benchmark."""

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnrepro.cli import load_speed
from rnnrepro.config.spec import Execution, PalindromeSpec, TextSpec
from rnnrepro.train import loop, palindrome

FAST = dict(eval_size=200)
CPU = Execution(device="cpu", threads=1)


bench = load_speed(Path(__file__).parents[1] / "benchmarks" / "speed.py")


# --- the bench ------------------------------------------------------------------------------------
def test_bench_quick_writes_its_csv(tmp_path, corpus_path):
    out = tmp_path / "bench.csv"
    res = subprocess.run([sys.executable, "-m", "rnnrepro", "bench", "--quick", "--threads", "1",
                          "--corpus", str(corpus_path), "--out", str(out)],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert res.returncode == 0, res.stderr
    assert "x course" in res.stdout and "job overhead" in res.stdout
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == bench.COLUMNS
    got = {(r["case"], r["implementation"], r["threads"]) for r in rows}
    for case in ("rnn", "lstm", "text"):
        assert {(case, "course", "1"), (case, "project", "1")} <= got
    assert ("text", "plain-nn.LSTM", "1") in got
    for r in rows:  # the floor: the step's own matmuls, timed with the rest
        if r["implementation"] == bench.FLOOR:
            assert float(r["floor_fraction"]) == 1.0 and float(r["step_matmul_gflop_per_s"]) > 0
    assert {r["case"] for r in rows if r["implementation"] == bench.FLOOR} == {"rnn", "lstm", "text"}
    steps = [r for r in rows if r["case"] != "job-overhead"]
    for r in steps:
        assert float(r["steps_per_s"]) > 0 and 0 < float(r["floor_fraction"])
        assert float(r["flop_per_step"]) > 0 and float(r["matmul_gflop_per_s"]) > 0
        if r["implementation"] == "course":
            assert float(r["ratio_to_baseline"]) == 1.0
    assert {r["implementation"] for r in rows if r["case"] == "job-overhead"} == {
        "python -c pass", "import rnnrepro.cli", "import rnnrepro.train.loop",
        "train palindrome --steps 1"}
    assert all(float(r["wall_s"]) > 0 for r in rows if r["case"] == "job-overhead")


def test_baseline_computes_a_loss_of_the_right_shape():
    base = bench.load_baseline()
    for model in ("rnn", "lstm"):
        b = base.PalindromeBaseline(model, input_length=5, batch=8, hidden=16)
        x, y = next(b.batches)
        assert x.shape == (8, 5) and y.shape == (8,)
        assert b.model(x).shape == (8, 10)
        loss, acc = b.step()
        assert isinstance(loss, float) and loss > 0 and 0 <= acc <= 1
    text = base.TextBaseline("abcdefghij" * 50, batch=4, seq_length=6, hidden=8)
    loss, acc = text.step()
    assert isinstance(loss, float) and loss > 0 and 0 <= acc <= 1
    x = torch.zeros(6, 4, text.vocab)
    assert text.model(x)[0].shape == (6, 4, text.vocab)


def test_fit_and_bench_run_the_same_step(monkeypatch, tmp_path):
    calls = []
    real = loop.make_step

    def spy(*args, **kwargs):
        calls.append(args[3])
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "make_step", spy)
    spec = PalindromeSpec(model="rnn", input_length=4, steps=3, eval_every=3, **FAST)
    palindrome.train_palindrome(spec, tmp_path / "run", CPU)
    step, impl = bench.project_step(spec, lambda d: palindrome.PalindromeTask(spec, d), CPU)
    out = step()
    assert calls == [spec, spec]
    assert impl == "bptt" and out.shape == (1, 3)


def test_floor_step_does_the_counted_matmuls(monkeypatch):
    """The floor times exactly the products the FLOP count counts."""
    spec = PalindromeSpec(model="lstm", input_length=10, batch=128, hidden=128)
    done, real_mm = [], torch.mm

    def counting_mm(a, b, out):
        done.append(2 * a.shape[0] * a.shape[1] * b.shape[1])
        return real_mm(a, b, out=out)

    step = bench.matmul_floor_step(bench.palindrome_matmuls(spec, 4))
    monkeypatch.setattr(torch, "mm", counting_mm)
    step()
    assert sum(done) == bench.flops(bench.palindrome_matmuls(spec, 4))


def test_flop_counts():
    spec = PalindromeSpec(model="lstm", input_length=10, batch=128, hidden=128)
    rec = 3 * 9 * 2 * 128 * 128 * 512
    assert bench.flops(bench.palindrome_matmuls(spec, 4)) == (rec + 2 * 2 * 10 * 128 * 512
                                                              + 3 * 2 * 128 * 128 * 10)
    text = TextSpec(batch=64, seq_length=30, hidden=128, layers=2)
    assert bench.flops(bench.text_matmuls(text, 87)) == (
        2 * 3 * 29 * 2 * 64 * 128 * 512 + 3 * 2 * 30 * 64 * 128 * 512 + 3 * 2 * 30 * 64 * 128 * 87)


# --- impl bptt computes what the reference computes -------------------------------------------------
def _load_benchmark(name):
    spec = importlib.util.spec_from_file_location(name, bench.BASELINE.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model", ["rnn", "lstm"])
@pytest.mark.parametrize("max_norm", [1e6, 0.05])
def test_seed_batching_benchmark_trains_each_seed_as_its_own_run(model, max_norm):
    """The benchmark's stack of S seeds ends where S separate runs of the project's step end
    (SGD, so rounding stays rounding), the clipping per run included (max_norm 0.05 bites:
    a norm over all runs at once would fail this)."""
    sb = _load_benchmark("seed_batching")
    spec = PalindromeSpec(model=model, input_length=5, batch=16, hidden=12, optimizer="sgd",
                          lr=0.05, max_norm=max_norm, **FAST)
    assert sb.check(spec, [0, 1, 2], steps=8) < 1e-6
    rows = sb.stacked(spec, [0, 1], CPU)[1]()
    assert rows.shape == (2, 3) and (rows[:, 2] > max_norm).all() == (max_norm < 1)


