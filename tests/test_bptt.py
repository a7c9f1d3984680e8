"""The hand-written recurrence (`impl bptt`, bptt.py) against the equations and torch's
LSTM, values and gradients, gradcheck in float64, and stacks of runs."""


import pytest
import torch
import torch.nn.functional as F

from rnnrepro.config.spec import Execution
from rnnrepro.data.palindromes import palindrome_batch
from rnnrepro.models import bptt
from rnnrepro.models.bptt import layer
from rnnrepro.models.lstm import LSTM
from rnnrepro.models.rnn import VanillaRNN

FAST = dict(eval_size=200)
CPU = Execution(device="cpu", threads=1)


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


