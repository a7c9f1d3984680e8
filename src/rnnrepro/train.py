"""Training jobs: one run spec in, one run directory out.

A run directory holds metrics.csv (step, loss, batch accuracy, gradient norm before
clipping: deterministic on CPU), timing.csv (elapsed seconds and examples/s, which are
not), eval.csv (held-out metrics), summary.json (written last: the run is complete when
it exists) and model.pt; text runs add samples.jsonl and checkpoints/step_NNNNNN.pt.
While a run is going, resume.pt holds everything needed to continue it exactly.
"""

import hashlib
import logging
import math
import time
from pathlib import Path

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


def make_optimizer(spec, params):
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr)
    if spec.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=spec.lr, momentum=spec.momentum)
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum)


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
        self.fast = spec.impl == "fused"

    def batch(self, gen):
        return D.palindrome_batch(self.spec.batch, self.spec.input_length, gen, self.device)

    def loss(self, x, y):
        logits = self.model(x, fast=self.fast)
        return F.cross_entropy(logits, y), (logits.argmax(-1) == y).float().mean()

    @torch.no_grad()
    def evaluate(self):
        self.model.eval()
        loss = correct = 0.0
        for x, y in zip(*(t.split(4096) for t in self.test)):
            logits = self.model(x, fast=self.fast)
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


def fit(spec, out, make_task, inject_nan_at=None, stream=None):
    """Train to spec.steps, resuming from out/resume.pt if a previous attempt left one."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.tmp"):
        stale.unlink()
    run_id, device = spec.run_id(), resolve_device(spec.device)
    torch.set_num_threads(spec.threads)
    torch.manual_seed(spec.seed)
    task = make_task(device)
    model = task.model
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(spec, params)
    sched = task.scheduler(opt)
    gen = torch.Generator(device=device).manual_seed(spec.seed)
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
    bar = progress(spec.steps, initial=step, desc=run_id, stream=stream)
    model.train()
    while step < spec.steps:
        x, y = task.batch(gen)
        loss, acc = task.loss(x, y)
        if inject_nan_at == step + 1:
            loss = loss * float("nan")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, spec.max_norm)
        opt.step()
        if sched:
            sched.step()
        buf[len(pending)] = torch.stack((loss.detach(), acc, grad_norm))
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
