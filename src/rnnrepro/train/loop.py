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

The tasks (what one run of a kind trains on) are in tasks.py; the speed machinery, and every
use of torch's private API, in fastpath.py.
"""

import logging
import math
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from rnnrepro.config.spec import SPECS, Common, Execution
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
from rnnrepro.run.progress import progress
from rnnrepro.train.fastpath import (
    GraphStep,
    flat_parameters,
    keep_freed_memory,
    make_optimizer,
    optimizer_step,
    poison_mask,
    resolve_impl,
    stack_update,
    zero_grads,
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
    # Flat only where it measured faster (benchmarks/README.md, "Flat parameters"): the
    # hand-written path on CPU. (A stack is always one flat buffer.)
    if not task.stacked and device.type == "cpu" and task.impl == "bptt":
        params = [flat_parameters(params)]
    opt = make_optimizer(specs[0], params, capturable=task.impl == "graph")
    return SimpleNamespace(device=device, task=task, model=task.model, params=params, opt=opt,
                           sched=task.scheduler(opt),
                           gens=[torch.Generator(device=device).manual_seed(s.seed) for s in specs])


def make_step(task, opt, params, spec, sched=None):
    """The training step, as `fit_unit` runs it and `rnnrepro bench` times it.

    Returns step(gens, poison=()): draw a batch from each run's generator, loss, backward,
    clip the gradient norm (each run's own), optimizer (and scheduler) step; it returns
    (loss, batch accuracy, gradient norm before clipping) per run as one (S, 3) tensor on
    the device, without waiting for it (no host sync). `poison` lists runs whose loss is
    made NaN (the testing aid behind --inject-nan-at). With impl graph on CUDA the step is
    captured once and replayed (`GraphStep`).
    """
    if task.impl == "graph":
        return GraphStep(task, opt, params, spec)
    if task.stacked:
        def step(gens, poison=()):
            x, y = task.batch(gens)
            mask = poison_mask(task, poison) if poison else None
            return stack_update(task, opt, params, spec.max_norm, x, y, mask)

        return step

    def step(gens, poison=()):
        x, y = task.batch(gens[0])
        loss, acc = task.loss(x, y)
        if poison:
            loss = loss * float("nan")
        zero_grads(params)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, spec.max_norm)
        optimizer_step(opt)
        if sched:
            sched.step()
        return torch.stack((loss.detach(), acc, grad_norm)).unsqueeze(0)

    return step


# --- optimizer state across layouts ---------------------------------------------------------
#
# A run's resume.pt holds its optimizer state as the run alone keeps it on its device: per
# parameter (W_x, W_h, b, W_p, b_p), or for one flat buffer (impl bptt on CPU). A stack keeps
# one (S, P) buffer, run r in row r. The state moves between these layouts through per-key
# vectors over all of a run's parameters (they are elementwise); so a run continues from its
# checkpoint alone or in a stack, and after a change of implementation.


def single_layout(task, device, impl):
    """Whether run r of `task` alone would keep one flat buffer (else one per parameter)."""
    return device.type == "cpu" and resolve_impl(task.spec.model, impl, device) == "bptt"


def _state_vectors(sd, row=None):
    """{key: one vector over all parameters (row `row` of a stack), or a step counter}."""
    st = sd["state"]
    if not st:
        return {}
    out = {}
    for k in st[min(st)]:
        values = [st[i][k] for i in sorted(st)]
        first = values[0]
        if not torch.is_tensor(first) or first.dim() == 0:
            out[k] = first.clone() if torch.is_tensor(first) else first
        else:
            out[k] = torch.cat([(v[row] if row is not None else v).flatten() for v in values])
    return out


# how an optimizer keeps its state (changes with impl); every other key of a parameter group
# is a hyperparameter the run trained with (lr as a schedule left it, initial_lr, betas, ...)
LAYOUT_KEYS = ("params", "capturable", "foreach", "fused", "differentiable")


def _state_dict_for(opt, vectors, shapes, saved_group=None):
    """A state_dict for `opt` whose parameters have `shapes`: `opt`'s own layout settings,
    and the hyperparameters of `saved_group` (the group a checkpoint saved: its learning
    rate is where the schedule had taken it) where one is given."""
    (group,) = opt.state_dict()["param_groups"]
    if saved_group is not None:
        group = {**group, **{k: v for k, v in saved_group.items() if k not in LAYOUT_KEYS}}
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
    return {"state": state, "param_groups": [{**group, "params": list(range(len(shapes)))}]}


def member_optimizer_state(opt, task, r, flat):
    """Run r's optimizer state from its stack's, as the run alone keeps it."""
    shapes = [p.shape for p in task.models[r].parameters()]
    if flat:
        shapes = [(sum(math.prod(s) for s in shapes),)]
    return _state_dict_for(opt, _state_vectors(opt.state_dict(), row=r), shapes)


def stacked_optimizer_state(opt, states):
    """The stack's optimizer state from each run's own, in whichever layout it was saved."""
    rows = [_state_vectors(sd) for sd in states]
    # vectors become rows; step counters are one: the runs of a stack are at one step
    stacked = {k: torch.stack([row[k] for row in rows]) if torch.is_tensor(v) and v.dim() else v
               for k, v in rows[0].items()}
    return _state_dict_for(opt, stacked, [opt.param_groups[0]["params"][0].shape],
                           states[0]["param_groups"][0])


def load_optimizer_state(opt, saved, params):
    """`saved` (a run's, in any layout) into a one-run optimizer over `params`."""
    opt.load_state_dict(_state_dict_for(opt, _state_vectors(saved), [p.shape for p in params],
                                        saved["param_groups"][0]))


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


class FolderError(RuntimeError):
    """An output folder that holds another run's results."""


def own_folder(out, run_id):
    """A run writes only into a folder that holds nothing or its own files. Another run's
    summary.json or model.pt there stops it before it trains; its own earlier summary.json
    goes first, so that the folder never shows a summary older than its metrics."""
    import json

    found = {}
    summary = out / "summary.json"
    if summary.exists():
        try:
            found["summary.json"] = json.loads(summary.read_text(encoding="utf-8")).get("run_id")
        except (ValueError, AttributeError, OSError):
            found["summary.json"] = None  # unreadable: it is replaced below
    if (out / "model.pt").exists():
        try:
            ck = load_checkpoint(out / "model.pt", keys=("kind", "spec"))
            found["model.pt"] = SPECS[ck["kind"]].from_dict(ck["spec"]).run_id()
        except (CheckpointError, KeyError, TypeError, ValueError):
            found["model.pt"] = None  # unreadable: rewritten when the run finishes
    for name, other in found.items():
        if other is not None and other != run_id:
            raise FolderError(f"{out} holds the results of run {other} ({name}), and this is run "
                              f"{run_id}: a run writes only into its own folder. Give another "
                              "output folder, or move that one away to train this run there")
    summary.unlink(missing_ok=True)


def fit_unit(specs, outs, make_task, execution=Execution(), inject_nan=None, stream=None,
             extra=None, tags=None):
    """Train S runs side by side to their (common) step count; each resumes from its own
    out/resume.pt. Returns [(summary, None) or (None, error)] per run: a run whose loss
    stops being finite is dropped with an error naming it and the step, and the others go
    on. `inject_nan` maps run ids to a step at which their loss is made NaN (testing aid);
    `extra` adds keys to every summary's "execution" entry, `tags[r]` to run r's summary."""
    outs = [Path(o) for o in outs]
    ids = [s.run_id() for s in specs]
    if execution.tensorboard:
        events.check_available()
    for out, run_id in zip(outs, ids):
        out.mkdir(parents=True, exist_ok=True)
        own_folder(out, run_id)
        for stale in out.glob(".*.tmp"):
            stale.unlink()
    run = prepare(specs, make_task, execution)
    device, task, model, params, opt, sched, gens = (
        run.device, run.task, run.model, run.params, run.opt, run.sched, run.gens)
    S = task.S
    flat = single_layout(task, device, execution.impl) if task.stacked else None
    states = [_fresh_state() for _ in specs]

    checkpoints = [load_resume(o / "resume.pt", device, task.identity(r)) for r, o in enumerate(outs)]
    if any(checkpoints):
        if not all(checkpoints) or len({ck["state"]["step"] for ck in checkpoints}) != 1:
            raise RuntimeError(f"the runs {ids} are not all at one step: train them apart")
        for r, (ck, out) in enumerate(zip(checkpoints, outs)):
            if ck["run_id"] != ids[r]:
                raise RuntimeError(f"{out / 'resume.pt'} belongs to run {ck['run_id']}, not "
                                   f"{ids[r]}: delete it or use another output directory")
            if ck.get("device", device.type) != device.type:  # its data stream is the device's
                raise RuntimeError(
                    f"{out / 'resume.pt'} was written by run {ids[r]} training on "
                    f"{ck['device']}, and this job trains on {device.type}: a run continues on "
                    f"the device it started on (execution.device: {ck['device']} finishes it; "
                    "deleting the file starts it over)")
            task.load_member(r, ck["model"])
            gens[r].set_state(ck["generator"].cpu() if device.type == "cpu" else ck["generator"])
            states[r] = ck["state"]
            states[r]["resumed_from"].append(states[r]["step"])
            log.info("resuming %s from step %d (%s)", ids[r], states[r]["step"], out / "resume.pt")
        if not task.stacked:
            (ck,) = checkpoints
            load_optimizer_state(opt, ck["optimizer"], params)
            if sched:
                sched.load_state_dict(ck["scheduler"])
            torch.set_rng_state(ck["cpu_rng"].cpu())
            if device.type == "cuda" and ck.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(ck["cuda_rng"].cpu(), device)
        else:
            opt.load_state_dict(stacked_optimizer_state(opt, [ck["optimizer"] for ck in checkpoints]))
    else:
        for i in ids:
            log.info("starting %s on %s", i, describe_device(device))
    if task.stacked:
        log.info("%d runs in one batched step (impl %s): %s", S, task.impl, ", ".join(ids))
    # how each stretch of a run was computed: a resumed run may continue under another impl,
    # thread count or numerics mode, and its summary names every one
    segment = {"impl": task.impl, "device": describe_device(device), "threads": execution.threads,
               "numerics": execution.numerics, **numerics.in_force()}
    for st in states:
        st.setdefault("segments", []).append({"from_step": st["step"], **segment})
    # live curves: a view of the rows below as they are flushed, never a change to them
    live = [events.EventLog(execution.tensorboard, ids[r], bool(checkpoints[r])) for r in range(S)
            ] if execution.tensorboard else []

    def save_outputs(r):
        st, out = states[r], outs[r]
        write_csv(out / "metrics.csv", st["metrics"], METRICS)
        write_csv(out / "eval.csv", st["evals"], task.eval_columns)
        write_csv(out / "timing.csv", st["timing"], TIMING)
        if st["samples"]:
            write_jsonl(out / "samples.jsonl", st["samples"])

    def resume_state(r):
        state = member_optimizer_state(opt, task, r, flat) if task.stacked else opt.state_dict()
        return {"run_id": ids[r], "device": device.type, "identity": task.identity(r),
                "model": task.member_state(r),
                "optimizer": state,
                "scheduler": sched.state_dict() if sched else None,
                "generator": gens[r].get_state(), "cpu_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "state": states[r]}

    alive = list(range(S))
    errors = [None] * S

    def evaluate(step):
        results = task.evaluate()
        for r in alive:
            states[r]["evals"].append({"step": step, **results[r]})

    def show(rs):
        for r in rs if live else ():
            live[r].write(states[r])

    spec = specs[0]
    if not states[0]["evals"]:
        evaluate(0)
    show(alive)
    step, pending = states[0]["step"], []
    buf = torch.zeros(FLUSH, S, 3, device=device)
    started = window = time.perf_counter()
    elapsed0, window_step = states[0]["elapsed"], step
    model.train()
    train_step = make_step(task, opt, params, spec, sched)
    poisons = {}
    for r, i in enumerate(ids):
        if (inject_nan or {}).get(i):
            poisons.setdefault(inject_nan[i], []).append(r)
    bar = progress(spec.steps, initial=step, desc=ids[0] + (f" +{S - 1}" if S > 1 else ""),
                   stream=stream)
    try:
        while step < spec.steps:
            buf[len(pending)] = train_step(gens, poison=poisons.get(step + 1, ()))
            step += 1
            pending.append(step)
            boundary = (spec.evaluates(step)
                        or step % execution.checkpoint_every == 0 or task.wants(step))
            if len(pending) < FLUSH and not boundary:
                continue

            # Flush: one transfer from the device for the last <= FLUSH steps of every run.
            rows = buf[: len(pending)].tolist()
            for r in list(alive):
                metrics = states[r]["metrics"]
                for s, row in zip(pending, rows):
                    loss, a, g = row[r]
                    if not math.isfinite(loss):
                        errors[r] = (f"run {ids[r]}: loss is {loss} at step {s}; "
                                     f"the last checkpoint (if any) is kept in {outs[r]}")
                        alive.remove(r)
                        break
                    if spec.logs(s):
                        metrics.append({"step": s, "loss": loss, "accuracy": a, "grad_norm": g})
            if not alive:
                break
            now = time.perf_counter()
            elapsed = elapsed0 + now - started
            rate = (step - window_step) * spec.batch / (now - window)
            for r in alive:
                states[r]["elapsed"] = elapsed
                states[r]["timing"].append({"step": step, "elapsed_s": elapsed, "examples_per_s": rate})
            last = states[alive[0]]["metrics"]
            bar.set_postfix(loss=f"{last[-1]['loss']:.3f}" if last else "-", refresh=False)
            bar.update(len(pending))
            pending = []
            if spec.evaluates(step):
                evaluate(step)
            show(alive)
            if not task.stacked:
                task.after_step(step, states[0], outs[0])
            for r in alive:
                states[r]["step"] = step
            if step % execution.checkpoint_every == 0 and step < spec.steps:
                for r in alive:
                    save_outputs(r)
                # the runs of a unit checkpoint together, so that they resume at one step
                torch_saves([(resume_state(r), outs[r] / "resume.pt") for r in alive])
            window, window_step = time.perf_counter(), step
    finally:  # an error in a step leaves the log with the error last, not the bar
        bar.close()
        for events_of_run in live:
            events_of_run.close()

    results = [(None, e) for e in errors]
    elapsed = elapsed0 + time.perf_counter() - started
    info = {"impl": task.impl, "threads": execution.threads, "numerics": execution.numerics,
            "deterministic": execution.deterministic,
            "checkpoint_every": execution.checkpoint_every, "runs_in_step": S,
            "stacked_with": [], **(extra or {})}
    for r in alive:
        st = states[r]
        st["elapsed"] = elapsed
        save_outputs(r)
        torch_save(task.checkpoint_extra(r) | {"step": step, "model": task.member_state(r)},
                   outs[r] / "model.pt")
        summary = make_summary(specs[r], task.metadata(r), st, device,
                               {**info, "stacked_with": [i for i in ids if i != ids[r]],
                                "segments": st["segments"]})
        summary.update(tags[r] if tags else {})
        write_json(outs[r] / "summary.json", summary)
        (outs[r] / "resume.pt").unlink(missing_ok=True)
        log.info("finished %s: %s", ids[r], {k: summary[k] for k in ("eval_final", "wall_seconds")})
        results[r] = (summary, None)
    return results


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
        "device": describe_device(device),
        "threads": execution["threads"],
        "execution": execution,
        "precision": precision(),
        **versions(),
    }
