"""`rnnrepro bench`, the course-style baseline, and the fast paths it measures.

The fast paths must compute what the reference paths compute: the hand-written recurrence
(`impl bptt`) against the equations and torch's LSTM, values and gradients, and gradcheck
in float64; `impl auto`/`graph` resolve and fall back as documented; the optimizer step
without torch's wrapper is the same arithmetic and keeps torch._dynamo out of a job.
"""

import csv
import importlib.util
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from rnnrepro import bench, bptt, train
from rnnrepro.data import Corpus, palindrome_batch
from rnnrepro.bptt import layer
from rnnrepro.models import LSTM, VanillaRNN
from rnnrepro.spec import Execution, PalindromeSpec, TextSpec

FAST = dict(eval_size=200)
CPU = Execution(device="cpu", threads=1)


# --- the bench ------------------------------------------------------------------------------------
def test_bench_quick_writes_its_csv(tmp_path, corpus_path):
    out = tmp_path / "bench.csv"
    res = subprocess.run([sys.executable, "-m", "rnnrepro", "bench", "--quick", "--threads", "1",
                          "--corpus", str(corpus_path), "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
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
        "python -c pass", "import rnnrepro.cli", "import rnnrepro.train",
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
    real = train.make_step

    def spy(*args, **kwargs):
        calls.append(args[3])
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "make_step", spy)
    spec = PalindromeSpec(model="rnn", input_length=4, steps=3, eval_every=3, **FAST)
    train.train_palindrome(spec, tmp_path / "run", CPU)
    step, impl = bench.project_step(spec, lambda d: train.PalindromeTask(spec, d), CPU)
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
@pytest.mark.parametrize("cls", [VanillaRNN, LSTM])
@pytest.mark.parametrize("onehot", [False, True])
def test_bptt_path_equals_the_reference_loop(cls, onehot):
    torch.manual_seed(0)
    model = cls(24, onehot=onehot)
    x, y = palindrome_batch(9, 7, torch.Generator().manual_seed(1))
    results = []
    for run in (lambda: model(x, fast=False), lambda: model.forward_bptt(x)):
        model.zero_grad()
        logits = run()
        F.cross_entropy(logits, y).backward()
        results.append((logits.detach(), [p.grad.clone() for p in model.parameters()]))
    (ref, ref_grads), (got, got_grads) = results
    assert torch.allclose(got, ref, atol=1e-6)
    for g, r in zip(got_grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-6, rtol=1e-4)
    with torch.no_grad():  # the no-grad path keeps no activations, same values
        assert torch.equal(model.forward_bptt(x), got)


@pytest.mark.parametrize("cls", [VanillaRNN, LSTM])
def test_bptt_path_float64_matches_to_rounding(cls):
    torch.manual_seed(2)
    model = cls(16).double()
    x, y = palindrome_batch(5, 6, torch.Generator().manual_seed(3))
    grads = []
    for run in (lambda: model(x, fast=False), lambda: model.forward_bptt(x)):
        model.zero_grad()
        F.cross_entropy(run(), y).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for g, r in zip(*grads):
        assert (g - r).abs().max() < 1e-12


@pytest.mark.parametrize("gates", [1, 4])
@pytest.mark.parametrize("last_only", [True, False])
@pytest.mark.parametrize("onehot", [False, True])
def test_layer_gradcheck(gates, last_only, onehot):
    torch.manual_seed(4)
    T, B, H, V = 4, 3, 5, 6
    x = torch.randint(V, (T, B)) if onehot else torch.randn(T, B, 2, dtype=torch.float64,
                                                            requires_grad=True)
    W_x = torch.randn(gates * H, V if onehot else 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(gates * H, dtype=torch.float64, requires_grad=True)
    W_h = (0.5 * torch.randn(gates * H, H, dtype=torch.float64)).requires_grad_()
    if onehot:
        assert torch.autograd.gradcheck(lambda *p: layer(gates, x, *p, last_only), (W_x, b, W_h))
    else:  # dense inputs: the gradient reaches them too
        assert torch.autograd.gradcheck(lambda *p: layer(gates, *p, last_only), (x, W_x, b, W_h))


@pytest.mark.parametrize("onehot", [False, True])
def test_layer_is_the_lstm_equations(onehot):
    """`layer` on torch's LSTM weights gives torch's LSTM, for dense and one-hot inputs."""
    torch.manual_seed(5)
    T, B, V, H = 6, 4, 7, 8
    ref = torch.nn.LSTM(V if onehot else 3, H)
    x = torch.randint(V, (T, B)) if onehot else torch.randn(T, B, 3)
    inputs = F.one_hot(x, V).float() if onehot else x
    hs = layer(4, x, ref.weight_ih_l0, ref.bias_ih_l0 + ref.bias_hh_l0, ref.weight_hh_l0)
    assert torch.allclose(hs, ref(inputs)[0], atol=1e-6)


@pytest.mark.parametrize("gates", [1, 4])
@pytest.mark.parametrize("last_only", [True, False])
def test_scans_take_a_stack_of_runs(gates, last_only):
    """A stack of S runs (xz (T, S, B, G), W (S, G, H)) gives each run's own states and
    gradients, as if it ran alone: what benchmarks/seed_batching.py builds on."""
    torch.manual_seed(6)
    T, S, B, H = 5, 3, 4, 6
    xz = torch.randn(T, S, B, gates * H, dtype=torch.float64)
    W = 0.5 * torch.randn(S, gates * H, H, dtype=torch.float64)
    dH = torch.randn(*((S, B, H) if last_only else (T, S, B, H)), dtype=torch.float64)

    def run(xz, W, dH):
        if gates == 4:
            hs, acts, c2s, tcs = bptt._lstm_scan(xz, W, save=True)
            return (hs, *bptt._lstm_bptt(dH, W, acts, c2s, tcs, hs, last_only))
        hs = bptt._rnn_scan(xz, W)
        return (hs, *bptt._rnn_bptt(dH, W, hs, last_only))

    stacked = run(xz, W, dH)
    for r in range(S):
        alone = run(xz[:, r].contiguous(), W[r], (dH[r] if last_only else dH[:, r]).contiguous())
        for got, want in zip((stacked[0][:, r], stacked[1][:, r], stacked[2][r]), alone):
            assert torch.allclose(got, want, rtol=0, atol=1e-12)


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


# --- impl resolution, fallback, determinism -------------------------------------------------------
def test_impl_values_and_auto_resolution():
    cpu = torch.device("cpu")
    assert Execution().impl == "auto"
    assert train.resolve_impl("rnn", "auto", cpu) == "bptt"
    assert train.resolve_impl("lstm", "auto", cpu) == "fused"
    for impl in ("fused", "loop", "bptt"):
        assert train.resolve_impl("lstm", impl, cpu) == impl
    assert train.resolve_impl("rnn", "graph", cpu) == "bptt"
    assert train.PalindromeTask(PalindromeSpec(**FAST), cpu, "loop").impl == "loop"
    corpus = Corpus("abcdefghij" * 100)
    assert train.TextTask(TextSpec(hidden=8, seq_length=5), cpu, corpus).impl == "fused"
    assert train.TextTask(TextSpec(hidden=8, seq_length=5), cpu, corpus, "graph").impl == "fused"


def test_graph_impl_falls_back_on_cpu_to_the_same_run(tmp_path):
    spec = dict(model="rnn", input_length=5, steps=60, eval_every=30, **FAST)
    train.train_palindrome(PalindromeSpec(**spec), tmp_path / "graph", Execution(device="cpu", impl="graph"))
    train.train_palindrome(PalindromeSpec(**spec), tmp_path / "auto", CPU)
    for name in ("metrics.csv", "eval.csv"):
        assert (tmp_path / "graph" / name).read_bytes() == (tmp_path / "auto" / name).read_bytes()
    task = train.PalindromeTask(PalindromeSpec(**spec), torch.device("cpu"))
    task.impl = "graph"
    opt = train.make_optimizer(PalindromeSpec(**spec), list(task.model.parameters()))
    with pytest.raises(RuntimeError, match="needs CUDA"):
        train.make_step(task, opt, list(task.model.parameters()), PalindromeSpec(**spec))


@pytest.mark.parametrize("model", ["rnn", "lstm"])
@pytest.mark.parametrize("impl", ["bptt", "fused"])
def test_every_cpu_path_is_deterministic_and_learns(model, impl, tmp_path):
    spec = PalindromeSpec(model=model, optimizer="adam", input_length=3, steps=150,
                          eval_every=150, **FAST)
    execution = Execution(device="cpu", impl=impl)
    a = train.train_palindrome(spec, tmp_path / "a", execution)
    train.train_palindrome(spec, tmp_path / "b", execution)
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == (tmp_path / "b" / "metrics.csv").read_bytes()
    first = float((tmp_path / "a" / "eval.csv").read_text().splitlines()[1].split(",")[1])
    assert a["eval_final"]["loss"] < 0.8 * first


# --- the optimizer step without torch's wrapper -----------------------------------------------------
@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_optimizer_step_is_torchs_step(optimizer):
    spec = PalindromeSpec(optimizer=optimizer, momentum=0.5 if optimizer != "adam" else 0.0)
    models = []
    for step in (lambda o: o.step(), train.optimizer_step):
        torch.manual_seed(7)
        model = VanillaRNN(8)
        opt = train.make_optimizer(spec, list(model.parameters()))
        x, y = palindrome_batch(16, 5, torch.Generator().manual_seed(8))
        for _ in range(5):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            step(opt)
        models.append(model)
    for p, q in zip(*(m.parameters() for m in models)):
        assert torch.equal(p, q)


def test_a_training_job_does_not_import_dynamo(tmp_path):
    code = ("import sys; from rnnrepro.spec import PalindromeSpec; "
            "from rnnrepro.train import train_palindrome; "
            f"train_palindrome(PalindromeSpec(steps=3, eval_size=50), {str(tmp_path)!r}); "
            "print('torch._dynamo' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip().splitlines()[-1] == "False"


# --- flat parameters and the allocator ---------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
@pytest.mark.parametrize("cls", [LSTM, VanillaRNN])
@pytest.mark.parametrize("max_norm", [1e6, 0.05])
def test_flat_parameters_train_like_separate_ones(optimizer, cls, max_norm):
    """The optimizer on one flat tensor gives the same parameters, bit for bit; when the
    clipping bites, its coefficient (the norm summed in another order) may differ in the
    last bit. The parameters and their gradients stay views of the flat buffers."""
    spec = PalindromeSpec(optimizer=optimizer, momentum=0.5 if optimizer != "adam" else 0.0,
                          max_norm=max_norm)
    models, norms = [], []
    for flat in (False, True):
        torch.manual_seed(9)
        model = cls(12)
        params = list(model.parameters())
        if flat:
            params = [train.flat_parameters(params)]
        opt = train.make_optimizer(spec, params)
        gen = torch.Generator().manual_seed(10)
        for _ in range(6):
            x, y = palindrome_batch(16, 5, gen)
            train.zero_grads(params)
            F.cross_entropy(model.forward_bptt(x), y).backward()
            norms.append(torch.nn.utils.clip_grad_norm_(params, spec.max_norm).item())
            train.optimizer_step(opt)
        models.append(model)
    (flat,) = params
    for p, q in zip(*(m.parameters() for m in models)):
        assert torch.equal(p, q) if max_norm > 1 else torch.allclose(p, q, rtol=1e-5, atol=1e-7)
    assert (max(norms) > max_norm) == (max_norm < 1)  # the clipping bit in one case only
    start = flat.data_ptr()
    for p in models[1].parameters():
        assert p.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
        assert p.grad.untyped_storage().data_ptr() == flat.grad.untyped_storage().data_ptr()
        assert start <= p.data_ptr() < start + flat.numel() * flat.element_size()


def test_training_steps_do_not_page_fault_after_warm_up():
    """`keep_freed_memory` (called by `prepare`) keeps the step's activations on the heap:
    without it glibc unmaps them after every step and each step faults ~1000 pages afresh."""
    resource = pytest.importorskip("resource")
    spec = PalindromeSpec(model="lstm", input_length=10, batch=128, **FAST)
    run = train.prepare([spec], lambda d: train.PalindromeTask(spec, d, "bptt"), CPU)
    step = train.make_step(run.task, run.opt, run.params, spec)
    for _ in range(5):
        step(run.gens)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step(run.gens)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20 < 100
