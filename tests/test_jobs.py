"""Jobs that train several runs: stacks of runs in one batched step, runs trained ahead of
their own jobs, and what keeps that right (claims, fingerprints, checkpoints, failures).

Everything here runs on the CPU with execution.runs_per_job > 1, which the pipeline uses on
CUDA; the CPU default (one run per job) is byte-identical to training alone.
"""

import dataclasses
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from rnnrepro.config.spec import CHOICES, Execution, PalindromeSpec
from rnnrepro.config.studies import Run, cli_args
from rnnrepro.models import bptt
from rnnrepro.run import jobs
from rnnrepro.train.loop import fit, fit_unit
from rnnrepro.train.palindrome import PalindromeTask
from rnnrepro.train.stack import StackedPalindromeTask, stack_key

CPU = Execution(device="cpu")
BASE = dict(model="rnn", optimizer="sgd", lr=0.05, input_length=4, steps=40, eval_every=20,
            eval_size=300, batch=32, hidden=16)


def _specs(**over):
    base = {**BASE, **over}
    return [PalindromeSpec(**base, seed=0), PalindromeSpec(**base, seed=1),
            PalindromeSpec(**base, seed=0, init="normal", init_std=0.2)]


def _params(path):
    return torch.load(path, weights_only=True)["model"]


# --- the stack computes what separate runs compute ---------------------------------------------------
@pytest.mark.parametrize("model", ["rnn", "lstm"])
@pytest.mark.parametrize("encoding", ["scalar", "onehot"])
def test_a_stack_trains_each_run_as_it_trains_alone(model, encoding, tmp_path):
    """SGD with the clipping biting (max_norm 0.05): each stacked run ends where it ends alone,
    to rounding (its own data, loss, clipping and initialisation)."""
    specs = _specs(model=model, input_encoding=encoding, max_norm=0.05)
    results = fit_unit(specs, [tmp_path / "stack" / str(r) for r in range(3)],
                       lambda d: StackedPalindromeTask(specs, d), CPU)
    assert all(e is None for _, e in results)
    for r, spec in enumerate(specs):
        fit(spec, tmp_path / "alone" / str(r), lambda d, s=spec: PalindromeTask(s, d), CPU)
        got = _params(tmp_path / "stack" / str(r) / "model.pt")
        want = _params(tmp_path / "alone" / str(r) / "model.pt")
        assert got.keys() == want.keys()
        for k in got:
            assert torch.allclose(got[k], want[k], rtol=1e-4, atol=1e-5), (r, k)
        a, b = (json.loads((tmp_path / w / str(r) / "summary.json").read_text()) for w in ("stack", "alone"))
        assert a["run_id"] == b["run_id"] == spec.run_id()
        assert abs(a["eval_final"]["loss"] - b["eval_final"]["loss"]) < 1e-4
        assert a["parameters"] == b["parameters"] and a["init"] == b["init"]
        assert a["execution"]["runs_in_step"] == 3 and len(a["execution"]["stacked_with"]) == 2
        assert max(m["grad_norm"] for m in _metrics(tmp_path / "stack" / str(r))) > 0.05


def _metrics(run_dir):
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    cols = lines[0].split(",")
    return [dict(zip(cols, map(float, line.split(",")))) for line in lines[1:]]


def test_adam_stack_follows_the_runs_alone_at_first(tmp_path):
    """With Adam, rounding differences may grow along a trajectory; the first steps agree."""
    specs = _specs(model="lstm", optimizer="adam", lr=1e-3)
    fit_unit(specs, [tmp_path / "s" / str(r) for r in range(3)],
             lambda d: StackedPalindromeTask(specs, d), CPU)
    for r, spec in enumerate(specs):
        fit(spec, tmp_path / "a" / str(r), lambda d, s=spec: PalindromeTask(s, d), CPU)
        got, want = _metrics(tmp_path / "s" / str(r))[:20], _metrics(tmp_path / "a" / str(r))[:20]
        assert max(abs(g["loss"] - w["loss"]) for g, w in zip(got, want)) < 1e-5


@pytest.mark.parametrize("gates", [1, 4])
@pytest.mark.parametrize("onehot", [False, True])
def test_stacked_layer_equals_each_run_alone_and_passes_gradcheck(gates, onehot):
    torch.manual_seed(0)
    S, T, B, H, d = 3, 5, 4, 6, 10 if onehot else 1
    G = gates * H
    W_x, b, W_h = (torch.randn(S, G, d, dtype=torch.float64, requires_grad=True),
                   torch.randn(S, G, dtype=torch.float64, requires_grad=True),
                   torch.randn(S, G, H, dtype=torch.float64, requires_grad=True))
    x = (torch.randint(10, (T, S, B)) if onehot
         else torch.randn(T, S, B, 1, dtype=torch.float64, requires_grad=True))
    h = bptt.layer(gates, x, W_x, b, W_h, last_only=True)
    for r in range(S):
        alone = bptt.layer(gates, x[:, r], W_x[r], b[r], W_h[r], last_only=True)
        assert torch.allclose(h[r], alone, atol=1e-12)
    inputs = (W_x, b, W_h) if onehot else (x, W_x, b, W_h)
    fn = (lambda *p: bptt.layer(gates, x, *p, last_only=True)) if onehot else (
        lambda x_, *p: bptt.layer(gates, x_, *p, last_only=True))
    assert torch.autograd.gradcheck(fn, inputs)


def test_stack_key_keeps_apart_what_cannot_share_a_step():
    a = PalindromeSpec(**BASE)
    assert stack_key(a) == stack_key(dataclasses.replace(a, seed=3, init="xavier"))
    for change in ({"lr": 0.1}, {"input_length": 5}, {"steps": 41}, {"model": "lstm"}):
        assert stack_key(a) != stack_key(dataclasses.replace(a, **change))
    with pytest.raises(ValueError, match="differ only in seed"):
        StackedPalindromeTask([a, dataclasses.replace(a, lr=0.1)], torch.device("cpu"))


# the fields a stack's runs may differ in: each run of a stack draws its own initial weights
# (test_a_stack_trains_each_run_as_it_trains_alone checks that it ends as it does alone)
STACK_HONOURS = {"seed", "init", "init_std"}


def _another(spec, name):
    value = getattr(spec, name)
    if name in CHOICES:
        return next(c for c in CHOICES[name] if c != value)
    if isinstance(value, float) and value < 1:
        return value / 2 + 0.25  # stays in [0, 1) (momentum) and differs
    return value * 2 + 1


def test_every_spec_field_is_honoured_by_a_stack_or_keeps_runs_apart():
    """A field that a stack does not give each run its own value of must keep runs that differ
    in it in separate units (stack_key); so no spec field can be silently lost by stacking."""
    a = PalindromeSpec(**BASE)
    shared = {f.name for f in dataclasses.fields(a)
              if stack_key(dataclasses.replace(a, **{f.name: _another(a, f.name)})) == stack_key(a)}
    assert shared == STACK_HONOURS


def test_a_stack_takes_the_learning_rate_schedule_its_runs_take_alone(monkeypatch):
    """The palindrome runs' schedule (none today) has one owner, which a stack asks too: one
    given to palindrome runs reaches the stacked ones."""
    from rnnrepro.train import palindrome

    def halving(spec, opt):
        return torch.optim.lr_scheduler.StepLR(opt, 10, 0.5)

    monkeypatch.setattr(palindrome, "palindrome_scheduler", halving)
    specs = _specs(steps=20)
    cpu = torch.device("cpu")
    alone = PalindromeTask(specs[0], cpu)
    stacked = StackedPalindromeTask(specs, cpu)
    for task in (alone, stacked):
        opt = torch.optim.SGD(task.params(), lr=specs[0].lr)
        assert isinstance(task.scheduler(opt), torch.optim.lr_scheduler.StepLR)


def test_a_run_diverging_in_a_stack_is_dropped_alone(tmp_path):
    specs = _specs(steps=60)
    outs = [tmp_path / str(r) for r in range(3)]
    results = fit_unit(specs, outs, lambda d: StackedPalindromeTask(specs, d), CPU,
                       inject_nan={specs[1].run_id(): 25})
    assert results[0][1] is None and results[2][1] is None
    assert results[1][0] is None and f"run {specs[1].run_id()}: loss is nan at step 25" in results[1][1]
    assert (outs[0] / "summary.json").exists() and not (outs[1] / "summary.json").exists()
    # the others trained on undisturbed: exactly as in the same stack without the NaN (a
    # stack of another size may round its batched products differently)
    clean = [tmp_path / f"clean{r}" for r in range(3)]
    assert all(e is None for _, e in fit_unit(specs, clean, lambda d: StackedPalindromeTask(specs, d), CPU))
    for r in (0, 2):
        assert (outs[r] / "metrics.csv").read_bytes() == (clean[r] / "metrics.csv").read_bytes()


# --- jobs through the command line ------------------------------------------------------------------
def _table(tmp_path, specs):
    runs = {s.run_id(): Run(s) for s in specs}
    jobs.write_run_table(tmp_path / "table.json", runs, lambda r: tmp_path / "runs" / r, None)
    return tmp_path / "table.json"


def _job(tmp_path, spec, *extra, check=True, popen=False):
    cmd = [sys.executable, "-m", "rnnrepro", "train", "palindrome", *cli_args(spec),
           "--device", "cpu", "--checkpoint-every", "10", "--run-table", str(tmp_path / "table.json"),
           "--out", str(tmp_path / "runs" / spec.run_id()), *extra]
    if popen:
        return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert not check or res.returncode == 0, res.stderr[-3000:]
    return res


def test_a_job_trains_pending_runs_ahead_and_their_jobs_move_them_into_place(tmp_path):
    specs = _specs() + [PalindromeSpec(**{**BASE, "input_length": 5})]  # the last: another shape
    _table(tmp_path, specs)
    first = _job(tmp_path, specs[0], "--runs-per-job", "8")
    assert "with 2 more pending runs in one step" in first.stderr
    assert "training for their own jobs: " + specs[3].run_id() in first.stderr
    runs = tmp_path / "runs"
    assert (runs / specs[0].run_id() / "summary.json").exists()
    for spec in specs[1:]:
        assert (runs / spec.run_id() / ".staged" / "summary.json").exists()
        assert not (runs / spec.run_id() / "summary.json").exists()
    for spec in specs[1:]:
        t = time.perf_counter()
        res = _job(tmp_path, spec, "--runs-per-job", "8")
        assert time.perf_counter() - t < 10
        assert f"{spec.run_id()} was trained in the job of run {specs[0].run_id()}" in res.stderr
        assert "starting" not in res.stderr
        done = runs / spec.run_id()
        assert not (done / ".staged").exists()
        summary = json.loads((done / "summary.json").read_text())
        assert summary["execution"]["job"] == specs[0].run_id()
        for name in ("metrics.csv", "eval.csv", "timing.csv", "model.pt"):
            assert (done / name).exists(), name


def test_a_promoting_job_does_not_import_torch(tmp_path):
    specs = _specs()
    _table(tmp_path, specs)
    _job(tmp_path, specs[0], "--runs-per-job", "3")
    code = ("import sys, runpy; sys.argv = sys.argv[1:]; "
            "from rnnrepro import cli; rc = cli.main(sys.argv[1:]); "
            "print('TORCH', 'torch' in sys.modules); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, "rnnrepro", "train", "palindrome",
                          *cli_args(specs[1]), "--device", "cpu", "--runs-per-job", "3",
                          "--run-table", str(tmp_path / "table.json"),
                          "--out", str(tmp_path / "runs" / specs[1].run_id())],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "TORCH False" in res.stdout


def test_one_run_per_job_takes_nothing_else(tmp_path):
    specs = _specs()
    _table(tmp_path, specs)
    res = _job(tmp_path, specs[0], "--runs-per-job", "1")
    assert "pending" not in res.stderr
    assert not list((tmp_path / "runs").glob("*/.staged"))


def test_runs_done_or_claimed_are_left_alone(tmp_path):
    specs = _specs()
    _table(tmp_path, specs)
    _job(tmp_path, specs[1], "--runs-per-job", "1")  # done in place
    held = jobs.Claim(tmp_path / "runs" / specs[2].run_id())
    assert held.take()  # being trained elsewhere
    try:
        res = _job(tmp_path, specs[0], "--runs-per-job", "8")
    finally:
        held.release()
    assert "pending" not in res.stderr and "training for their own jobs" not in res.stderr
    assert not list((tmp_path / "runs").glob("*/.staged"))


def test_a_changed_training_code_makes_every_run_pending_again(tmp_path, monkeypatch):
    specs = _specs()
    _table(tmp_path, specs)
    for s in specs:
        _job(tmp_path, s, "--runs-per-job", "1")
    job = jobs.Job(jobs.Entry(specs[0], tmp_path / "runs" / specs[0].run_id()), CPU,
                   jobs.read_run_table(tmp_path / "table.json"))
    assert not any(job.pending(e) for e in job.table)
    monkeypatch.setattr(jobs, "code_digest", lambda modules: "another version of the code")
    assert all(job.pending(e) for e in job.table)


def test_a_killed_shared_job_resumes_and_ends_as_if_never_killed(tmp_path):
    """Kill the job that trains a stack; its runs continue from their own checkpoints (in
    another stack, at one step) and end byte-identical to an uninterrupted stack on CPU. A
    run of the stack can also continue alone from its checkpoint."""
    # Adam: every run has optimizer state, which moves between the stack and each run's own
    specs = _specs(steps=600, eval_every=100, model="lstm", hidden=24, optimizer="adam", lr=1e-3)
    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    _table(clean_dir, specs)
    for spec in specs:  # the first trains all three, the others move theirs into place
        _job(clean_dir, spec, "--runs-per-job", "3")

    work = tmp_path / "work"
    work.mkdir()
    _table(work, specs)
    proc = _job(work, specs[0], "--runs-per-job", "3", popen=True)
    resumes = [work / "runs" / specs[0].run_id() / "resume.pt"] + [
        work / "runs" / s.run_id() / ".staged" / "resume.pt" for s in specs[1:]]
    deadline = time.time() + 120
    while time.time() < deadline:  # kill it where its runs' checkpoints are at one step
        if all(p.exists() for p in resumes):
            proc.send_signal(signal.SIGSTOP)
            steps = {torch.load(p, weights_only=True)["state"]["step"] for p in resumes}
            if len(steps) == 1:
                break
            proc.send_signal(signal.SIGCONT)  # caught between two renames: a moment later
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (work / "runs" / specs[0].run_id() / "summary.json").exists(), "finished too soon"

    # the last run continues alone, from the checkpoint the stack wrote for it
    alone = _job(work, specs[2], "--runs-per-job", "1")
    assert f"resuming {specs[2].run_id()} from step" in alone.stderr
    # the first job again: its own run and the second continue together
    again = _job(work, specs[0], "--runs-per-job", "3")
    assert f"resuming {specs[0].run_id()} from step" in again.stderr
    assert f"resuming {specs[1].run_id()} from step" in again.stderr
    _job(work, specs[1], "--runs-per-job", "3")
    for spec in specs[:2]:
        for name in ("metrics.csv", "eval.csv"):
            a = (clean_dir / "runs" / spec.run_id() / name).read_bytes()
            assert (work / "runs" / spec.run_id() / name).read_bytes() == a, (spec.run_id(), name)
    # alone it follows another implementation from the checkpoint on: the same to rounding
    # at first (a trajectory may then drift apart)
    (step,) = json.loads((work / "runs" / specs[2].run_id() / "summary.json").read_text())["resumed_from"]
    a, b = (_metrics(d / "runs" / specs[2].run_id()) for d in (clean_dir, work))
    assert a[:step] == b[:step]
    assert max(abs(x["loss"] - y["loss"]) for x, y in zip(a[step:step + 5], b[step:step + 5])) < 1e-5


def test_runs_at_different_steps_resume_in_separate_units(tmp_path):
    """A job killed between its runs' checkpoint renames leaves them a checkpoint apart:
    each still continues from its own checkpoint, in a unit of its own step."""
    specs = _specs(steps=60)
    _table(tmp_path, specs)
    outs = [tmp_path / "runs" / specs[0].run_id()] + [
        tmp_path / "runs" / s.run_id() / ".staged" for s in specs[1:]]
    ex = dataclasses.replace(CPU, checkpoint_every=10)
    for spec, out, stop in zip(specs, outs, (30, 20, 30)):  # checkpoints at 30, 20, 30
        fit_unit([spec], [out], lambda d, s=spec: PalindromeTask(s, d), ex,
                 inject_nan={spec.run_id(): stop + 5})
    res = _job(tmp_path, specs[0], "--runs-per-job", "3")
    assert f"resuming {specs[0].run_id()} from step 30" in res.stderr
    assert f"resuming {specs[2].run_id()} from step 30" in res.stderr
    assert f"resuming {specs[1].run_id()} from step 20" in res.stderr
    assert "with 1 more pending runs in one step: " + specs[2].run_id() in res.stderr
    for spec in specs[1:]:
        _job(tmp_path, spec, "--runs-per-job", "3")
    for spec in specs:
        summary = json.loads((tmp_path / "runs" / spec.run_id() / "summary.json").read_text())
        assert summary["resumed_from"] == [20 if spec is specs[1] else 30]


def test_a_run_that_diverged_in_another_job_fails_in_its_own_job_naming_it(tmp_path):
    specs = _specs(lr=1e38, steps=30)  # every run of this stack diverges
    _table(tmp_path, specs)
    first = _job(tmp_path, specs[0], "--runs-per-job", "3", check=False)
    assert first.returncode == 1 and f"run {specs[0].run_id()}: loss is" in first.stderr
    note = tmp_path / "runs" / specs[1].run_id() / ".staged" / "failed.json"
    assert note.exists()
    second = _job(tmp_path, specs[1], "--runs-per-job", "3", check=False)
    assert second.returncode == 1
    assert f"run {specs[1].run_id()}: loss is " in second.stderr and " at step " in second.stderr
    assert f"trained in the job of run {specs[0].run_id()}" in second.stderr
    assert "Traceback" not in second.stderr and not note.exists()
    third = _job(tmp_path, specs[1], "--runs-per-job", "1", check=False)  # tried again, alone
    assert third.returncode == 1 and "starting" in third.stderr


def test_a_failure_in_another_run_never_fails_the_job_of_a_finished_run(tmp_path):
    specs = _specs()
    other = PalindromeSpec(**{**BASE, "input_length": 5})
    _table(tmp_path, specs[:1] + [other])
    foreign = tmp_path / "runs" / other.run_id() / ".staged"
    # a checkpoint that is not this run's, where the job will look for the other run's
    outs = [tmp_path / "x"]
    fit_unit([specs[1]], outs, lambda d: PalindromeTask(specs[1], d),
             dataclasses.replace(CPU, checkpoint_every=10), inject_nan={specs[1].run_id(): 15})
    foreign.mkdir(parents=True)
    (outs[0] / "resume.pt").rename(foreign / "resume.pt")
    res = _job(tmp_path, specs[0], "--runs-per-job", "8")
    assert "failed (RuntimeError" in res.stderr and "their own jobs will try again" in res.stderr
    assert (tmp_path / "runs" / specs[0].run_id() / "summary.json").exists()
    mine = _job(tmp_path, other, "--runs-per-job", "8", check=False)
    assert mine.returncode == 1 and f"run {other.run_id()}: RuntimeError" in mine.stderr
    assert "belongs to run" in mine.stderr and "Traceback" not in mine.stderr


def test_a_job_killed_while_training_others_keeps_its_own_run(tmp_path):
    own = PalindromeSpec(**BASE)
    long = PalindromeSpec(**{**BASE, "input_length": 6, "steps": 100_000, "eval_every": 1000})
    _table(tmp_path, [own, long])
    proc = _job(tmp_path, own, "--runs-per-job", "8", popen=True)
    done = tmp_path / "runs" / own.run_id() / "summary.json"
    deadline = time.time() + 120
    staged = tmp_path / "runs" / long.run_id() / ".staged" / "resume.pt"
    while not staged.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert done.exists()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for name in ("summary.json", "metrics.csv", "eval.csv", "timing.csv", "model.pt"):
        (done.parent / name).unlink()  # what Snakemake does to a failed job's outputs
    again = _job(tmp_path, own, "--runs-per-job", "1")
    assert f"{own.run_id()} was trained in the job of run {own.run_id()}" in again.stderr
    assert "starting" not in again.stderr and done.exists()


def test_without_file_locks_a_job_trains_its_own_run_only(tmp_path, monkeypatch):
    import errno
    import fcntl

    specs = _specs()
    _table(tmp_path, specs)

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    own = specs[0]
    summary = jobs.train_job(own, tmp_path / "runs" / own.run_id(),
                             dataclasses.replace(CPU, runs_per_job=8), run_table=tmp_path / "table.json")
    assert summary["run_id"] == own.run_id()
    assert not list((tmp_path / "runs").glob("*/.staged"))


def test_one_run_per_job_claims_its_own_run_only(tmp_path, monkeypatch):
    claimed, take = [], jobs.Claim.take

    def record(claim, wait=False):
        claimed.append(claim.path.parent.name)
        return take(claim, wait)

    monkeypatch.setattr(jobs.Claim, "take", record)
    specs = _specs()
    _table(tmp_path, specs)
    jobs.train_job(specs[0], tmp_path / "runs" / specs[0].run_id(), dataclasses.replace(CPU, runs_per_job=1),
                   run_table=tmp_path / "table.json")
    assert claimed == [specs[0].run_id()]


def test_two_commands_with_one_output_folder_train_the_run_once(tmp_path):
    """By hand, outside the workflow: the second waits for the first's claim, then finds the
    run complete; nothing is trained twice or written by two processes at once."""
    spec = PalindromeSpec(**{**BASE, "steps": 2000, "eval_every": 500})
    cmd = [sys.executable, "-m", "rnnrepro", "train", "palindrome", *cli_args(spec), "--device", "cpu",
           "--out", str(tmp_path / "run")]
    first = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    claim = tmp_path / "run" / ".claim"

    def held():  # its holder's pid written in it
        try:
            return bool(claim.read_text().strip())
        except FileNotFoundError:
            return False

    while not held() and time.time() < deadline:
        time.sleep(0.02)
    log = tmp_path / "second.log"
    try:
        first.send_signal(signal.SIGSTOP)  # it holds the claim: the second must wait for it
        with open(log, "w") as err:
            second = subprocess.Popen(cmd, stderr=err, text=True)
            while "waiting for it" not in log.read_text() and second.poll() is None \
                    and time.time() < deadline + 60:
                time.sleep(0.05)
            assert "waiting for it" in log.read_text(), log.read_text()[-2000:]
    finally:
        first.send_signal(signal.SIGCONT)
    _, first_err = first.communicate(timeout=300)
    assert second.wait(timeout=300) == 0 and first.returncode == 0, log.read_text()[-2000:]
    assert f"starting {spec.run_id()}" in first_err and "is already complete" in log.read_text()
    assert "starting" not in log.read_text()


def test_the_run_table_lists_planned_runs_or_those_without_results(tmp_path):
    specs = _specs()
    runs = {s.run_id(): Run(s) for s in specs}
    (tmp_path / specs[0].run_id()).mkdir()
    (tmp_path / specs[0].run_id() / "summary.json").write_text("{}")
    jobs.write_run_table(tmp_path / "t.json", runs, lambda r: tmp_path / r, None)
    assert {e.run_id for e in jobs.read_run_table(tmp_path / "t.json")} == {s.run_id() for s in specs[1:]}
    jobs.write_run_table(tmp_path / "t.json", runs, lambda r: tmp_path / r, None, planned={specs[0].run_id()})
    assert [e.run_id for e in jobs.read_run_table(tmp_path / "t.json")] == [specs[0].run_id()]


def test_a_failure_note_from_other_code_does_not_block_a_run(tmp_path):
    spec = _specs()[0]
    job = jobs.Job(jobs.Entry(spec, tmp_path), CPU)
    (tmp_path / ".staged").mkdir()
    (tmp_path / ".staged" / "failed.json").write_text(
        json.dumps({"fingerprint": "old", "error": "x", "job": "y"}))
    assert job.pending(job.own) and job.finish_staged() is None


@pytest.mark.parametrize("first,then", [("bptt", "fused"), ("fused", "bptt")])
def test_a_run_continues_after_a_change_of_implementation(tmp_path, first, then):
    """Optimizer state moves between the flat buffer (bptt on CPU) and per-parameter state."""
    spec = PalindromeSpec(**{**BASE, "optimizer": "adam", "lr": 1e-3, "steps": 60})
    ex = dataclasses.replace(CPU, checkpoint_every=20)
    with pytest.raises(Exception, match="at step 45"):
        fit(spec, tmp_path / "run", lambda d: PalindromeTask(spec, d, first), ex, inject_nan_at=45)
    summary = fit(spec, tmp_path / "run", lambda d: PalindromeTask(spec, d, then), ex)
    assert summary["resumed_from"] == [40]
    fit(spec, tmp_path / "clean", lambda d: PalindromeTask(spec, d, first), ex)
    a, b = _metrics(tmp_path / "run"), _metrics(tmp_path / "clean")
    assert a[:40] == b[:40]
    assert max(abs(x["loss"] - y["loss"]) for x, y in zip(a[40:], b[40:])) < 1e-4


def test_a_run_does_not_continue_on_another_device(tmp_path):
    spec = PalindromeSpec(**{**BASE, "steps": 60})
    ex = dataclasses.replace(CPU, checkpoint_every=20)
    with pytest.raises(Exception, match="at step 45"):
        fit(spec, tmp_path, lambda d: PalindromeTask(spec, d), ex, inject_nan_at=45)
    ck = torch.load(tmp_path / "resume.pt", weights_only=True)
    ck["device"] = "cuda"
    torch.save(ck, tmp_path / "resume.pt")
    with pytest.raises(RuntimeError, match=r"training on cuda, and this job trains on cpu: a run "
                                           r"continues on the device it started on"):
        fit(spec, tmp_path, lambda d: PalindromeTask(spec, d), ex)
    assert (tmp_path / "resume.pt").exists()
