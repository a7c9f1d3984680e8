"""Training jobs learn, are deterministic on CPU, resume exactly, and stop on NaN."""

import json
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from rnnrepro.config.spec import RUN_ID, Execution, PalindromeSpec, SpecError, TextSpec
from rnnrepro.train.loop import Diverged
from rnnrepro.train.palindrome import train_palindrome as _train_palindrome
from rnnrepro.train.text import train_text as _train_text

FAST = dict(eval_size=1000)
CPU = Execution(device="cpu", threads=1)


def train_palindrome(spec, out, **kw):
    return _train_palindrome(spec, out, CPU, **kw)


def train_text(spec, corpus, out, **kw):
    return _train_text(spec, corpus, out, CPU, **kw)


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_adam_learns_input_length_4(model, tmp_path):
    """A run far from any edge: both models hold 100 % from step 250 of 1,500 under ATen's
    baseline, AVX2 and AVX-512 kernels alike, so the outcome does not depend on the CPU."""
    spec = PalindromeSpec(model=model, optimizer="adam", input_length=4, steps=1500,
                          eval_every=250, **FAST)
    summary = train_palindrome(spec, tmp_path)
    assert summary["eval_final"]["accuracy"] >= 0.99
    for name in ("metrics.csv", "eval.csv", "timing.csv", "summary.json", "model.pt"):
        assert (tmp_path / name).exists()
    assert not (tmp_path / "resume.pt").exists()
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert header == "step,loss,accuracy,grad_norm"


def test_same_spec_and_seed_give_identical_metrics(tmp_path):
    spec = PalindromeSpec(model="lstm", input_length=6, steps=120, eval_every=40, **FAST)
    train_palindrome(spec, tmp_path / "a")
    train_palindrome(spec, tmp_path / "b")
    for name in ("metrics.csv", "eval.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = train_palindrome(PalindromeSpec(model="lstm", input_length=6, steps=120,
                                            eval_every=40, seed=1, **FAST), tmp_path / "c")
    assert (tmp_path / "c" / "metrics.csv").read_bytes() != (tmp_path / "a" / "metrics.csv").read_bytes()
    assert other["run_id"] != spec.run_id()


def test_summary_says_where_the_wall_time_went(tmp_path):
    """phases_s: the unit's setup, steps, evaluation (health inside it), logs and
    checkpoints, summed in the process; together no more than the call took, and the
    phases a run of this shape has are all there."""
    spec = PalindromeSpec(model="lstm", input_length=6, steps=120, eval_every=40, **FAST)
    start = time.perf_counter()
    summary = train_palindrome(spec, tmp_path)
    took = time.perf_counter() - start
    phases = summary["phases_s"]
    assert {"setup", "steps", "evaluation", "health", "logs"} <= set(phases)
    assert all(v >= 0 for v in phases.values())
    assert phases["health"] <= phases["evaluation"]
    assert sum(v for k, v in phases.items() if k != "health") <= took


def _cli(*args):
    return [sys.executable, "-m", "rnnrepro", *args]


@pytest.mark.parametrize("kind", ["palindrome", "text"])
def test_killed_run_resumes_from_its_checkpoint_and_ends_the_same(kind, tmp_path, corpus_path):
    if kind == "palindrome":
        args = ["train", "palindrome", "--model", "lstm", "--optimizer", "adam", "--input-length", "8",
                "--steps", "1500", "--hidden", "48",
                "--eval-every", "500", "--eval-size", "500", "--checkpoint-every", "100",
                "--device", "cpu"]
    else:
        args = ["train", "text", "--corpus", str(corpus_path), "--steps", "400", "--hidden", "32",
                "--eval-every", "100", "--checkpoint-every", "50", "--sample-every", "100",
                "--sample-first", "25", "--device", "cpu"]
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    subprocess.run(_cli(*args, "--out", str(clean)), check=True, capture_output=True)

    proc = subprocess.Popen(_cli(*args, "--out", str(killed)), stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (killed / "resume.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "the run finished before it could be killed"
    ck = torch.load(killed / "resume.pt", weights_only=False)
    resumed_at = ck["state"]["step"]
    assert resumed_at > 0

    again = subprocess.run(_cli(*args, "--out", str(killed)), check=True, capture_output=True,
                           text=True)
    assert f"from step {resumed_at}" in again.stderr
    for name in ("metrics.csv", "eval.csv") + (("samples.jsonl",) if kind == "text" else ()):
        assert (clean / name).read_bytes() == (killed / name).read_bytes(), name
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["resumed_from"] == [resumed_at]
    assert not (killed / "resume.pt").exists()


# Every optimizer and every field of its schedule, for each kind: a run stopped right after
# a checkpoint and continued ends byte for byte where an uninterrupted one does.
TINY_PAL = dict(input_length=4, steps=60, hidden=12, batch=16, eval_every=20, eval_size=100)
TINY_TXT = dict(steps=60, hidden=16, batch=8, seq_length=12, eval_every=20, sample_every=20,
                sample_first=10, samples_per_step=1)
RESUME_CASES = {
    "rnn-rmsprop-momentum": PalindromeSpec(model="rnn", optimizer="rmsprop", momentum=0.5, **TINY_PAL),
    "rnn-sgd-momentum": PalindromeSpec(model="rnn", optimizer="sgd", momentum=0.9, lr=0.05, **TINY_PAL),
    "lstm-adam": PalindromeSpec(model="lstm", optimizer="adam", **TINY_PAL),
    "lstm-sgd": PalindromeSpec(model="lstm", optimizer="sgd", lr=0.1, **TINY_PAL),
    "text-rmsprop-decay": TextSpec(optimizer="rmsprop", lr_decay=0.5, lr_step=15, **TINY_TXT),
    "text-adam-decay": TextSpec(optimizer="adam", lr_decay=0.7, lr_step=25, **TINY_TXT),
    "text-sgd-momentum-decay": TextSpec(optimizer="sgd", momentum=0.9, lr=0.5, lr_decay=0.5,
                                        lr_step=10, **TINY_TXT),
    "text-dropout-decay": TextSpec(layers=2, dropout=0.3, lr_decay=0.5, lr_step=15, **TINY_TXT),
}


@pytest.mark.parametrize("stop_at", [1, 2])
@pytest.mark.parametrize("case", RESUME_CASES)
def test_a_run_continued_from_any_checkpoint_ends_as_if_never_stopped(case, stop_at, tmp_path,
                                                                     monkeypatch, corpus):
    from .train_utils import interrupted

    spec = RESUME_CASES[case]
    execution = Execution(device="cpu", checkpoint_every=15)

    def run(out):
        if spec.kind == "text":
            return _train_text(spec, corpus, out, execution)
        return _train_palindrome(spec, out, execution)

    run(tmp_path / "clean")
    with interrupted(monkeypatch, after_checkpoints=stop_at):
        run(tmp_path / "stopped")
    assert (tmp_path / "stopped" / "resume.pt").exists()
    summary = run(tmp_path / "stopped")
    assert summary["resumed_from"] == [15 * stop_at]
    names = ["metrics.csv", "eval.csv"]
    names += ["samples.jsonl", "best_samples.jsonl"] if spec.kind == "text" else []
    for name in names:
        assert (tmp_path / "clean" / name).read_bytes() == (tmp_path / "stopped" / name).read_bytes(), name
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True)["model"] for d in ("clean", "stopped"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_nan_loss_stops_the_run_naming_run_and_step(tmp_path):
    spec = PalindromeSpec(model="rnn", input_length=5, steps=100, **FAST)
    with pytest.raises(Diverged, match=rf"run {spec.run_id()}: loss is nan at step 37"):
        train_palindrome(spec, tmp_path, inject_nan_at=37)
    assert not (tmp_path / "summary.json").exists()
    res = subprocess.run(_cli("train", "palindrome", "--steps", "60", "--eval-size", "100",
                              "--inject-nan-at", "5", "--device", "cpu", "--out", str(tmp_path)),
                         capture_output=True, text=True)
    assert res.returncode == 1 and "loss is nan at step 5" in res.stderr


@pytest.mark.parametrize("kind", ["palindrome", "text", "phased", "frequency"])
def test_a_folder_holding_another_runs_model_stops_a_run_of_any_kind(kind, tmp_path):
    from rnnrepro.config.kinds import SPECS
    from rnnrepro.files import torch_save
    from rnnrepro.run.folders import FolderError, own_folder

    spec = SPECS[kind]()
    torch_save({"kind": kind, "spec": spec.to_dict(), "step": 1, "model": {}}, tmp_path / "model.pt")
    with pytest.raises(FolderError, match=rf"holds the results of run {spec.run_id()} \(model.pt\)"):
        own_folder(tmp_path, "another-run")
    own_folder(tmp_path, spec.run_id())  # its own model.pt: the run may write there
    assert (tmp_path / "model.pt").exists()


def test_text_run_outputs(tmp_path, corpus_path):
    spec = TextSpec(steps=60, hidden=32, eval_every=30, sample_every=30, sample_first=10,
                    samples_per_step=2, sample_temperatures=(0.5, 2.0), temperature=2.0)
    summary = train_text(spec, corpus_path, tmp_path)
    assert summary["corpus"]["characters"] == 540_241 and summary["corpus"]["distinct"] == 87
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best.pt", "step_000010.pt", "step_000030.pt", "step_000060.pt"]
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 3 * 2 * 3  # steps × samples × (greedy, T=0.5, T=2)
    assert all(len(r["text"]) == 30 for r in rows)
    evals = (tmp_path / "eval.csv").read_text().splitlines()
    assert evals[0] == "step,loss,accuracy,bpc" and len(evals) == 1 + 3
    # best.pt: the weights of the lowest held-out loss after step 0, sampled as a sample step is
    losses = {int(r.split(",")[0]): float(r.split(",")[1]) for r in evals[2:]}
    best_step = min(losses, key=losses.get)
    assert summary["eval_lowest_loss"]["step"] == best_step
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    same = torch.load(tmp_path / "checkpoints" / f"step_{best_step:06d}.pt", weights_only=True)
    assert best["step"] == best_step and all(
        torch.equal(best["model"][k], same["model"][k]) for k in same["model"])
    best_rows = [json.loads(line) for line in (tmp_path / "best_samples.jsonl").read_text().splitlines()]
    assert best_rows == [r for r in rows if r["step"] == best_step]


def test_text_training_temperature_divides_the_logits():
    import torch.nn.functional as F

    from rnnrepro.data.corpus import Corpus
    from rnnrepro.train.text import TextTask

    corpus = Corpus("abcdefghij" * 100)
    torch.manual_seed(0)
    task = TextTask(TextSpec(temperature=2.0, hidden=8, seq_length=5), torch.device("cpu"), corpus)
    x, y = corpus.batch(4, 5, torch.Generator().manual_seed(0))
    loss, _ = task.loss(x, y)
    logits, _ = task.model(x)
    assert torch.allclose(loss, F.cross_entropy((logits / 2.0).flatten(0, 1), y.flatten()))


@pytest.mark.parametrize("field,value,match", [
    ("steps", 0, "steps must be ≥ 1"),
    ("input_length", -1, "input_length must be ≥ 1"),
    ("model", "gru", "model must be one of"),
    ("optimizer", "adagrad", "optimizer must be one of"),
    ("lr", 0.0, "lr must be a positive number"),
    ("batch", "64", "batch must be a whole number, got .64."),
    ("init", "zeros", "init must be one of"),
])
def test_bad_palindrome_spec_names_the_field(field, value, match):
    with pytest.raises(SpecError, match=match):
        PalindromeSpec(**{field: value})


def test_bad_text_spec_and_unknown_keys():
    with pytest.raises(SpecError, match="temperature must be finite and > 0"):
        TextSpec(temperature=0.0)
    with pytest.raises(SpecError, match="sample_temperatures must be finite and > 0"):
        TextSpec(sample_temperatures=(1.0, -1.0))
    with pytest.raises(SpecError, match=r"unknown palindrome spec keys \['hiden'\]"):
        PalindromeSpec.from_dict({"hiden": 12})


def test_run_id_covers_results_not_execution():
    base = PalindromeSpec()
    assert PalindromeSpec(lr=0.01).run_id() != base.run_id()
    # where and how a run is computed is not part of the spec at all
    execution = {f for f in Execution().to_dict()}
    assert not execution & set(base.to_dict()) and not execution & set(TextSpec().to_dict())
    with pytest.raises(SpecError, match=r"unknown palindrome spec keys \['device'\]"):
        PalindromeSpec.from_dict({"device": "cpu"})
    assert base.run_id().startswith("lstm-rmsprop-len10-seed0-")
    assert PalindromeSpec(lr=1).lr == 1.0 and PalindromeSpec(lr=1).run_id() == PalindromeSpec(lr=1.0).run_id()


@pytest.mark.parametrize("field,value,match", [
    ("device", "tpu", "device must be one of"),
    ("threads", 0, "threads must be ≥ 1"),
    ("impl", "cudagraph", "impl must be one of"),
    ("jobs_per_gpu", 0, "jobs_per_gpu must be ≥ 1"),
    ("runs_per_job", -1, "runs_per_job must be ≥ 0"),
    ("checkpoint_every", 1.5, "checkpoint_every must be a whole number, got 1.5"),
])
def test_bad_execution_names_the_field(field, value, match):
    with pytest.raises(SpecError, match=match):
        Execution(**{field: value})


def test_runs_per_job_auto_is_one_on_cpu_and_many_on_cuda():
    assert Execution().runs_cap("cpu") == 1
    assert Execution().runs_cap("cuda") == Execution.RUNS_PER_JOB_CUDA > 1
    assert Execution().runs_cap("cuda", in_cluster_job=True) == 1
    assert Execution(runs_per_job=3).runs_cap("cpu") == Execution(runs_per_job=3).runs_cap("cuda") == 3


def test_gradient_probe_shows_vanishing_gradients_in_the_rnn():
    from rnnrepro.analysis.gradients import hidden_grad_norms
    from rnnrepro.data.palindromes import palindrome_batch
    from rnnrepro.models.lstm import LSTM
    from rnnrepro.models.rnn import VanillaRNN

    x, y = palindrome_batch(128, 40, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    rnn = hidden_grad_norms(VanillaRNN(64), x, y)
    assert rnn.shape == (40,) and torch.isfinite(rnn).all()
    assert rnn[0] < 1e-3 * rnn[-1]  # 39 steps back, the RNN's gradient has all but vanished
    torch.manual_seed(0)
    lstm = hidden_grad_norms(LSTM(64), x, y)
    assert lstm[0] / lstm[-1] > rnn[0] / rnn[-1]


def test_bad_corpus_is_a_clear_error_from_the_training_command(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Es war einmal ein König. ".encode("latin-1") * 200)
    short = tmp_path / "short.txt"
    short.write_text("Once upon a time. " * 3)
    for corpus, expect in ((latin1, "is not UTF-8"), (short, "too short for seq_length 30")):
        res = subprocess.run(_cli("train", "text", "--corpus", str(corpus), "--steps", "5",
                                  "--device", "cpu", "--out", str(tmp_path / "out")),
                             capture_output=True, text=True)
        assert res.returncode == 1 and expect in res.stderr, res.stderr
        assert "Traceback" not in res.stderr


def test_deterministic_execution_changes_no_cpu_number_and_is_recorded(tmp_path):
    spec = PalindromeSpec(model="lstm", input_length=4, steps=40, eval_size=100)
    plain = _train_palindrome(spec, tmp_path / "a", Execution(device="cpu"))
    try:
        strict = _train_palindrome(spec, tmp_path / "b", Execution(device="cpu", deterministic=True))
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == (tmp_path / "b" / "metrics.csv").read_bytes()
    assert plain["run_id"] == strict["run_id"]  # how a run is computed is not part of its id
    assert strict["precision"]["deterministic_algorithms"] and strict["precision"]["cudnn_deterministic"]
    assert not plain["precision"]["deterministic_algorithms"]
    assert strict["execution"]["deterministic"] is True
    assert {"float32_matmul_precision", "cuda_matmul_fp32", "cudnn_fp32",
            "cudnn_benchmark"} <= set(plain["precision"])


def _scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every event
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_events_show_the_runs_rows_and_change_nothing(tmp_path):
    """execution.tensorboard: each run's metrics.csv and eval.csv rows as TensorBoard scalars
    under <folder>/<run id>/, written as it trains; the CSV files are byte for byte those of a
    run without them. A run that failed and resumed shows each step once, the resumed values."""
    import pandas as pd

    spec = PalindromeSpec(model="lstm", input_length=4, steps=60, eval_every=20, eval_size=100)
    plain = _train_palindrome(spec, tmp_path / "plain", Execution(device="cpu"))
    live = Execution(device="cpu", tensorboard=str(tmp_path / "tb"), checkpoint_every=20)
    with pytest.raises(Diverged):  # the first attempt stops at step 50; resume.pt is at 40
        _train_palindrome(spec, tmp_path / "live", live, inject_nan_at=50)
    assert (tmp_path / "live" / "resume.pt").exists()
    _train_palindrome(spec, tmp_path / "live", live)
    for name in ("metrics.csv", "eval.csv"):
        assert (tmp_path / "live" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()
    assert [p.name for p in (tmp_path / "tb").iterdir()] == [plain["run_id"]]
    assert len(list((tmp_path / "tb" / plain["run_id"]).glob("events.out.tfevents.*"))) == 2
    got = _scalars(tmp_path / "tb" / plain["run_id"])
    assert set(got) == {"train/loss", "train/accuracy", "train/grad_norm", "eval/loss",
                        "eval/accuracy", "eval/saturation", "eval/w_h_norm"}
    for table, prefix in (("metrics.csv", "train"), ("eval.csv", "eval")):
        rows = pd.read_csv(tmp_path / "plain" / table)
        for column in rows.columns.drop("step"):
            steps, values = zip(*got[f"{prefix}/{column}"])
            assert list(steps) == rows["step"].tolist(), (table, column)  # each step once
            assert values == pytest.approx(rows[column].tolist(), rel=1e-6)  # float32 events


def test_tensorboard_without_its_package_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    spec = PalindromeSpec(model="rnn", input_length=4, steps=10, eval_size=100)
    with pytest.raises(RuntimeError, match=r"execution.tensorboard needs the tensorboard package"):
        _train_palindrome(spec, tmp_path, Execution(device="cpu", tensorboard=str(tmp_path / "tb")))
    assert not (tmp_path / "metrics.csv").exists() and not (tmp_path / "tb").exists()


def test_run_ids_name_every_training_field_that_departs_from_the_defaults():
    """Runs that train differently can be told apart by name in results/runs/: the readable
    part carries each training field off its default (what is only recorded, such as
    eval_every, stays in the hash alone)."""
    ids = {init: PalindromeSpec(model="lstm", optimizer="adam", init=init, init_std=std).run_id()
           for init, std in (("default", 0.01), ("xavier", 0.01), ("normal", 1.0))}
    assert ids["default"].startswith("lstm-adam-len10-seed0-") and ids["default"].count("-") == 4
    assert ids["xavier"].startswith("lstm-adam-len10-seed0-initxavier-")
    assert ids["normal"].startswith("lstm-adam-len10-seed0-initnormal-initstd1-")
    long = PalindromeSpec(model="rnn", lr=0.01, steps=20_000, eval_every=50).run_id()
    assert long.startswith("rnn-rmsprop-len10-seed0-lr0.01-steps20000-") and "eval" not in long
    for lr in (1e38, 1e-5):  # only the characters of the workflow's run_id wildcard
        assert re.fullmatch(RUN_ID, PalindromeSpec(lr=lr).run_id())
    assert PalindromeSpec(lr=1e38).run_id().startswith("lstm-rmsprop-len10-seed0-lr1e38-")
    text = TextSpec(temperature=0.5, sample_temperatures=(0.5, 1.0), dropout=0.1).run_id()
    assert text.startswith("text-rmsprop-T0.5-seed0-dropout0.1-") and "sample" not in text
