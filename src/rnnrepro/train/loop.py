"""Training: run specs in, one run directory per run out.

A run directory holds metrics.csv (step, loss, batch accuracy, gradient norm before
clipping: deterministic on CPU), timing.csv (elapsed seconds and examples/s, which are
not), eval.csv (held-out metrics), summary.json (written last: the run is complete when
it exists) and model.pt; text runs add samples.jsonl, checkpoints/step_NNNNNN.pt, and
best_samples.jsonl: samples of checkpoints/best.pt, the weights at the lowest held-out loss.
While a run is going, resume.pt holds everything needed to continue it exactly.

`fit_unit` trains a unit of S runs side by side: one run (S = 1, the task of one model),
or a stack of palindrome runs of one shape in one batched step (stack.py). Every run keeps
its own directory, files, checkpoint and divergence check whatever the unit.

The loop asks its task (tasks.py: one run of a kind, palindrome.py or text.py, or a stack of
palindrome runs, stack.py) for batches, update steps and evaluations, and never asks which it
is; the speed machinery, and every use of torch's private API, is in fastpath.py.
"""

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch

from rnnrepro.config.spec import Common, Execution
from rnnrepro.files import (
    METRICS,
    TIMING,
    CheckpointError,
    describe_device,
    load_checkpoint,
    precision,
    set_aside,
    torch_save,
    torch_saves,
    versions,
    write_csv,
    write_json,
    write_jsonl,
)
from rnnrepro.run import events, numerics
from rnnrepro.run.folders import own_folder
from rnnrepro.run.phases import Phases
from rnnrepro.run.progress import progress
from rnnrepro.train import faults
from rnnrepro.train.fastpath import (
    GraphStep,
    keep_freed_memory,
    make_optimizer,
)

log = logging.getLogger("rnnrepro")

FLUSH = Common.FLUSH  # steps between transfers of the step metrics from the device
RESUME_KEYS = ("run_id", "model", "optimizer", "generator", "state")


class Diverged(RuntimeError):
    pass


def resolve_device(name):
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but CUDA is not available here")
    return torch.device(name)


def make_deterministic():
    """What PyTorch's reproducibility notes ask for: deterministic algorithms (an op without
    one raises), no cuDNN autotuning, and a fixed cuBLAS workspace (set before CUDA starts)."""
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def prepare(specs, make_task, execution=Execution()):
    """Device, threads, seeds, task (models and data), optimizer, scheduler and batch
    generators of a unit of runs, as `fit_unit` sets them up (and `rnnrepro bench` times
    them). One run's task draws its weights from the global seed set here; a stack seeds
    each run's weights itself."""
    device = resolve_device(execution.device)
    numerics.configure(execution.numerics)
    if execution.deterministic:
        make_deterministic()
    keep_freed_memory()
    torch.set_num_threads(execution.threads)
    torch.manual_seed(specs[0].seed)
    task = make_task(device)
    params = task.params()
    opt = make_optimizer(specs[0], params, capturable=task.impl == "graph")
    return SimpleNamespace(device=device, task=task, model=task.model, params=params, opt=opt,
                           sched=task.scheduler(opt),
                           gens=[torch.Generator(device=device).manual_seed(s.seed) for s in specs])


def make_step(task, opt, params, spec, sched=None):
    """The training step, as `fit_unit` runs it and `rnnrepro bench` times it.

    Returns step(gens): draw a batch from each run's generator, then the task's update (loss,
    backward, each run's clipping, the optimizer) and the schedule; it returns (loss, batch
    accuracy, gradient norm before clipping) per run as one (S, 3) tensor on the device,
    without waiting for it (no host sync). With impl graph on CUDA the update is captured
    once and replayed (`GraphStep`).
    """
    if task.impl == "graph":
        return GraphStep(task, opt, params, spec)

    def step(gens):
        x, y = task.draw(gens)
        out = task.update(opt, params, spec.max_norm, x, y)
        if sched:
            sched.step()
        return out

    return step


# --- optimizer state -------------------------------------------------------------------------
#
# A run's resume.pt keeps its optimizer state in one layout, whatever trained it: per state
# key, one vector over all of the run's parameters (the optimizers are elementwise), a step
# counter as it is, and the parameter group's hyperparameters (the learning rate where a
# schedule left it). On load it becomes the optimizer's own layout: one tensor per parameter,
# one flat buffer (impl bptt on CPU), or row r of a stack's (S, P) buffer. So a run continues
# alone or in a stack, and after a change of implementation.

# how an optimizer keeps its state (changes with impl); every other key of a parameter group
# is a hyperparameter the run trained with (lr as a schedule left it, initial_lr, betas, ...)
LAYOUT_KEYS = ("params", "capturable", "foreach", "fused", "differentiable")


def saved_optimizer(opt, row=None):
    """Run `row`'s optimizer state (the only run's where row is None), as resume.pt keeps it."""
    sd = opt.state_dict()
    st, vectors = sd["state"], {}
    for k in st[min(st)] if st else ():
        values = [st[i][k] for i in sorted(st)]
        if not torch.is_tensor(values[0]) or values[0].dim() == 0:  # a step counter
            vectors[k] = values[0].clone() if torch.is_tensor(values[0]) else values[0]
        else:
            vectors[k] = torch.cat([(v[row] if row is not None else v).flatten() for v in values])
    group = {k: v for k, v in sd["param_groups"][0].items() if k not in LAYOUT_KEYS}
    return {"vectors": vectors, "group": group}


def load_optimizer(opt, saved, stacked):
    """Each run's saved optimizer state (one for a run alone, S for a stack, in run order)
    into `opt`, in its own layout; the hyperparameters are those the first run saved."""
    rows = [s["vectors"] for s in saved]
    # a stack's vectors become rows; step counters are one: the runs of a stack are at one step
    vectors = rows[0] if not stacked else {
        k: torch.stack([row[k] for row in rows]) if torch.is_tensor(v) and v.dim() else v
        for k, v in rows[0].items()}
    (group,) = opt.state_dict()["param_groups"]
    group = {**group, **saved[0]["group"]}  # the saved group holds no layout key
    shapes = [p.shape for p in opt.param_groups[0]["params"]]
    on_device = group.get("capturable") or group.get("fused")
    sizes = [math.prod(shape) for shape in shapes]
    state = {}
    for i, shape in enumerate(shapes if vectors else ()):
        state[i] = {}
        for k, v in vectors.items():
            if torch.is_tensor(v) and v.dim() == 0:  # a step counter: on the CPU unless captured;
                state[i][k] = v.clone() if on_device else v.cpu().clone()  # one per parameter
            elif torch.is_tensor(v):
                state[i][k] = v.flatten().split(sizes)[i].reshape(shape).clone()
            else:
                state[i][k] = v
    opt.load_state_dict({"state": state, "param_groups": [group]})


# --- the training loop ------------------------------------------------------------------------


def fit(spec, out, make_task, execution=Execution(), inject_nan_at=None, stream=None):
    """Train one run to spec.steps, resuming from out/resume.pt if an earlier attempt left
    one; raise Diverged (naming run and step) if its loss stops being finite."""
    (result,) = fit_unit([spec], [out], make_task, execution,
                         inject_nan={spec.run_id(): inject_nan_at} if inject_nan_at else None,
                         stream=stream)
    summary, error = result
    if error:
        raise Diverged(error)
    return summary


def _fresh_state():
    return {"step": 0, "metrics": [], "evals": [], "timing": [], "samples": [], "elapsed": 0.0,
            "resumed_from": []}


def load_resume(path, device, identity=None):
    """A run's resume.pt, or None where there is none; one that cannot be read, or that was
    written with another `identity` (for text: another corpus), is set aside (renamed, not
    deleted) with a warning that names it, and the run starts over."""
    if not path.exists():
        return None
    try:
        ck = load_checkpoint(path, device, keys=RESUME_KEYS)
        if not isinstance(ck["optimizer"], dict) or set(ck["optimizer"]) != {"vectors", "group"}:
            raise CheckpointError(f"{path} keeps its optimizer state in a layout this version "
                                  "does not read")
        written = ck.get("identity", {})
        if identity is not None and written != identity:
            differs = ", ".join(f"{k} {str(written.get(k))[:12]} there, {str(v)[:12]} here"
                                for k, v in identity.items() if written.get(k) != v)
            raise CheckpointError(f"{path} was written by this run on other data ({differs}): "
                                  "continuing it would mix two corpora")
        return ck
    except CheckpointError as err:
        aside = set_aside(path)
        log.warning("%s; moved to %s, and the run starts over", err, aside.name)
        return None


@dataclass
class Run:
    """One run of a unit as the loop keeps it: its spec, its folder, `state` (the rows it has
    written, its step and clock: what resume.pt carries with the weights), its index in the
    task (`r`) and, once dropped, the error that stopped it."""

    spec: object
    out: Path
    r: int
    state: dict = field(default_factory=_fresh_state)
    error: str = None
    live: object = None
    phases_before: dict = field(default_factory=dict)

    @property
    def id(self):
        return self.spec.run_id()


def open_runs(specs, outs):
    """The unit's runs, each in a folder that holds nothing or its own files (own_folder),
    with temporary files an interrupted write left removed."""
    runs = [Run(spec, Path(out), r) for r, (spec, out) in enumerate(zip(specs, outs))]
    for run in runs:
        run.out.mkdir(parents=True, exist_ok=True)
        own_folder(run.out, run.id)
        for stale in run.out.glob(".*.tmp"):
            stale.unlink()
    return runs


def resume(runs, u):
    """Each run from its resume.pt, where an earlier attempt left one: weights, data stream,
    rows and clock; the optimizer and schedule of the unit. The runs of a unit resume
    together, at one step, on the device they started on, or not at all."""
    device, task = u.device, u.task
    checkpoints = [load_resume(run.out / "resume.pt", device, task.identity(run.r)) for run in runs]
    if not any(checkpoints):
        for run in runs:
            log.info("starting %s on %s", run.id, describe_device(device))
        return
    if not all(checkpoints) or len({ck["state"]["step"] for ck in checkpoints}) != 1:
        raise RuntimeError(f"the runs {[run.id for run in runs]} are not all at one step: "
                           "train them apart")
    for run, ck in zip(runs, checkpoints):
        path = run.out / "resume.pt"
        if ck["run_id"] != run.id:
            raise RuntimeError(f"{path} belongs to run {ck['run_id']}, not {run.id}: delete it "
                               "or use another output directory")
        if ck.get("device", device.type) != device.type:  # its data stream is the device's
            raise RuntimeError(
                f"{path} was written by run {run.id} training on {ck['device']}, and this job "
                f"trains on {device.type}: a run continues on the device it started on "
                f"(execution.device: {ck['device']} finishes it; deleting the file starts it over)")
        task.load_member(run.r, ck["model"])
        u.gens[run.r].set_state(ck["generator"].cpu() if device.type == "cpu" else ck["generator"])
        run.state = ck["state"]
        run.state["resumed_from"].append(run.state["step"])
        log.info("resuming %s from step %d (%s)", run.id, run.state["step"], path)
    load_optimizer(u.opt, [ck["optimizer"] for ck in checkpoints], task.stacked)
    first = checkpoints[0]  # the schedule and global generators are the unit's, as saved
    if u.sched:
        u.sched.load_state_dict(first["scheduler"])
    torch.set_rng_state(first["cpu_rng"].cpu())
    if device.type == "cuda" and first.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(first["cuda_rng"].cpu(), device)


def save_rows(run, task):
    st, out = run.state, run.out
    write_csv(out / "metrics.csv", st["metrics"], METRICS)
    write_csv(out / "eval.csv", st["evals"], task.eval_columns)
    write_csv(out / "timing.csv", st["timing"], TIMING)
    if st["samples"]:
        write_jsonl(out / "samples.jsonl", st["samples"])


def checkpoint(runs, u):
    """Every run's rows, and its resume.pt: the runs of a unit checkpoint together, so that
    they resume at one step."""
    task, device = u.task, u.device
    for run in runs:
        save_rows(run, task)
    torch_saves([({"run_id": run.id, "device": device.type, "identity": task.identity(run.r),
                   "model": task.member_state(run.r),
                   "optimizer": saved_optimizer(u.opt, run.r if task.stacked else None),
                   "scheduler": u.sched.state_dict() if u.sched else None,
                   "generator": u.gens[run.r].get_state(), "cpu_rng": torch.get_rng_state(),
                   "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                   "state": run.state}, run.out / "resume.pt") for run in runs])


def record(alive, pending, rows):
    """The step metrics of the last flush into each run's rows; a run whose loss is not
    finite is dropped, naming the step. Returns the runs still alive. A run dropped from a
    stack is still computed in the stack's step (as NaN) until the unit ends: each run's own
    clipping and the elementwise optimizer keep it from the other runs' rows."""
    for run in alive:
        for s, row in zip(pending, rows):
            loss, acc, grad_norm = row[run.r]
            if not math.isfinite(loss):
                run.error = (f"run {run.id}: loss is {loss} at step {s}; the last checkpoint "
                             f"(if any) is kept in {run.out}")
                break
            if run.spec.logs(s):
                run.state["metrics"].append({"step": s, "loss": loss, "accuracy": acc,
                                             "grad_norm": grad_norm})
    return [run for run in alive if run.error is None]


def evaluate(alive, task, step):
    results = task.evaluate()
    for run in alive:
        run.state["evals"].append({"step": step, **results[run.r]})


def show(runs):
    for run in runs:
        if run.live:
            run.live.write(run.state)


def finish(run, u, info, tag=None):
    """A finished run's rows, model.pt and summary.json (last: the run is complete when it
    exists); its resume.pt goes. The wall time of a run trained in a stack is the whole
    unit's (analysis/tables.py divides it among the runs_in_step)."""
    task = u.task
    save_rows(run, task)
    torch_save(task.checkpoint_extra(run.r) | {"step": run.state["step"],
                                               "model": task.member_state(run.r)},
               run.out / "model.pt")
    summary = make_summary(run.spec, task.metadata(run.r), run.state, u.device,
                           {**info, "segments": run.state["segments"]})
    summary.update(tag or {})
    write_json(run.out / "summary.json", summary)
    (run.out / "resume.pt").unlink(missing_ok=True)
    log.info("finished %s: %s", run.id, {k: summary[k] for k in ("eval_final", "wall_seconds")})
    return summary


def fit_unit(specs, outs, make_task, execution=Execution(), inject_nan=None, stream=None,
             extra=None, tags=None):
    """Train S runs side by side to their (common) step count; each resumes from its own
    out/resume.pt. Returns [(summary, None) or (None, error)] per run: a run whose loss
    stops being finite is dropped with an error naming it and the step, and the others go
    on. `inject_nan` maps run ids to a step after which their weights are made NaN (a
    testing aid: faults.py); `extra` adds keys to every summary's "execution" entry,
    `tags[r]` to run r's summary."""
    if execution.tensorboard:
        events.check_available()
    with Phases() as phases:
        with phases("setup"):
            runs = open_runs(specs, outs)
            u = prepare(specs, make_task, execution)
            resume(runs, u)
        return _train(runs, u, phases, execution, inject_nan, stream, extra, tags)


def _train(runs, u, phases, execution, inject_nan, stream, extra, tags):
    task, spec = u.task, runs[0].spec
    for run in runs:  # the phases' sums of the run's earlier stretches (resume.pt)
        run.phases_before = run.state.get("phases_s", {})
    if task.stacked:
        log.info("%d runs in one batched step (impl %s): %s", task.S, task.impl,
                 ", ".join(run.id for run in runs))
    # how each stretch of a run was computed: a resumed run may continue under another impl,
    # thread count or numerics mode, and its summary names every one
    segment = {"impl": task.impl, "device": describe_device(u.device), "threads": execution.threads,
               "numerics": execution.numerics, **numerics.in_force()}
    for run in runs:
        run.state.setdefault("segments", []).append({"from_step": run.state["step"], **segment})
        if execution.tensorboard:  # live curves: a view of the rows as they are flushed
            run.live = events.EventLog(execution.tensorboard, run.id, bool(run.state["resumed_from"]))
    alive = list(runs)
    if not runs[0].state["evals"]:
        with phases("evaluation"):
            evaluate(alive, task, 0)
    show(alive)
    step, pending = runs[0].state["step"], []
    buf = torch.zeros(FLUSH, task.S, 3, device=u.device)
    clock = Clock(runs[0].state["elapsed"], step, spec.batch)
    u.model.train()
    train_step = make_step(task, u.opt, u.params, spec, u.sched)
    if inject_nan:
        train_step = faults.nan_after(train_step, task, step, {run.r: inject_nan.get(run.id)
                                                              for run in runs})
    bar = progress(spec.steps, initial=step, stream=stream,
                   desc=runs[0].id + (f" +{task.S - 1}" if task.S > 1 else ""))
    try:
        while step < spec.steps:
            with phases("steps"):
                buf[len(pending)] = train_step(u.gens)
            step += 1
            pending.append(step)
            boundary = (spec.evaluates(step) or step % execution.checkpoint_every == 0
                        or task.wants(step))
            if len(pending) < FLUSH and not boundary:
                continue
            # flush: one transfer from the device for the last <= FLUSH steps of every run
            with phases("steps"):
                alive = record(alive, pending, buf[: len(pending)].tolist())
            if not alive:
                break
            with phases("logs"):
                clock.tick(alive, step)
                last = alive[0].state["metrics"]
                bar.set_postfix(loss=f"{last[-1]['loss']:.3f}" if last else "-", refresh=False)
                bar.update(len(pending))
            pending = []
            if spec.evaluates(step):
                with phases("evaluation"):
                    evaluate(alive, task, step)
            with phases("logs"):
                show(alive)
            with phases("task"):
                task.after_step(step, alive)
            for run in alive:
                run.state["step"] = step
            if step % execution.checkpoint_every == 0 and step < spec.steps:
                with phases("checkpoints"):
                    for run in alive:
                        run.state["phases_s"] = phases.total(run.phases_before)
                    checkpoint(alive, u)
            clock.restart(step)
    finally:  # an error in a step leaves the log with the error last, not the bar
        bar.close()
        for run in runs:
            if run.live:
                run.live.close()

    info = {"impl": task.impl, "threads": execution.threads, "numerics": execution.numerics,
            "deterministic": execution.deterministic,
            "checkpoint_every": execution.checkpoint_every, "runs_in_step": task.S,
            "stacked_with": [], **(extra or {})}
    elapsed, results = clock.elapsed(), []
    for run in runs:
        if run.error is None:
            run.state["elapsed"] = elapsed
            run.state["phases_s"] = phases.total(run.phases_before)
            others = [other.id for other in runs if other is not run]
            results.append((finish(run, u, {**info, "stacked_with": others},
                                   tags[run.r] if tags else None), None))
        else:
            results.append((None, run.error))
    return results


class Clock:
    """A unit's wall clock, continued across resumes, and its examples/s since the last flush."""

    def __init__(self, elapsed, step, batch):
        self.elapsed0, self.batch = elapsed, batch
        self.started = time.perf_counter()
        self.restart(step)

    def restart(self, step):
        self.window, self.window_step = time.perf_counter(), step

    def elapsed(self):
        return self.elapsed0 + time.perf_counter() - self.started

    def tick(self, alive, step):
        now = time.perf_counter()
        elapsed = self.elapsed0 + now - self.started
        rate = (step - self.window_step) * self.batch / (now - self.window)
        for run in alive:
            run.state["elapsed"] = elapsed
            run.state["timing"].append({"step": step, "elapsed_s": elapsed, "examples_per_s": rate})


FINAL_WINDOW = 100  # logged steps averaged into final_loss and final_batch_accuracy


def make_summary(spec, meta, st, device, execution):
    evals, metrics = st["evals"], st["metrics"]
    tail = metrics[-FINAL_WINDOW:]
    rates = sorted(t["examples_per_s"] for t in st["timing"])
    return {
        "run_id": spec.run_id(),
        "kind": spec.kind,
        "spec": spec.to_dict(),
        **meta,
        "final_loss": sum(m["loss"] for m in tail) / len(tail),
        "final_batch_accuracy": sum(m["accuracy"] for m in tail) / len(tail),
        "final_window": len(tail),
        "eval_final": evals[-1],
        "eval_best": max(evals, key=lambda e: (e["accuracy"], -e["step"])),
        "eval_lowest_loss": min(evals, key=lambda e: (e["loss"], e["step"])),
        "wall_seconds": st["elapsed"],
        "steps_per_second": spec.steps / st["elapsed"],
        "median_examples_per_s": rates[len(rates) // 2] if rates else None,
        "resumed_from": st["resumed_from"],
        "phases_s": st.get("phases_s", {}),
        "device": describe_device(device),
        "threads": execution["threads"],
        "execution": execution,
        "precision": precision(),
        **versions(),
    }
