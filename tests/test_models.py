"""The models compute exactly the equations of SPEC §2."""

import math

import pytest
import torch
import torch.nn.functional as F

from rnnrepro.models import count_parameters
from rnnrepro.models.lstm import LSTM
from rnnrepro.models.phased import PhasedLSTM, time_gate
from rnnrepro.models.recurrent import Recurrent, initialise
from rnnrepro.models.rnn import VanillaRNN
from rnnrepro.models.text import TextGenerationModel

B, T, N = 5, 7, 16


def digits(b=B, t=T, seed=0):
    return torch.randint(10, (b, t), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("onehot", [False, True])
def test_lstm_equals_torch_lstm_with_copied_weights(onehot):
    torch.manual_seed(0)
    model = LSTM(N, onehot=onehot)
    ref = torch.nn.LSTM(model.W_x.shape[1], N, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(model.W_x)
        ref.weight_hh_l0.copy_(model.W_h)
        ref.bias_ih_l0.copy_(model.b)
        ref.bias_hh_l0.zero_()
    x = digits()
    out, _ = ref(model.encode(x))
    hs = model.states(x)
    assert torch.stack(hs, 1).sub(out).abs().max() <= 1e-5


def test_lstm_cell_is_the_spec_equations_gate_by_gate():
    torch.manual_seed(1)
    model = LSTM(N)
    W_x, W_h, b = (t.detach().chunk(4) for t in (model.W_x, model.W_h, model.b))
    (W_ix, W_fx, W_gx, W_ox), (W_ih, W_fh, W_gh, W_oh), (b_i, b_f, b_g, b_o) = W_x, W_h, b
    x = digits()
    h = c = torch.zeros(B, N)
    for t in range(T):
        xt = x[:, t : t + 1].float()
        g = torch.tanh(xt @ W_gx.T + h @ W_gh.T + b_g)
        i = torch.sigmoid(xt @ W_ix.T + h @ W_ih.T + b_i)
        f = torch.sigmoid(xt @ W_fx.T + h @ W_fh.T + b_f)
        o = torch.sigmoid(xt @ W_ox.T + h @ W_oh.T + b_o)
        c = g * i + c * f
        h = torch.tanh(c) * o
    p = h @ model.W_p.detach().T + model.b_p.detach()
    assert torch.allclose(model(x, fast=False), p, atol=1e-6)
    assert torch.allclose(model(x, fast=True), p, atol=1e-5)


def test_rnn_equals_plain_loop_and_torch_rnn():
    torch.manual_seed(2)
    model = VanillaRNN(N)
    W_hx, W_hh, b_h = model.W_x.detach(), model.W_h.detach(), model.b.detach()
    x = digits()
    h = torch.zeros(B, N)
    for t in range(T):
        h = torch.tanh(x[:, t : t + 1].float() @ W_hx.T + h @ W_hh.T + b_h)
    p = h @ model.W_p.detach().T + model.b_p.detach()
    assert torch.allclose(model(x, fast=False), p, atol=1e-6)
    assert torch.allclose(model(x, fast=True), p, atol=1e-5)
    ref = torch.nn.RNN(1, N, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(W_hx), ref.weight_hh_l0.copy_(W_hh)
        ref.bias_ih_l0.copy_(b_h), ref.bias_hh_l0.zero_()
    assert torch.allclose(ref(model.encode(x))[0][:, -1], h, atol=1e-6)


@pytest.mark.parametrize("cls", [VanillaRNN, LSTM, PhasedLSTM])
def test_fused_and_reference_paths_have_the_same_gradients(cls):
    torch.manual_seed(3)
    model = cls(N)
    x, y = digits(), torch.randint(10, (B,))
    grads = []
    for fast in (True, False):
        model.zero_grad()
        F.cross_entropy(model(x, fast=fast), y).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for g_fast, g_ref in zip(*grads):
        assert torch.allclose(g_fast, g_ref, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("cls", [VanillaRNN, LSTM, PhasedLSTM])
@pytest.mark.parametrize("fast", [False, True])
def test_float64_gradcheck(cls, fast):
    torch.manual_seed(4)
    # the phased LSTM with every timing parameter learned: the gradient check covers tau, s, r_on
    model = cls(3, learn=PhasedLSTM.TIMING, r_on=0.5) if cls is PhasedLSTM else cls(3)
    model = model.double()
    x = digits(2, 4)
    names = [n for n, _ in model.named_parameters()]

    def f(*ps):
        return torch.func.functional_call(model, dict(zip(names, ps)), (x,), {"fast": fast})

    inputs = [p.detach().clone().requires_grad_() for p in model.parameters()]
    with torch.backends.mkldnn.flags(enabled=False):  # oneDNN's LSTM has no float64
        assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("n,d", [(1, 1), (4, 1), (128, 1), (128, 10), (7, 3)])
def test_lstm_cell_parameter_count_is_4_nd_n2_n(n, d):
    model = LSTM(n, classes=d, onehot=True) if d > 1 else LSTM(n)
    assert model.cell_parameters() == LSTM.cell_formula(n, d) == 4 * (n * d + n * n + n)
    assert count_parameters(model) == LSTM.cell_formula(n, d) + n * model.classes + model.classes


def test_initialisations():
    torch.manual_seed(5)
    n = 64
    m = LSTM(n, init="default")
    bound = 1 / n**0.5
    assert all(p.abs().max() <= bound for p in m.parameters())
    m = LSTM(n, init="normal", init_std=0.01)
    assert abs(m.W_h.std().item() - 0.01) < 1e-3 and m.b.abs().max() == 0
    m = LSTM(n, init="orthogonal")
    for block in m.W_h.detach().chunk(4):
        assert torch.allclose(block @ block.T, torch.eye(n), atol=1e-5)
    m = VanillaRNN(n, init="xavier")
    assert m.b.abs().max() == 0 and m.W_h.abs().max() <= (6 / (2 * n)) ** 0.5
    with pytest.raises(ValueError, match="init must be one of"):
        initialise(m, "zeros")


def test_time_gate_piecewise():
    tau, s, r_on, alpha = 10.0, 2.0, 0.2, 1e-3
    t = torch.tensor([2.0, 2.5, 3.0, 3.5, 4.0, 7.0, 12.0, 13.0])
    k = time_gate(t, tau, s, r_on, alpha)
    phi = ((t - s) % tau) / tau
    expected = torch.where(phi < r_on / 2, 2 * phi / r_on,
                           torch.where(phi < r_on, 2 - 2 * phi / r_on, alpha * phi))
    assert torch.allclose(k, expected)
    assert torch.allclose(k[[0, 2, 4, 6, 7]], torch.tensor([0.0, 1.0, alpha * 0.2, 0.0, 1.0]))
    assert k[5] == pytest.approx(alpha * 0.5)
    # vectorised over units: one τ and s per unit broadcast against the time
    taus = torch.tensor([4.0, 8.0])
    assert time_gate(torch.arange(8.0).unsqueeze(-1), taus, 0.0, 0.5).shape == (8, 2)


def test_phased_lstm_reduces_to_lstm_when_open_and_holds_when_closed():
    torch.manual_seed(6)
    model = PhasedLSTM(N, r_on=1.0, alpha=0.0).eval()
    plain = LSTM(N)
    plain.load_state_dict({k: v for k, v in model.state_dict().items()
                           if k not in ("log_tau", "s", "r_on_fixed")})
    with torch.no_grad():
        model.log_tau.fill_(0.0), model.s.zero_()
    x = digits()
    open_times = torch.arange(T).float().expand(B, -1) + 0.5  # φ = 0.5 = r_on/2: k = 1
    assert torch.allclose(model(x, open_times), plain(x, fast=False), atol=1e-6)
    with torch.no_grad():
        model.log_tau.fill_(math.log(10.0))
        model.s.zero_()
        model.r_on_fixed.fill_(0.05)
    closed = torch.full((B, T), 5.0)  # φ = 0.5 > r_on: k = 0, h stays h_0 = 0
    assert torch.stack(model.states(x, closed)).abs().max() == 0


def test_phased_lstm_learns_what_it_is_told_and_keeps_its_timing_in_range():
    """tau is learned as log tau and r_on as its logit: no optimizer step can make tau <= 0
    (an anti-update) or take r_on out of (0, 1); what `learn` leaves out does not move."""
    torch.manual_seed(8)
    frozen = PhasedLSTM(N)
    assert frozen.log_tau.requires_grad and frozen.s.requires_grad and "r_on_fixed" in dict(
        frozen.named_buffers())
    fixed_s = PhasedLSTM(N, learn=("tau",))
    assert not fixed_s.s.requires_grad
    model = PhasedLSTM(N, learn=PhasedLSTM.TIMING)
    assert 1 <= model.log_tau.min() and model.log_tau.max() <= 3  # tau = e^U(1, 3)
    assert (model.s >= 0).all() and (model.s < model.tau).all()
    opt = torch.optim.SGD(model.parameters(), lr=1e3)
    x, y = digits(), torch.randint(10, (B,))
    for sign in (1.0, -1.0):
        opt.zero_grad()
        (sign * F.cross_entropy(model(x), y) + sign * 1e3 * (model.tau.sum() + model.r_on)).backward()
        opt.step()
        assert (model.tau > 0).all() and 0 < model.r_on < 1
    with pytest.raises(ValueError, match="learn takes tau, s, r_on"):
        PhasedLSTM(N, learn=("period",))
    with pytest.raises(ValueError, match="r_on must be in"):
        PhasedLSTM(N, r_on=1.5)


def test_phased_lstm_leaks_while_training_only_and_reads_the_inputs_times():
    torch.manual_seed(9)
    model = PhasedLSTM(N, alpha=0.5)
    times = torch.rand(B, T).sort(dim=1).values * 20  # asynchronous, sorted, in a window
    closed = model.gate(times)
    model.eval()
    assert (model.gate(times) <= closed).all() and (model.gate(times) < closed).any()
    x = digits()
    assert torch.allclose(model(x, times), model(x, times, fast=False), atol=1e-6)
    assert not torch.allclose(model(x, times), model(x), atol=1e-4)  # other times, other gate


def test_text_model_carries_state_across_chunks():
    torch.manual_seed(7)
    model = TextGenerationModel(11, hidden=8).eval()
    idx = torch.randint(11, (3, 90))
    whole, (h, c) = model(idx)
    state, parts = None, []
    for chunk in idx.split(30, dim=1):
        out, state = model(chunk, state)
        parts.append(out)
    assert torch.allclose(torch.cat(parts, 1), whole, atol=1e-6)
    assert torch.allclose(state[0], h, atol=1e-6) and torch.allclose(state[1], c, atol=1e-6)
    assert h.shape == (2, 3, 8)


def test_every_palindrome_model_a_spec_can_name_and_no_other():
    from rnnrepro.config.spec import MODELS
    from rnnrepro.models import palindrome_model

    for name in MODELS:
        assert issubclass(palindrome_model(name), Recurrent)
    with pytest.raises(ModuleNotFoundError):
        palindrome_model("gru")


def test_health_measures_saturation_and_the_recurrent_spectral_norm():
    from rnnrepro.models.recurrent import SATURATED, health
    digits = torch.randint(10, (50, 8))
    rnn = VanillaRNN(16)
    with torch.no_grad():
        rnn.W_h.copy_(3 * torch.eye(16))
        rnn.b.fill_(5.0)  # every unit driven to tanh(≥5) from the first step
    h = health(rnn, digits)
    assert h["saturation"] == 1.0 and h["w_h_norm"] == pytest.approx(3.0)
    with torch.no_grad():
        rnn.W_h.zero_(), rnn.b.zero_(), rnn.W_x.fill_(1e-3)
    assert health(rnn, digits) == {"saturation": 0.0, "w_h_norm": 0.0}
    with torch.no_grad():  # a unit exactly at the threshold counts; one just below does not
        rnn.W_x.zero_()
        rnn.b[:8] = math.atanh(SATURATED) + 1e-4
        rnn.b[8:] = math.atanh(SATURATED) - 1e-3
    assert health(rnn, digits)["saturation"] == pytest.approx(0.5)
