"""The fast paths of the training step (fastpath.resolve_impl, fastpath.py) compute what the plain
paths compute: `impl auto`/`graph` resolve and fall back as documented, every CPU path is
deterministic and learns, the optimizer step without torch's wrapper is the same arithmetic
and keeps torch._dynamo out of a job, flat parameters train like separate ones, and the
allocator setting stops the page faults."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from rnnrepro.config.spec import Execution, PalindromeSpec, TextSpec
from rnnrepro.data.corpus import Corpus
from rnnrepro.data.palindromes import palindrome_batch
from rnnrepro.models.lstm import LSTM
from rnnrepro.models.rnn import VanillaRNN
from rnnrepro.train import fastpath, loop, palindrome, text

FAST = dict(eval_size=200)
CPU = Execution(device="cpu", threads=1)


# --- impl resolution, fallback, determinism -------------------------------------------------------
def test_impl_values_and_auto_resolution():
    cpu = torch.device("cpu")
    assert Execution().impl == "auto"
    assert fastpath.resolve_impl("rnn", "auto", cpu) == "bptt"
    assert fastpath.resolve_impl("lstm", "auto", cpu) == "fused"
    for impl in ("fused", "loop", "bptt"):
        assert fastpath.resolve_impl("lstm", impl, cpu) == impl
    assert fastpath.resolve_impl("rnn", "graph", cpu) == "bptt"
    assert palindrome.PalindromeTask(PalindromeSpec(**FAST), cpu, "loop").impl == "loop"
    corpus = Corpus("abcdefghij" * 100)
    assert text.TextTask(TextSpec(hidden=8, seq_length=5), cpu, corpus).impl == "fused"
    assert text.TextTask(TextSpec(hidden=8, seq_length=5), cpu, corpus, "graph").impl == "fused"


def test_graph_impl_falls_back_on_cpu_to_the_same_run(tmp_path):
    spec = dict(model="rnn", input_length=5, steps=60, eval_every=30, **FAST)
    graph = Execution(device="cpu", impl="graph")
    palindrome.train_palindrome(PalindromeSpec(**spec), tmp_path / "graph", graph)
    palindrome.train_palindrome(PalindromeSpec(**spec), tmp_path / "auto", CPU)
    for name in ("metrics.csv", "eval.csv"):
        assert (tmp_path / "graph" / name).read_bytes() == (tmp_path / "auto" / name).read_bytes()
    task = palindrome.PalindromeTask(PalindromeSpec(**spec), torch.device("cpu"))
    task.impl = "graph"
    opt = fastpath.make_optimizer(PalindromeSpec(**spec), list(task.model.parameters()))
    with pytest.raises(RuntimeError, match="needs CUDA"):
        loop.make_step(task, opt, list(task.model.parameters()), PalindromeSpec(**spec))


@pytest.mark.parametrize("model", ["rnn", "lstm"])
@pytest.mark.parametrize("impl", ["bptt", "fused"])
def test_every_cpu_path_is_deterministic_and_learns(model, impl, tmp_path):
    spec = PalindromeSpec(model=model, optimizer="adam", input_length=3, steps=150,
                          eval_every=150, **FAST)
    execution = Execution(device="cpu", impl=impl)
    a = palindrome.train_palindrome(spec, tmp_path / "a", execution)
    palindrome.train_palindrome(spec, tmp_path / "b", execution)
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == (tmp_path / "b" / "metrics.csv").read_bytes()
    first = float((tmp_path / "a" / "eval.csv").read_text().splitlines()[1].split(",")[1])
    assert a["eval_final"]["loss"] < 0.8 * first


# --- evaluation in blocks --------------------------------------------------------------------------
def _evaluation_task(kind):
    from rnnrepro.config.kinds import PhasedSpec
    from rnnrepro.train.phased import PhasedTask
    from rnnrepro.train.stack import StackedPalindromeTask

    cpu, few = torch.device("cpu"), dict(eval_size=1300, input_length=6)
    if kind == "phased":
        return PhasedTask(PhasedSpec(**few), cpu)
    if kind == "stack":
        return StackedPalindromeTask([PalindromeSpec(model="lstm", seed=s, **few) for s in (0, 1)], cpu)
    return palindrome.PalindromeTask(PalindromeSpec(model=kind, **few), cpu)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "phased", "stack"])
def test_an_evaluation_in_blocks_is_the_evaluation_in_one_pass(kind, monkeypatch):
    """On CPU the held-out forward runs FORWARD_ROWS sequences at a time, and its sums are
    still taken per EVAL_CHUNK: the same rows as one forward per EVAL_CHUNK, to the bit
    wherever each sequence's logits do not depend on the sequences beside it (on the CPUs
    measured), else within float rounding. Blocks of 384 cut the chunks of 1000 unevenly."""
    task = _evaluation_task(kind)
    monkeypatch.setattr(palindrome, "EVAL_CHUNK", 1000)
    monkeypatch.setattr(palindrome, "FORWARD_ROWS", 384)
    forward, sizes = task.forward, []
    dim = 1 if kind == "stack" else 0

    def counted(x):
        sizes.append(x.shape[dim])
        return forward(x)

    monkeypatch.setattr(task, "forward", counted)
    blocks = task.evaluate()
    assert sizes == [384, 384, 232, 300]
    monkeypatch.setattr(palindrome, "FORWARD_ROWS", 10**9)
    whole = task.evaluate()
    assert sizes[4:] == [1000, 300]
    x = task.test[0] if kind != "stack" else task.test[0].expand(task.S, *task.test[0].shape)
    with torch.no_grad():  # does this CPU give each sequence the same logits in either shape?
        by_row = all(torch.equal(torch.cat([forward(p) for p in chunk.split(384, dim)], dim),
                                 forward(chunk)) for chunk in x.split(1000, dim))
    assert len(blocks) == len(whole) == task.S
    for b, w in zip(blocks, whole):
        assert set(b) == set(w)
        if by_row:
            assert b == w
        else:  # a near-tie may flip a sequence's prediction (and its copies in the set)
            assert b["loss"] == pytest.approx(w["loss"], rel=1e-6)
            assert abs(b["accuracy"] - w["accuracy"]) <= 3 / 1300
            assert {k: b[k] for k in b if k not in ("loss", "accuracy")} == \
                   {k: w[k] for k in w if k not in ("loss", "accuracy")}


# --- the optimizer step without torch's wrapper -----------------------------------------------------
@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_optimizer_step_is_torchs_step(optimizer):
    spec = PalindromeSpec(optimizer=optimizer, momentum=0.5 if optimizer != "adam" else 0.0)
    models = []
    for step in (lambda o: o.step(), fastpath.optimizer_step):
        torch.manual_seed(7)
        model = VanillaRNN(8)
        opt = fastpath.make_optimizer(spec, list(model.parameters()))
        x, y = palindrome_batch(16, 5, torch.Generator().manual_seed(8))
        for _ in range(5):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            step(opt)
        models.append(model)
    for p, q in zip(*(m.parameters() for m in models)):
        assert torch.equal(p, q)


def test_a_training_job_does_not_import_dynamo(tmp_path):
    code = ("import sys; from rnnrepro.config.spec import PalindromeSpec; "
            "from rnnrepro.train.palindrome import train_palindrome; "
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
            params = [fastpath.flat_parameters(params)]
        opt = fastpath.make_optimizer(spec, params)
        gen = torch.Generator().manual_seed(10)
        for _ in range(6):
            x, y = palindrome_batch(16, 5, gen)
            fastpath.zero_grads(params)
            F.cross_entropy(model.forward_bptt(x), y).backward()
            norms.append(torch.nn.utils.clip_grad_norm_(params, spec.max_norm).item())
            fastpath.optimizer_step(opt)
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
    run = loop.prepare([spec], lambda d: palindrome.PalindromeTask(spec, d, "bptt"), CPU)
    step = loop.make_step(run.task, run.opt, run.params, spec)
    for _ in range(5):
        step(run.gens)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step(run.gens)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20 < 100
