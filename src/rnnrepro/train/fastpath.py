"""The speed machinery of the training step, and the one module that reaches into torch's
private API (torch._disable_dynamo, an optimizer's unwrapped step, glibc's allocator): each
use says what it saves, measured in benchmarks/README.md, and how it falls back where torch
or the C library is not what it expects. None of it changes a result: the tests compare
each fast path with the plain one.
"""

import inspect
import logging

import torch

log = logging.getLogger("rnnrepro")


def _skip_dynamo_import():
    """Spare every job about 1.4 s (more than importing torch): torch wraps the Optimizer
    methods that __init__ calls with `torch._disable_dynamo`, which imports torch._dynamo on
    the first call only to mark them as not to be compiled. Nothing here is compiled, so
    mark them done before that. Skipped if dynamo is already imported, or if torch's wrapper
    is not the one this expects (then torch imports dynamo as usual)."""
    import sys

    if "torch._dynamo" in sys.modules:
        return
    try:
        probe = torch._disable_dynamo(lambda: None).__code__
    except AttributeError:
        return
    for cls in (torch.optim.Optimizer,):
        for fn in vars(cls).values():
            inner = getattr(fn, "__wrapped__", None)
            if getattr(fn, "__code__", None) is probe and inner is not None:
                setattr(inner, "__dynamo_disable", inner)


def keep_freed_memory():
    """Let freed memory stay in this process instead of going back to the OS.

    glibc serves blocks above a size threshold (128 KiB at first) with fresh mmap'd pages
    and unmaps them on free, so the activations a training step allocates (a few MB) page
    fault and get zeroed anew every step; measured here that cost the hand-written LSTM step
    a fifth of its time and the course baseline's text step a quarter. Raising the mmap
    threshold to its maximum (32 MiB) and the trim threshold above it keeps such blocks on
    the heap for the next step. No effect on results; a no-op where glibc's `mallopt` is
    missing. Returns whether it applied.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20) and mallopt(M_TRIM_THRESHOLD, 256 << 20))


def optimizer_step(opt):
    """`opt.step()`, minus the import of torch._dynamo (about 1.3 s) that torch's step wrapper
    does on the first call, for a graph break that matters only under torch.compile. While
    torch._dynamo is not loaded, this calls the unwrapped step under no_grad (what the
    wrapper does, for a non-differentiable optimizer; no step hooks are used here) and
    notes the call for an LR scheduler; otherwise it calls `opt.step()`. Same arithmetic."""
    import sys

    if "torch._dynamo" in sys.modules or opt.defaults.get("differentiable"):
        return opt.step()
    with torch.no_grad():
        inspect.unwrap(type(opt).step)(opt)
    opt._opt_called = True


def flat_parameters(params, lead=0):
    """One buffer for all of `params` and one for their gradients: each parameter and its
    .grad become views into them, and the single flat Parameter returned is what the
    optimizer and the gradient clipping see. They then run a few ops on one tensor instead
    of a few per parameter: on CPU about a tenth of the vanilla RNN's step, measured here.
    `prepare` uses it where it measured faster: the hand-written path (impl bptt) on CPU.
    The optimizers' arithmetic is elementwise, so the update is the same to the bit; only
    when the clipping bites may its coefficient differ in the last bit (the norm is summed in
    another order). Tests check both. The gradient buffer is zeroed, never dropped
    (`zero_grads`): backward accumulates into the views. With `lead` > 0 the parameters are
    stacks of runs sharing their first `lead` dimensions, and the buffers keep those
    dimensions: (*lead, P), each run's parameters in one row (stack.py's batched runs)."""
    flat = torch.nn.Parameter(torch.cat([p.detach().flatten(lead) for p in params], dim=-1))
    flat.grad = torch.zeros_like(flat)
    flat.flat_views = True
    offset = 0
    for p in params:
        n = p.shape[lead:].numel()
        p.data = flat.data[..., offset:offset + n].view_as(p)
        p.grad = flat.grad[..., offset:offset + n].view_as(p)
        offset += n
    return flat


def zero_grads(params):
    for p in params:
        if getattr(p, "flat_views", False):
            p.grad.zero_()
        else:
            p.grad = None


def make_optimizer(spec, params, capturable=False):
    """`capturable` keeps the optimizer's step counters on the device (a CUDA graph needs it)."""
    _skip_dynamo_import()
    extra = {"capturable": True} if capturable else {}
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, **extra)
    if spec.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=spec.lr, momentum=spec.momentum, **extra)
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum)


class GraphStep:
    """The step captured in one CUDA graph and replayed: one run's fused step (palindrome,
    phased, frequency or text), or a stack's batched step.

    A fixed-shape step is a few hundred tiny kernels; replaying them as one graph removes
    the launch cost that bounds these models on a GPU. The batches are still drawn eagerly
    from the runs' generators (so the data are those of the eager step) and copied into the
    graph's static inputs (a batch is a tensor, or a tuple of them: the frequency task's
    values, times and mask); loss, accuracy and gradient norm come out in a static (S, 3)
    tensor (valid until the next call, and copied out by `fit_unit` before it). Warm-up steps
    (needed before capture) are undone: parameters and optimizer state are put back as
    they were.
    """

    WARMUP = 3

    def __init__(self, task, opt, params, spec):
        if task.device.type != "cuda":
            raise RuntimeError("GraphStep needs CUDA")
        self.task, self.opt, self.params, self.spec = task, opt, params, spec
        shapes = [torch.Generator(device=task.device).manual_seed(0)] * task.S
        x, y = task.draw(shapes)  # shapes only
        self.x, self.y = _static(x), y.clone()
        saved_params = [p.detach().clone() for p in params]
        saved_state = {p: {k: v.clone() if torch.is_tensor(v) else v for k, v in st.items()}
                       for p, st in opt.state.items()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.WARMUP):
                zero_grads(params)
                self._body()
        torch.cuda.current_stream().wait_stream(side)
        with torch.no_grad():
            for p, v in zip(params, saved_params):
                p.copy_(v)
            for p, st in opt.state.items():
                old = saved_state.get(p, {})
                for k, v in st.items():
                    if torch.is_tensor(v):  # state the warm-up created starts from zero
                        v.copy_(old[k]) if k in old else v.zero_()
                    elif k in old:
                        st[k] = old[k]
        zero_grads(params)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = self._body()

    def _body(self):
        return self.task.update(self.opt, self.params, self.spec.max_norm, self.x, self.y,
                                foreach=True)

    def __call__(self, gens):
        x, y = self.task.draw(gens)
        for static, fresh in zip(_tensors(self.x), _tensors(x)):
            static.copy_(fresh)
        self.y.copy_(y)
        self.graph.replay()
        return self.out


def _tensors(x):
    return x if isinstance(x, tuple) else (x,)


def _static(x):
    """A copy of a batch (a tensor or a tuple of them) for a graph's inputs."""
    return tuple(t.clone() for t in x) if isinstance(x, tuple) else x.clone()


# What `impl auto` runs, per device and model: the fastest path `rnnrepro bench` measured
# (benchmarks/README.md, "impl auto"); on CUDA one cuDNN kernel beats any per-step loop.
AUTO_IMPL = {("cpu", "rnn"): "bptt", ("cpu", "lstm"): "fused"}


# The models with a hand-written backward pass (models/bptt.py); the others take their fast
# path (fused) where impl bptt is asked for.
BPTT_MODELS = ("rnn", "lstm")


def resolve_impl(model, impl, device):
    """The path a run of `model` (rnn, lstm, phased, or frequency: the frequency task's
    models) takes on `device` for the execution's `impl`: fused, loop, bptt or graph."""
    if impl == "bptt" and model not in BPTT_MODELS:
        impl = "fused"
    if impl == "graph" and device.type != "cuda":
        log.info("impl graph needs CUDA; on %s the run takes impl auto", device.type)
        impl = "auto"
    if impl == "auto":
        impl = AUTO_IMPL.get((device.type, model), "fused")
    return impl
