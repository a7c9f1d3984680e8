"""The recurrence with a hand-written backward pass (`impl bptt`), kept apart from the
models so that models/rnn.py and models/lstm.py read as the equations. Same parameters, same
function; tests/test_bptt.py checks values and gradients against the reference loop (and runs
gradcheck).
"""

import torch

# --- impl bptt: the recurrence with a hand-written backward pass ----------------------------------
#
# On CPU, torch's fused RNN kernels run these small models well below the machine's matmul
# rate. This path keeps the same parameters and computes the same function, with:
#   - one matmul per time step forward and one backward (none at t = 0, where h_0 = 0), and
#     the recurrent weight's gradient as a single matmul over all steps;
#   - the gate derivatives for every step computed at once, vectorised over time;
#   - tanh(x) as 2σ(2x) − 1, because torch's float tanh is about five times slower than its
#     sigmoid on CPU: the rows of the tanh block (the LSTM's g, the RNN's whole cell) enter
#     doubled (`tanh_scale`), so one sigmoid over all gates yields every gate;
#   - the whole layer (input terms, that scaling, the recurrence) as one autograd node.
# The zero initial state only (training never carries one). Tests check values and
# gradients against the reference loop and torch's own LSTM, and run gradcheck in float64.
# The scans and their backward passes also take a stack of S runs (a leading dimension after
# time: xz (T, S, B, G), W (S, G, H)), one batched matmul per step for all of them: what
# benchmarks/seed_batching.py measures.


def tanh_scale(gates, hidden, ref):
    """(gates·hidden,) ones with 2 on the block that goes through tanh."""
    s = ref.new_ones(gates, hidden)
    s[2 if gates == 4 else 0] = 2.0
    return s.view(-1)


def _tanh_from_doubled_(x):
    """In place: x <- 2σ(x) − 1 = tanh(x / 2)."""
    return x.sigmoid_().mul_(2).sub_(1)


def _addmm(bias, a, b, out=None):
    """bias + a @ b, for matrices or for stacks of them (a leading run dimension)."""
    return (torch.addmm if a.dim() == 2 else torch.baddbmm)(bias, a, b, out=out)


def _mm(a, b, out=None):
    """a @ b, for matrices or for stacks of them."""
    return (torch.mm if a.dim() == 2 else torch.bmm)(a, b, out=out)


def _lstm_scan(xz, W, save):
    """Forward of one LSTM layer from input terms xz (T, B, 4H) and recurrent weight W (4H, H),
    both with the g block doubled. Returns (hs, acts, c2s, tcs): h_t; the activations
    (i, f, σ_g, o) with g = 2σ_g − 1; 2c_t (kept doubled: then tanh c_t = 2σ(2c_t) − 1);
    tanh c_t. Without `save` only hs is kept for every step. For a stack of S runs:
    xz (T, S, B, 4H), W (S, 4H, H), and every output gains the S dimension after time."""
    T, *lead, G = xz.shape  # lead: (B,), or (S, B) for a stack
    H = G // 4
    WT = W.mT
    hs = xz.new_empty(T, *lead, H)
    acts = xz.new_empty(T if save else 1, *lead, G)
    tcs = xz.new_empty(T if save else 1, *lead, H)
    c2s = xz.new_empty(T if save else 2, *lead, H)
    for t in range(T):
        a, tc, c2 = acts[t if save else 0], tcs[t if save else 0], c2s[t if save else t % 2]
        if t:
            _addmm(xz[t], hs[t - 1], WT, a)
        else:
            a.copy_(xz[0])
        a.sigmoid_()
        i, f, sg, o = a.unflatten(-1, (4, H)).unbind(-2)
        if t:  # 2c_t = f ⊙ 2c_{t−1} + 2 i ⊙ (2σ_g − 1)
            torch.mul(f, c2s[t - 1 if save else (t - 1) % 2], out=c2).sub_(i, alpha=2)
        else:
            torch.mul(i, -2, out=c2)
        c2.addcmul_(i, sg, value=4)
        torch.sigmoid(c2, out=tc).mul_(2).sub_(1)
        torch.mul(o, tc, out=hs[t])
    return hs, acts, c2s, tcs


def _lstm_bptt(dH, W, acts, c2s, tcs, hs, last_only):
    """Backward of `_lstm_scan`: gradients for xz and W (in their doubled-g form), per run
    for a stack."""
    T, G = acts.shape[0], acts.shape[-1]
    H = G // 4
    i, f, sg, o = acts.unflatten(-1, (4, H)).unbind(-2)
    # dL/dc_t = dL/dh_t ⊙ o_t (1 − tanh² c_t) + dL/dc_{t+1} ⊙ f_{t+1}
    A = torch.addcmul(o, o, tcs * tcs, value=-1)
    # dz = (dc·g·i(1−i), dc·c_{t−1}·f(1−f), dc·i·2σ_g(1−σ_g), dh·tanh c·o(1−o)) with g doubled
    D = torch.empty_like(acts).unflatten(-1, (4, H))
    Di, Df, Dg, Do = D.unbind(-2)
    torch.addcmul(i, i, i, value=-1, out=Di).mul_(sg.mul(2).sub_(1))
    torch.addcmul(f, f, f, value=-1, out=Df)
    Df[0].zero_()
    Df[1:].mul_(c2s[:-1]).mul_(0.5)
    torch.addcmul(sg, sg, sg, value=-1, out=Dg).mul_(i).mul_(2)
    torch.addcmul(o, o, o, value=-1, out=Do).mul_(tcs)
    dz = torch.empty_like(acts)
    dz4 = dz.unflatten(-1, (4, H))
    dh = dH if last_only else dH[T - 1]
    dc = dh * A[T - 1]
    dhbuf = torch.empty_like(dh)
    for t in range(T - 1, -1, -1):
        if t < T - 1:
            if last_only:
                dh = _mm(dz[t + 1], W, dhbuf)
            else:
                dh = _addmm(dH[t], dz[t + 1], W, dhbuf)
            dc.mul_(f[t + 1]).addcmul_(dh, A[t])
        torch.mul(D[t, ..., :3, :], dc.unsqueeze(-2), out=dz4[t, ..., :3, :])
        torch.mul(Do[t], dh, out=dz4[t, ..., 3, :])
    return dz, _grad_W(dz, hs)


def _grad_W(dz, hs):
    """dL/dW = Σ_{t≥1} dz_tᵀ h_{t−1}: one matmul over all steps, computed as its transpose
    (hᵀ dz, measured about 10 % faster on CPU) and returned as a view. For a stack, per run
    (moving the run dimension first copies hs and dz)."""
    h, d = (a.movedim(0, -3).flatten(-3, -2) for a in (hs[:-1], dz[1:]))
    return _mm(h.mT, d).mT


def _rnn_scan(xz, W):
    """Forward of the vanilla RNN from xz (T, B, H) and W (H, H), both doubled; or a stack,
    xz (T, S, B, H) and W (S, H, H)."""
    T = xz.shape[0]
    WT = W.mT
    hs = torch.empty_like(xz)
    _tanh_from_doubled_(hs[0].copy_(xz[0]))
    for t in range(1, T):
        _tanh_from_doubled_(_addmm(xz[t], hs[t - 1], WT, hs[t]))
    return hs


def _rnn_bptt(dH, W, hs, last_only):
    """Backward of `_rnn_scan`: gradients for xz and W (doubled), per run for a stack."""
    T = hs.shape[0]
    D = torch.addcmul(hs.new_full((), 0.5), hs, hs, value=-0.5)  # d tanh(z/2) / dz
    dz = torch.empty_like(hs)
    for t in range(T - 1, -1, -1):
        if t == T - 1:
            dh = dH if last_only else dH[t]
        elif last_only:
            dh = _mm(dz[t + 1], W)
        else:
            dh = _addmm(dH[t], dz[t + 1], W)
        torch.mul(dh, D[t], out=dz[t])
    return dz, _grad_W(dz, hs)


def _input_terms(x, W_x, b, s):
    """xz (T, B, G) = s ⊙ (W_x x_t + b): floats x (T, B, d) are dense inputs (d = 1: the
    palindromes' scalar digit); integer x (T, B) are ids of one-hot inputs, whose product
    with W_x is a lookup of its columns. For a stack of S runs: x (T, S, B, d) or ids
    (T, S, B), W_x (S, G, d), b (S, G); xz (T, S, B, G)."""
    if W_x.dim() == 3:
        return _stack_input_terms(x, W_x, b, s)
    if x.is_floating_point():
        xz = torch.addmm(b * s, x.flatten(0, 1), (W_x * s.unsqueeze(1)).t())
        return xz.view(*x.shape[:2], -1)
    return torch.embedding((W_x.t() + b) * s, x)


def _stack_input_terms(x, W_x, b, s):
    if x.is_floating_point():  # (T, S, B, d) @ (S, d, G), broadcast over time
        return torch.matmul(x, (W_x * s.unsqueeze(1)).mT).add_((b * s).unsqueeze(1))
    S, d = W_x.shape[0], W_x.shape[2]
    table = ((W_x.mT + b.unsqueeze(1)) * s).flatten(0, 1)  # run r's rows at r·d ...
    return torch.embedding(table, x + _run_offsets(S, d, x))


def _run_offsets(S, d, x):
    return (torch.arange(S, device=x.device) * d).view(S, 1)


def _input_grads(x, dz, W_x, s, needs_dx):
    """dL/dx (dense inputs that need it, else None), dL/dW_x and dL/db from dL/dxz (per run
    for a stack)."""
    if W_x.dim() == 3:
        return _stack_input_grads(x, dz, W_x, s, needs_dx)
    dz = dz.flatten(0, 1)
    dx = None
    if x.is_floating_point():
        dW_x = torch.mm(dz.t(), x.flatten(0, 1))
        if needs_dx:
            dx = torch.mm(dz, W_x * s.unsqueeze(1)).view_as(x)
        db = dz.sum(0)
    else:
        table = dz.new_zeros(W_x.shape[1], dz.shape[1]).index_add_(0, x.reshape(-1), dz)
        dW_x, db = table.t(), table.sum(0)
    return dx, dW_x.mul_(s.unsqueeze(1)), db.mul_(s)


def _stack_input_grads(x, dz, W_x, s, needs_dx):
    dx = None
    if x.is_floating_point():
        dW_x = torch.einsum("tsbg,tsbd->sgd", dz, x)
        if needs_dx:
            dx = torch.matmul(dz, W_x * s.unsqueeze(1))
        db = dz.sum((0, 2))
    else:
        S, G, d = W_x.shape
        table = dz.new_zeros(S * d, G).index_add_(0, (x + _run_offsets(S, d, x)).reshape(-1),
                                                   dz.reshape(-1, G)).view(S, d, G)
        dW_x, db = table.mT, table.sum(1)
    return dx, dW_x.mul_(s.unsqueeze(1)), db.mul_(s)


def _scaled_inputs(gates, x, W_x, b, W_h):
    """The tanh-block scale s, the scaled recurrent weight and the scaled input terms."""
    s = tanh_scale(gates, W_h.shape[-1], W_h)
    return s, W_h * s.unsqueeze(1), _input_terms(x, W_x, b, s)


class _Layer(torch.autograd.Function):
    """The whole layer, input terms included, as one autograd node: the models pass their
    parameters as the equations name them, and the scaling of the tanh block, the input
    product and the recurrence stay in here (no faster than separate autograd ops, measured;
    the same numbers to the bit)."""

    @staticmethod
    def forward(ctx, x, W_x, b, W_h, gates, last_only):
        s, W, xz = _scaled_inputs(gates, x, W_x, b, W_h)
        if gates == 4:
            hs, acts, c2s, tcs = _lstm_scan(xz, W, save=True)
            ctx.save_for_backward(x, W_x, s, W, hs, acts, c2s, tcs)
        else:
            hs = _rnn_scan(xz, W)
            ctx.save_for_backward(x, W_x, s, W, hs)
        ctx.gates, ctx.last_only = gates, last_only
        return hs[-1].clone() if last_only else hs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dH):
        x, W_x, s, W, hs, *saved = ctx.saved_tensors
        dH = dH.contiguous()
        if ctx.gates == 4:
            acts, c2s, tcs = saved
            dz, dW = _lstm_bptt(dH, W, acts, c2s, tcs, hs, ctx.last_only)
        else:
            dz, dW = _rnn_bptt(dH, W, hs, ctx.last_only)
        dx, dW_x, db = _input_grads(x, dz, W_x, s, ctx.needs_input_grad[0])
        return dx, dW_x, db, dW * s.unsqueeze(1), None, None


def layer(gates, x, W_x, b, W_h, last_only=False):
    """Hidden states of an LSTM (gates=4) or vanilla RNN (gates=1) layer from a zero state,
    the equations of models/rnn.py and models/lstm.py with the parameters as they are there:
    W_x (gates·H × d), b (gates·H), W_h (gates·H × H). x is time-major: floats (T, B, d)
    for dense inputs, integer ids (T, B) for one-hot inputs (d = the vocabulary).
    Returns h_1..h_T (T, B, H), or only h_T with `last_only`. Without gradients it keeps no
    activations. A stack of S runs, one batched matmul per step for all: parameters with a
    leading run dimension (W_x (S, G, d), b (S, G), W_h (S, G, H)), x (T, S, B, d) or ids
    (T, S, B); h gains the S dimension after time.
    """
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in (x, W_x, b, W_h))):
        with torch.no_grad():
            _, W, xz = _scaled_inputs(gates, x, W_x, b, W_h)
            hs = _lstm_scan(xz, W, save=False)[0] if gates == 4 else _rnn_scan(xz, W)
        return hs[-1] if last_only else hs
    return _Layer.apply(x, W_x, b, W_h, gates, last_only)
