"""Training jobs: one run spec in, one run directory out.

A run directory holds metrics.csv (step, loss, batch accuracy, gradient norm before
clipping: deterministic on CPU), timing.csv (elapsed seconds and examples/s, which are
not), eval.csv (held-out metrics), summary.json (written last: the run is complete when
it exists) and model.pt; text runs add samples.jsonl and checkpoints/step_NNNNNN.pt.
While a run is going, resume.pt holds everything needed to continue it exactly.
"""

import hashlib
import inspect
import logging
import math
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from . import data as D
from .io import describe_device, torch_save, versions, write_csv, write_json, write_jsonl
from .models import (INIT_DOC, PALINDROME_MODELS, TextGenerationModel, count_parameters,
                     lstm_cell_formula)
from .progress import progress
from .sampling import samples_at

log = logging.getLogger("rnnrepro")

FLUSH = 50  # steps between transfers of the step metrics from the device
METRICS = ("step", "loss", "accuracy", "grad_norm")
TIMING = ("step", "elapsed_s", "examples_per_s")


class Diverged(RuntimeError):
    pass


def resolve_device(name):
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but CUDA is not available here")
    return torch.device(name)


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
    dimensions: (*lead, P), each run's parameters in one row (benchmarks/seed_batching.py)."""
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


# What `impl auto` runs, per device and model: the fastest path `rnnrepro bench` measured.
# On CPU (2-core AMD EPYC, 1 and 2 threads) torch's fused LSTM kernel beat the hand-written
# recurrence for the palindrome LSTM (115 vs 107 steps/s at one thread), and the
# hand-written recurrence beat torch's RNN kernel (a loop of small ops on CPU) for the
# vanilla RNN (388 vs 309). On CUDA one cuDNN kernel beats any per-step Python loop.
AUTO_IMPL = {("cpu", "rnn"): "bptt", ("cpu", "lstm"): "fused"}


def resolve_impl(spec, device):
    """The model path a palindrome run takes on `device`: fused, loop, bptt or graph."""
    impl = spec.impl
    if impl == "graph" and device.type != "cuda":
        log.info("impl graph needs CUDA; on %s the run takes impl auto", device.type)
        impl = "auto"
    if impl == "auto":
        impl = AUTO_IMPL.get((device.type, spec.model), "fused")
    return impl


def derived_seed(*parts):
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:6], "big")


class PalindromeTask:
    eval_columns = ("step", "loss", "accuracy")

    def __init__(self, spec, device):
        self.spec, self.device = spec, device
        cls = PALINDROME_MODELS[spec.model]
        self.model = cls(spec.hidden, onehot=spec.input_encoding == "onehot",
                         init=spec.init, init_std=spec.init_std).to(device)
        self.test = [t.to(device) for t in D.palindrome_test_set(spec.input_length, spec.eval_size)]
        self.impl = resolve_impl(spec, device)
        model = self.model
        # graph: the fused path, captured with the rest of the step (GraphStep)
        self.forward = {"fused": partial(model, fast=True), "graph": partial(model, fast=True),
                        "loop": partial(model, fast=False), "bptt": model.forward_bptt}[self.impl]

    def batch(self, gen):
        return D.palindrome_batch(self.spec.batch, self.spec.input_length, gen, self.device)

    def loss(self, x, y):
        logits = self.forward(x)
        return F.cross_entropy(logits, y), (logits.argmax(-1) == y).float().mean()

    @torch.no_grad()
    def evaluate(self):
        self.model.eval()
        loss = correct = 0.0
        for x, y in zip(*(t.split(4096) for t in self.test)):
            logits = self.forward(x)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(-1) == y).sum().item()
        self.model.train()
        n = len(self.test[1])
        return {"loss": loss / n, "accuracy": correct / n}

    def scheduler(self, opt):
        return None

    def wants(self, step):
        return False

    def after_step(self, step, state, out):
        pass

    def metadata(self):
        m, s = self.model, self.spec
        d = m.W_x.shape[1]
        return {
            "init": {"scheme": s.init, "std": s.init_std if s.init == "normal" else None,
                     "description": INIT_DOC[s.init]},
            "parameters": count_parameters(m),
            "cell_parameters": m.cell_parameters() if s.model == "lstm" else None,
            "cell_formula": lstm_cell_formula(s.hidden, d) if s.model == "lstm" else None,
            "input_dim": d,
        }

    def checkpoint_extra(self):
        return {"kind": "palindrome", "spec": self.spec.to_dict()}


class TextTask:
    eval_columns = ("step", "loss", "accuracy", "bpc")
    # torch's LSTM kernel on every device: a hand-written first layer (bptt.layer on the
    # one-hot ids) measured no faster on CPU once the allocator stopped page faulting, and
    # a hand-written second layer slower; so training runs the same `forward` as sampling.
    impl = "fused"

    def __init__(self, spec, device, corpus):
        corpus.check_length(spec.seq_length)
        self.spec, self.device, self.corpus = spec, device, corpus
        self.model = TextGenerationModel(len(corpus.vocab), spec.hidden, spec.layers,
                                         spec.dropout).to(device)
        self.data = corpus.data.to(device)
        self.val = [t.to(device) for t in corpus.validation(spec.seq_length)]
        self.sample_steps = set(spec.sample_steps())

    def batch(self, gen):
        s = self.spec
        return self.corpus.batch(s.batch, s.seq_length, gen, self.device, self.data)

    def loss(self, x, y):
        logits, _ = self.model(x)
        logits = logits / self.spec.temperature
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        return loss, (logits.argmax(-1) == y).float().mean()

    @torch.no_grad()
    def evaluate(self):
        self.model.eval()
        loss = correct = 0.0
        for x, y in zip(*(t.split(512) for t in self.val)):
            logits = self.model(x)[0] / self.spec.temperature
            loss += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
            correct += (logits.argmax(-1) == y).sum().item()
        self.model.train()
        n = self.val[1].numel()
        return {"loss": loss / n, "accuracy": correct / n, "bpc": loss / n / math.log(2)}

    def scheduler(self, opt):
        if self.spec.lr_decay < 1:
            return torch.optim.lr_scheduler.StepLR(opt, self.spec.lr_step, self.spec.lr_decay)
        return None

    def wants(self, step):
        return step in self.sample_steps

    def after_step(self, step, state, out):
        """At a sample step: keep a checkpoint of the weights and record samples."""
        if step not in self.sample_steps:
            return
        s = self.spec
        torch_save(self.checkpoint_extra() | {"step": step, "model": self.model.state_dict()},
                   Path(out) / "checkpoints" / f"step_{step:06d}.pt")
        gen = torch.Generator(device=self.device).manual_seed(derived_seed(s.seed, "samples", step))
        first = torch.randint(len(self.corpus.vocab), (s.samples_per_step,), generator=gen,
                              device=self.device)
        state["samples"] += samples_at(self.model, self.corpus.vocab, first, s.sample_length,
                                       s.sampling_temperatures(), gen, step)

    def metadata(self):
        return {
            "init": {"scheme": "pytorch-default",
                     "description": "torch.nn.LSTM and nn.Linear defaults: U(-1/sqrt(n), 1/sqrt(n))"},
            "parameters": count_parameters(self.model),
            "corpus": self.corpus.stats(),
        }

    def checkpoint_extra(self):
        return {"kind": "text", "spec": self.spec.to_dict(), "vocab": self.corpus.vocab}


def train_palindrome(spec, out, **kw):
    return fit(spec, out, lambda device: PalindromeTask(spec, device), **kw)


def train_text(spec, corpus, out, **kw):
    corpus = corpus if isinstance(corpus, D.Corpus) else D.Corpus.from_file(corpus, spec.val_fraction)
    return fit(spec, out, lambda device: TextTask(spec, device, corpus), **kw)


def prepare(spec, make_task):
    """Device, threads, seeds, task (model and data), optimizer, scheduler and batch generator
    of a run, as `fit` sets them up (and `rnnrepro bench` times them)."""
    device = resolve_device(spec.device)
    keep_freed_memory()
    torch.set_num_threads(spec.threads)
    torch.manual_seed(spec.seed)
    task = make_task(device)
    params = [p for p in task.model.parameters() if p.requires_grad]
    # Measured on CPU jobs: RNN (impl bptt) 327-331 steps/s flat, 292-320 not; LSTM with
    # torch's kernel (impl fused) 85-86 flat, 88-90 not. On CUDA torch's optimizers already
    # batch the parameters into foreach kernels.
    if device.type == "cpu" and task.impl == "bptt":
        params = [flat_parameters(params)]
    opt = make_optimizer(spec, params, capturable=task.impl == "graph")
    return SimpleNamespace(device=device, task=task, model=task.model, params=params, opt=opt,
                           sched=task.scheduler(opt),
                           gen=torch.Generator(device=device).manual_seed(spec.seed))


def make_step(task, opt, params, spec, sched=None):
    """The training step, as `fit` runs it and `rnnrepro bench` times it.

    Returns step(gen, poison=False): draw a batch, loss, backward, clip the gradient norm,
    optimizer (and scheduler) step; it returns (loss, batch accuracy, gradient norm before
    clipping) as one tensor of 3 on the device, without waiting for it (no host sync).
    `poison` makes the loss NaN (the testing aid behind --inject-nan-at). With impl graph on
    CUDA the step is captured once and replayed (`GraphStep`).
    """
    if task.impl == "graph":
        return GraphStep(task, opt, params, spec)

    def step(gen, poison=False):
        x, y = task.batch(gen)
        loss, acc = task.loss(x, y)
        if poison:
            loss = loss * float("nan")
        zero_grads(params)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, spec.max_norm)
        optimizer_step(opt)
        if sched:
            sched.step()
        return torch.stack((loss.detach(), acc, grad_norm))

    return step


class GraphStep:
    """The palindrome step (fused model path) captured in one CUDA graph and replayed.

    A fixed-shape step is a few hundred tiny kernels; replaying them as one graph removes
    the launch cost that bounds these models on a GPU. The batch is still drawn eagerly
    from the run's generator (so the data are those of the eager step) and copied into the
    graph's static inputs; loss, accuracy and gradient norm come out in a static tensor of 3
    (valid until the next call, and copied out by `fit` before it). The loss is multiplied by
    a static scalar: 1, or NaN at an injected step. Warm-up steps (needed before capture)
    are undone: parameters and optimizer state are put back as they were.
    """

    WARMUP = 3

    def __init__(self, task, opt, params, spec):
        if task.device.type != "cuda":
            raise RuntimeError("GraphStep needs CUDA")
        self.task, self.opt, self.params, self.spec = task, opt, params, spec
        x, y = task.batch(torch.Generator(device=task.device).manual_seed(0))  # shapes only
        self.x, self.y = x.clone(), y.clone()
        self.poison = torch.ones((), device=task.device)
        saved_params = [p.detach().clone() for p in params]
        saved_state = {p: {k: v.clone() if torch.is_tensor(v) else v for k, v in st.items()}
                       for p, st in opt.state.items()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.WARMUP):
                opt.zero_grad(set_to_none=True)
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
        opt.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = self._body()

    def _body(self):
        loss, acc = self.task.loss(self.x, self.y)
        loss = loss * self.poison
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.spec.max_norm, foreach=True)
        optimizer_step(self.opt)
        return torch.stack((loss.detach(), acc, grad_norm))

    def __call__(self, gen, poison=False):
        x, y = self.task.batch(gen)
        self.x.copy_(x)
        self.y.copy_(y)
        if poison:
            self.poison.fill_(float("nan"))
        self.graph.replay()
        if poison:
            self.poison.fill_(1.0)
        return self.out


def fit(spec, out, make_task, inject_nan_at=None, stream=None):
    """Train to spec.steps, resuming from out/resume.pt if a previous attempt left one."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.tmp"):
        stale.unlink()
    run_id = spec.run_id()
    run = prepare(spec, make_task)
    device, task, model, params, opt, sched, gen = (
        run.device, run.task, run.model, run.params, run.opt, run.sched, run.gen)
    st = {"step": 0, "metrics": [], "evals": [], "timing": [], "samples": [], "elapsed": 0.0,
          "resumed_from": []}

    resume = out / "resume.pt"
    if resume.exists():
        ck = torch.load(resume, map_location=device, weights_only=False)
        if ck["run_id"] != run_id:
            raise RuntimeError(f"{resume} belongs to run {ck['run_id']}, not {run_id}: "
                               "delete it or use another output directory")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        if sched:
            sched.load_state_dict(ck["scheduler"])
        gen.set_state(ck["generator"].cpu() if device.type == "cpu" else ck["generator"])
        torch.set_rng_state(ck["cpu_rng"].cpu())
        if device.type == "cuda" and ck.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ck["cuda_rng"].cpu(), device)
        st = ck["state"]
        st["resumed_from"].append(st["step"])
        log.info("resuming %s from step %d (%s)", run_id, st["step"], resume)
    else:
        log.info("starting %s on %s", run_id, describe_device(device))

    def save_outputs():
        write_csv(out / "metrics.csv", st["metrics"], METRICS)
        write_csv(out / "eval.csv", st["evals"], task.eval_columns)
        write_csv(out / "timing.csv", st["timing"], TIMING)
        if st["samples"]:
            write_jsonl(out / "samples.jsonl", st["samples"])

    def evaluate(step):
        st["evals"].append({"step": step, **task.evaluate()})

    if not st["evals"]:
        evaluate(0)
    step, pending = st["step"], []
    buf = torch.zeros(FLUSH, 3, device=device)
    started = window = time.perf_counter()
    elapsed0, window_step = st["elapsed"], step
    model.train()
    train_step = make_step(task, opt, params, spec, sched)
    bar = progress(spec.steps, initial=step, desc=run_id, stream=stream)
    while step < spec.steps:
        buf[len(pending)] = train_step(gen, poison=inject_nan_at == step + 1)
        step += 1
        pending.append(step)
        boundary = (step == spec.steps or step % spec.eval_every == 0
                    or step % spec.checkpoint_every == 0 or task.wants(step))
        if len(pending) < FLUSH and not boundary:
            continue

        # Flush: one transfer from the device for the last <= FLUSH steps.
        for s, (l, a, g) in zip(pending, buf[: len(pending)].tolist()):
            if not math.isfinite(l):
                bar.close()
                raise Diverged(f"run {run_id}: loss is {l} at step {s}; "
                               f"the last checkpoint (if any) is kept in {out}")
            if s % spec.log_every == 0 or s == spec.steps:
                st["metrics"].append({"step": s, "loss": l, "accuracy": a, "grad_norm": g})
        now = time.perf_counter()
        st["elapsed"] = elapsed0 + now - started
        st["timing"].append({"step": step, "elapsed_s": st["elapsed"],
                             "examples_per_s": (step - window_step) * spec.batch / (now - window)})
        bar.set_postfix(loss=f"{st['metrics'][-1]['loss']:.3f}" if st["metrics"] else "-",
                        refresh=False)
        bar.update(len(pending))
        pending = []
        if step % spec.eval_every == 0 or step == spec.steps:
            evaluate(step)
        task.after_step(step, st, out)
        st["step"] = step
        if step % spec.checkpoint_every == 0 and step < spec.steps:
            save_outputs()
            torch_save({"run_id": run_id, "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict() if sched else None,
                        "generator": gen.get_state(), "cpu_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                        "state": st}, resume)
        window, window_step = time.perf_counter(), step
    bar.close()

    st["elapsed"] = elapsed0 + time.perf_counter() - started
    save_outputs()
    torch_save(task.checkpoint_extra() | {"step": step, "model": model.state_dict()}, out / "model.pt")
    summary = make_summary(spec, task, st, device)
    write_json(out / "summary.json", summary)
    resume.unlink(missing_ok=True)
    log.info("finished %s: %s", run_id, {k: summary[k] for k in ("eval_final", "wall_seconds")})
    return summary


def make_summary(spec, task, st, device):
    evals, metrics = st["evals"], st["metrics"]
    tail = metrics[-100:]
    converged = [e["step"] for e in evals if e["accuracy"] >= 0.99]
    rates = sorted(t["examples_per_s"] for t in st["timing"])
    return {
        "run_id": spec.run_id(),
        "kind": spec.kind,
        "spec": spec.to_dict(),
        **task.metadata(),
        "final_loss": sum(m["loss"] for m in tail) / len(tail),
        "final_batch_accuracy": sum(m["accuracy"] for m in tail) / len(tail),
        "final_window": len(tail),
        "eval_final": evals[-1],
        "eval_best": max(evals, key=lambda e: (e["accuracy"], -e["step"])),
        "steps_to_0.99": converged[0] if converged else None,
        "wall_seconds": st["elapsed"],
        "steps_per_second": spec.steps / st["elapsed"],
        "median_examples_per_s": rates[len(rates) // 2] if rates else None,
        "resumed_from": st["resumed_from"],
        "device": describe_device(device),
        "threads": spec.threads,
        **versions(),
    }
