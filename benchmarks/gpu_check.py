"""CUDA checks, timings and the full default config, for a lent GPU machine (benchmarks/gpu.sh).

    bash benchmarks/gpu.sh                       # on a machine with CUDA, about 6 minutes on an H200
    GPU_CHECK_DEVICE=cpu GPU_CHECK_SCALE=0.02 GPU_CHECK_CONFIG=config/test.yaml \\
        PYTHONPATH=src python benchmarks/gpu_check.py    # the dry run (tests/test_gpu_dry_run.py)

1. Correctness on the device against CPU float64, forward and gradients: the palindrome
   RNN/LSTM by every path (fused = cuDNN, loop = the reference equations, bptt = the
   hand-written recurrence), a stack of runs (stack.py) run by run, and the text model.
2. `impl graph` (the step captured in one CUDA graph) against the eager step with the same
   capturable optimizer, through `fit_unit`, for one run and for a stack of runs: per-step
   loss curves within GRAPH_TOL for adam, rmsprop and sgd, for the text model, the phased
   LSTM on palindromes and the frequency task's LSTM and phased LSTM; a NaN
   injected at step 37 stops a graph run naming step 37.
3. Runs that share a job (a stack) against the same runs trained alone (impl auto): within
   SHARED_TOL, stated in the output.
4. Steps/s per run: one run (fused, graph) and a stack of STACK runs (eager, graph), LSTM and
   RNN at input length 10; the text model (eager, graph); one whole job's start (process
   and CUDA).
5. The full default config's training end to end under the mission's command,
   `snakemake --cores 8 --resources gpu=1` (the CPU bench and LaTeX left out), timed, with
   `impl graph` where every graph check passed and impl auto otherwise; where it runs out of
   the time left (GPU_CHECK_BUDGET seconds for the whole script), the runs done by then.

Ends with a table of the timings and the verdicts, and writes $OUT/gpu_results.json.
"""

import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from rnnrepro.config.kinds import FrequencySpec, PhasedSpec
from rnnrepro.config.spec import Execution, PalindromeSpec, TextSpec
from rnnrepro.data.corpus import Corpus
from rnnrepro.data.palindromes import palindrome_batch
from rnnrepro.models import bptt
from rnnrepro.models.lstm import LSTM
from rnnrepro.models.rnn import VanillaRNN
from rnnrepro.models.text import TextGenerationModel
from rnnrepro.train.frequency import FrequencyTask
from rnnrepro.train.loop import fit_unit
from rnnrepro.train.palindrome import PalindromeTask
from rnnrepro.train.phased import PhasedTask
from rnnrepro.train.stack import StackedPalindromeTask
from rnnrepro.train.text import TextTask

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("OUT", "gpu-out"))
OUT.mkdir(parents=True, exist_ok=True)
CORPUS = next((Path(p).resolve() for p in (
    os.environ.get("RNNREPRO_CORPUS"), ROOT / "shared/data/grimms_fairy_tales.txt",
    ROOT.parent / "shared/data/grimms_fairy_tales.txt", ROOT / "data/grimms_fairy_tales.txt")
    if p and Path(p).exists()), None)
dev = torch.device(os.environ.get("GPU_CHECK_DEVICE", "cuda"))  # cpu: a dry run of the script
SCALE = float(os.environ.get("GPU_CHECK_SCALE", "1"))  # shrinks step counts for a dry run
CONFIG = os.environ.get("GPU_CHECK_CONFIG", "config/config.yaml")
BUDGET = float(os.environ.get("GPU_CHECK_BUDGET", "420"))
EX = Execution(device=dev.type)
STACK = 6  # runs in one step: the largest stack of the default config (3 seeds + 3 inits)
GRAPH_TOL = {"first 20 steps": 1e-4, "whole curve": 5e-2}
# Stacked runs use the hand-written stacked recurrence, a run alone cuDNN's kernel (which may
# use TF32): the first steps agree to a few 1e-3, and SGD's final held-out accuracy closely.
SHARED_TOL = {"first 20 steps (abs loss)": 5e-3, "final held-out accuracy (sgd)": 0.03}
results = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
           "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
           "tolerances": {"graph": GRAPH_TOL, "shared": SHARED_TOL}}
checks, speeds = {}, {}
tmp = Path(tempfile.mkdtemp(prefix="gpu-runs-"))
started = time.perf_counter()


def report(key, value):
    results[key] = value
    print(f"{key:66s} {value}", flush=True)


def check(name, ok, detail):
    checks[name] = ("PASS" if ok else "FAIL") + f" ({detail})"
    report(f"check: {name}", checks[name])


def max_diff(a, b):
    return (a.double().cpu() - b.double().cpu()).abs().max().item()


def steps(n):
    return max(int(n * SCALE), 20)


def curve(run_dir):
    rows = (run_dir / "metrics.csv").read_text().splitlines()[1:]
    return [float(r.split(",")[1]) for r in rows]


def train(specs, name, impl="auto", capturable=None, make=None, **kw):
    """fit_unit for one run or a stack; `capturable` forces the optimizer form (graph needs
    it) for an eager step; returns (curves, summaries, wall)."""
    import rnnrepro.train.loop as T

    outs = [tmp / name / str(r) for r in range(len(specs))]
    make = make or ((lambda d: StackedPalindromeTask(specs, d, impl)) if len(specs) > 1
                    else (lambda d: PalindromeTask(specs[0], d, impl)))
    plain = T.make_optimizer
    if capturable is not None:
        T.make_optimizer = lambda spec, params, **_: plain(spec, params, capturable)
    t = time.perf_counter()
    try:
        res = fit_unit(specs, outs, make, dataclasses.replace(EX, impl=impl), stream=io.StringIO(), **kw)
    finally:
        T.make_optimizer = plain
    wall = time.perf_counter() - t
    return [curve(o) if (o / "metrics.csv").exists() else [] for o in outs], res, wall


def stack_specs(base, n=STACK, chaotic=True):
    """Runs of `base` that can share a step, as the default config's: three seeds, then
    normal inits. N(0, 1) weights start the LSTM saturated with gradient norms in the tens,
    where two float orders part within a few steps: `chaotic=False` takes Xavier instead,
    for the comparisons of part 3."""
    big = dict(init="normal", init_std=1.0) if chaotic else dict(init="xavier")
    inits = [dict(seed=s) for s in range(3)] + [dict(seed=0, **big)] + [
        dict(seed=0, init="normal", init_std=sd) for sd in (0.01, 0.001)]
    return [dataclasses.replace(base, **i) for i in inits[:n]]


# 1. correctness ---------------------------------------------------------------------------------
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
paths = {"fused": lambda m, x: m(x, fast=True), "loop": lambda m, x: m(x, fast=False),
         "bptt": lambda m, x: m.forward_bptt(x)}
for cls in (VanillaRNN, LSTM):
    torch.manual_seed(0)
    cpu64 = cls(128).double()
    x, y = palindrome_batch(256, 10, torch.Generator().manual_seed(0))
    ref = cpu64(x, fast=False)
    F.cross_entropy(ref, y).backward()
    ref_grads = [p.grad.clone() for p in cpu64.parameters()]
    for name, run in paths.items():
        gpu = cls(128).to(dev)
        gpu.load_state_dict(cpu64.state_dict())
        out = run(gpu, x.to(dev))
        F.cross_entropy(out, y.to(dev)).backward()
        gdiff = max(max_diff(p.grad, g) for p, g in zip(gpu.parameters(), ref_grads))
        ldiff = max_diff(out, ref)
        report(f"{cls.__name__} {dev.type} {name} vs cpu64: logits / grads", f"{ldiff:.2e} / {gdiff:.2e}")
        check(f"{cls.__name__} {name} matches cpu64", ldiff < 1e-4 and gdiff < 1e-4,
              f"{ldiff:.1e}, {gdiff:.1e}")
    # a stack of three runs, each against its own float64 reference
    gates = cpu64.gates
    torch.manual_seed(1)
    W_x = torch.randn(3, gates * 128, 1, dtype=torch.float64) * 0.2
    b = torch.randn(3, gates * 128, dtype=torch.float64) * 0.1
    W_h = torch.randn(3, gates * 128, 128, dtype=torch.float64) * 0.05
    xs = torch.randn(10, 3, 64, 1, dtype=torch.float64)
    ref = bptt.layer(gates, xs, W_x, b, W_h, last_only=True)
    got = bptt.layer(gates, xs.float().to(dev), W_x.float().to(dev), b.float().to(dev),
                     W_h.float().to(dev), last_only=True)
    d = max_diff(got, ref)
    check(f"{cls.__name__} stack of 3 matches cpu64", d < 1e-4, f"{d:.1e}")
torch.manual_seed(0)
text64 = TextGenerationModel(87).double()
idx, tgt = torch.randint(87, (64, 30)), torch.randint(87, (64, 30))
with torch.backends.mkldnn.flags(enabled=False):
    ref = text64(idx)[0]
F.cross_entropy(ref.flatten(0, 1), tgt.flatten()).backward()
ref_grads = [p.grad.clone() for p in text64.parameters()]
gpu = TextGenerationModel(87).to(dev)
gpu.load_state_dict(text64.state_dict())
out = gpu(idx.to(dev))[0]
F.cross_entropy(out.flatten(0, 1), tgt.to(dev).flatten()).backward()
gdiff = max(max_diff(p.grad, g) for p, g in zip(gpu.parameters(), ref_grads))
ldiff = max_diff(out, ref)
check("text fused matches cpu64", ldiff < 1e-4 and gdiff < 1e-4, f"{ldiff:.1e}, {gdiff:.1e}")
torch.backends.cudnn.allow_tf32 = True


# 2. graph against eager with the same optimizer form ------------------------------------------
off_cuda = "" if dev.type == "cuda" else " (graph falls back to the eager step off CUDA)"
graph_ok = True
for optimizer in ("adam", "rmsprop", "sgd"):
    n = steps(500)
    base = PalindromeSpec(model="lstm", optimizer=optimizer, input_length=10, steps=n,
                          eval_every=n, eval_size=1000, lr=1e-3 if optimizer != "sgd" else 0.05)
    for label, specs in (("one run", [base]), (f"stack of {STACK}", stack_specs(base))):
        eager, _, w_eager = train(specs, f"eager-{optimizer}-{len(specs)}", "auto",
                                  capturable=dev.type == "cuda")
        graph, _, w_graph = train(specs, f"graph-{optimizer}-{len(specs)}", "graph")
        dl = max(abs(a - b) for ce, cg in zip(eager, graph) for a, b in zip(ce, cg))
        first = max(abs(a - b) for ce, cg in zip(eager, graph) for a, b in zip(ce[:20], cg[:20]))
        report(f"graph vs eager ({label}), lstm {optimizer}, {n} steps: max |dloss| (first 20)",
               f"{dl:.2e} ({first:.2e}); wall {w_eager:.1f} s vs {w_graph:.1f} s{off_cuda}")
        ok = (all(len(c) == n for c in eager + graph) and first < GRAPH_TOL["first 20 steps"]
              and dl < GRAPH_TOL["whole curve"])
        graph_ok &= ok
        check(f"graph = eager ({label}, {optimizer}, same optimizer form)", ok,
              f"max |dloss| {dl:.1e}, first 20 steps {first:.1e}")


def graph_against_eager(label, spec, make):
    """One run of `spec` trained eagerly (with the optimizer form a graph needs on CUDA) and
    in a graph (`make(spec, device, impl)` gives its task): a check that their loss curves
    agree over the whole run. Returns whether it passed."""
    n, curves = spec.steps, {}
    for impl, capt in (("auto", dev.type == "cuda"), ("graph", None)):
        try:
            curves[impl], _, _ = train([spec], f"{label}-{impl}".replace(" ", "-"), impl, capt,
                                       make=lambda d, i=impl: make(spec, d, i))
        except Exception as err:  # noqa: BLE001 - a step that cannot be captured is a FAIL
            curves[impl] = None
            report(f"{label} {impl}", f"{type(err).__name__}: {err}"[:120])
    ok = curves["graph"] is not None and curves["auto"] is not None
    dl = (max(abs(a - b) for a, b in zip(curves["auto"][0], curves["graph"][0])) if ok
          else float("nan"))
    ok = ok and len(curves["graph"][0]) == n and dl < GRAPH_TOL["whole curve"]
    check(f"graph = eager ({label}, same optimizer form)", ok, f"max |dloss| {dl:.1e} over {n} steps")
    return ok


if CORPUS:  # the text model's step (torch's LSTM kernel) in a graph
    corpus = Corpus.from_file(CORPUS)
    n = steps(300)
    graph_ok &= graph_against_eager(
        "text model", TextSpec(steps=n, eval_every=n, sample_every=n, sample_first=0, samples_per_step=1),
        lambda spec, d, impl: TextTask(spec, d, corpus, impl))
# Section 2's runs in a graph: the phased LSTM on palindromes (its gate reads the step index)
# and the frequency task's two models on asynchronous samples (a batch of values, times and
# a mask, padded to one shape)
n = steps(300)
graph_ok &= graph_against_eager("phased", PhasedSpec(steps=n, eval_every=n, eval_size=1000), PhasedTask)
for m in ("lstm", "phased"):
    graph_ok &= graph_against_eager(
        f"frequency {m}", FrequencySpec(model=m, sampling="async", hidden=32, steps=n, eval_every=n,
                                        eval_size=1000), FrequencyTask)
nan_spec = PalindromeSpec(model="lstm", steps=60, eval_size=100)
_, res, _ = train(stack_specs(nan_spec, 3), "nan", "graph", inject_nan={nan_spec.run_id(): 37})
err = res[0][1] or ""
check("graph stack drops the run with a NaN at step 37, naming it", "at step 37" in err
      and all(e is None for _, e in res[1:]), err[:70])


# 3. shared (stacked) against alone ------------------------------------------------------------
for optimizer in ("sgd", "adam"):
    n = steps(2000)
    base = PalindromeSpec(model="lstm", optimizer=optimizer, input_length=10, steps=n,
                          eval_every=n, lr=1e-3 if optimizer == "adam" else 0.05)
    specs = stack_specs(base, chaotic=False)
    shared, res_shared, _ = train(specs, f"shared-{optimizer}")
    alone = [train([s], f"alone-{optimizer}-{r}")[0][0] for r, s in enumerate(specs)]
    res_alone = [json.loads((tmp / f"alone-{optimizer}-{r}" / "0" / "summary.json").read_text())
                 for r in range(len(specs))]
    first = max(abs(a - b) for cs, ca in zip(shared, alone) for a, b in zip(cs[:20], ca[:20]))
    acc = max(abs(s["eval_final"]["accuracy"] - a["eval_final"]["accuracy"])
              for (s, _), a in zip(res_shared, res_alone))
    report(f"stack of {STACK} vs alone, lstm {optimizer}, {n} steps: first-20 |dloss|, final acc diff",
           f"{first:.2e}, {acc:.3f}")
    ok = first < SHARED_TOL["first 20 steps (abs loss)"]
    if optimizer == "sgd":
        ok &= acc <= SHARED_TOL["final held-out accuracy (sgd)"]
    check(f"shared = alone within tolerance ({optimizer})", ok, f"{first:.1e}, acc {acc:.3f}")


# 4. speeds ------------------------------------------------------------------------------------
for model in ("lstm", "rnn"):
    n = steps(3000)
    base = PalindromeSpec(model=model, optimizer="adam", input_length=10, steps=n, eval_every=n)
    for impl in ("auto", "graph"):
        _, res, _ = train([base], f"speed-{model}-{impl}", impl)
        speeds[(f"palindrome {model}, one run", impl)] = res[0][0]["steps_per_second"]
        _, res, _ = train(stack_specs(base), f"speed-{model}-{impl}-stack", impl)
        speeds[(f"palindrome {model}, stack of {STACK} (per run)", impl)] = \
            STACK * res[0][0]["steps_per_second"]
if CORPUS:
    n = steps(2000)
    for impl in ("auto", "graph"):
        _, res, _ = train([TextSpec(steps=n, eval_every=n, sample_every=n, sample_first=0)],
                          f"text-speed-{impl}", impl, make=lambda d, i=impl: TextTask(
                              TextSpec(steps=n, eval_every=n, sample_every=n, sample_first=0), d, corpus, i))
        speeds[("text, one run", impl)] = res[0][0]["steps_per_second"]
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rnnrepro", "train", "text", "--corpus", str(CORPUS),
                    "--steps", str(n), "--sample-every", str(min(1000, n)), "--device", dev.type,
                    "--out", str(tmp / "text")], check=True, capture_output=True)
    wall = time.perf_counter() - t
    s = json.loads((tmp / "text" / "summary.json").read_text())
    speeds[("text, a job through the CLI", "auto")] = s["steps_per_second"]
    report("text job: steps/s, job wall s", f"{s['steps_per_second']:.0f}, {wall:.1f}")
t = time.perf_counter()
subprocess.run([sys.executable, "-m", "rnnrepro", "train", "palindrome", "--steps", "1",
                "--device", dev.type, "--out", str(tmp / "start")], check=True, capture_output=True)
report("one palindrome job of 1 step (process, CUDA start, 2 evaluations): wall s",
       f"{time.perf_counter() - t:.1f}")
for (row, impl), v in speeds.items():
    report(f"steps/s: {row} [{impl}]", f"{v:.0f}")


# 5. the full default config under the mission's command -----------------------------------------
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))


def _text(b):
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


def full_config():
    work = tmp / "workflow"
    work.mkdir()
    for name in ("Snakefile", "workflow", "config", "report", "src", "profiles", "benchmarks"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / name)
    config = yaml.safe_load((work / CONFIG).read_text())
    if CORPUS:
        config["corpus"]["urls"] = [CORPUS.as_uri()]
    impl = "graph" if graph_ok and dev.type == "cuda" else "auto"
    config["execution"]["impl"] = impl
    if os.environ.get("GPU_CHECK_RUNS_PER_JOB"):  # the dry run: jobs share runs as on CUDA
        config["execution"]["runs_per_job"] = int(os.environ["GPU_CHECK_RUNS_PER_JOB"])
    (work / "run.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [SNAKEMAKE, "--configfile", "run.yaml", "--cores", "8", "--resources", "gpu=1",
           "--omit-from", "bench", "render_report"]
    left = BUDGET - (time.perf_counter() - started)
    report("full config: command", " ".join(cmd[1:]) + f" (impl {impl}, {left:.0f} s left)")
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=max(left, 30))
        code, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        code, out = "timeout", _text(e.stdout) + _text(e.stderr)
    wall = time.perf_counter() - t
    (OUT / "full_config.log").write_text(out[-200_000:])
    done = list((work / "results" / "runs").glob("*/*/summary.json"))
    progress = re.findall(r"\d+ of \d+ steps", out)
    report("full config: exit, wall s, runs finished", f"{code}, {wall:.0f}, {len(done)}")
    if progress:
        report("full config: Snakemake jobs done / planned", progress[-1])
    compute = work / "results" / "tables" / "compute.csv"
    if compute.exists():
        import pandas as pd

        df = pd.read_csv(compute)
        for kind, g in df.groupby("kind"):
            report(f"full config: {kind} runs, sum of job s, sum of training share s",
                   f"{len(g)}, {g['job_seconds'].sum():.0f}, {g['train_seconds'].sum():.0f}")
    results["full_config"] = {"exit": code, "wall_s": wall, "runs": len(done), "impl": impl}


if Path(SNAKEMAKE).exists():
    full_config()
else:
    report("full config", "skipped: snakemake is not installed here (benchmarks/gpu.sh)")

# the table ----------------------------------------------------------------------------------------
print(f"\n== {results['device']} (torch {torch.__version__}), "
      f"{time.perf_counter() - started:.0f} s in all ==")
for (row, impl), v in speeds.items():
    print(f"{row:46s} {impl:6s} {v:8.0f} steps/s")
print("== checks ==")
for name, verdict in checks.items():
    print(f"{name:58s} {verdict}")
results["checks"] = checks
results["speeds"] = {f"{k} | {i}": v for (k, i), v in speeds.items()}
(OUT / "gpu_results.json").write_text(json.dumps(results, indent=2))
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(0 if all(v.startswith("PASS") for v in checks.values()) else 1)
