"""Bad files and bad values given to the command line: each is refused with a message that
names the cause, without a traceback, and nothing already computed is lost. A checkpoint
never runs code when it is loaded."""

import json
import pickle
import subprocess
import sys

import pytest
import torch

from rnnrepro.io import CheckpointError, load_checkpoint
from rnnrepro.sampling import pick
from rnnrepro.spec import Execution, PalindromeSpec, TextSpec, check_temperature
from rnnrepro.train import PalindromeTask, fit, train_text

CPU = Execution(device="cpu", checkpoint_every=20)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rnnrepro", *args], capture_output=True, text=True)


class _Evil:
    """A pickle that, loaded without weights_only, writes a marker file (harmless)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def _evil_checkpoint(path, marker, protocol=2):
    with open(path, "wb") as f:
        pickle.dump({"kind": "text", "spec": {}, "model": {}, "step": 1, "vocab": ["a"],
                     "payload": _Evil(marker)}, f, protocol=protocol)
    return path


@pytest.fixture(scope="module")
def text_model(tmp_path_factory, corpus_path):
    out = tmp_path_factory.mktemp("text")
    train_text(TextSpec(steps=20, hidden=16, eval_every=20, sample_every=20, sample_first=0,
                        samples_per_step=1), corpus_path, out, Execution(device="cpu"))
    return out / "model.pt"


@pytest.mark.parametrize("protocol,expect", [
    (2, "holds Python objects (exec), not only tensors and plain values: loading it "
        "could run code, so it is refused"),
    (4, "cannot be read as a checkpoint: it is not a file of tensors and plain values"),
])
def test_a_crafted_checkpoint_never_runs_code(tmp_path, protocol, expect):
    marker = tmp_path / "marker"
    evil = _evil_checkpoint(tmp_path / "evil.pt", marker, protocol)
    for args in (["complete", "--checkpoint", str(evil), "--prompt", "a", "--out", str(tmp_path / "c.jsonl")],
                 ["sample", "--checkpoint", str(evil), "--out", str(tmp_path / "s.jsonl")]):
        res = _cli(*args)
        assert res.returncode == 1 and expect in res.stderr, res.stderr
        assert str(evil) in res.stderr and "Traceback" not in res.stderr
    assert not marker.exists()
    with open(evil, "rb") as f:  # the file does run code when loaded the unsafe way
        pickle.load(f)
    assert marker.read_text() == "ran"


def test_a_crafted_resume_checkpoint_is_set_aside_and_runs_no_code(tmp_path):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    run.mkdir()
    _evil_checkpoint(run / "resume.pt", marker)
    spec = PalindromeSpec(model="rnn", input_length=4, steps=40, eval_size=100)
    summary = fit(spec, run, lambda d: PalindromeTask(spec, d), CPU)
    assert summary["resumed_from"] == [] and not marker.exists()
    assert (run / "resume.pt.unreadable").exists()


@pytest.mark.parametrize("content", [b"", b"garbage, not a zip", "truncate"])
def test_a_corrupt_resume_checkpoint_is_set_aside_and_the_run_starts_over(tmp_path, content, caplog):
    spec = PalindromeSpec(model="rnn", input_length=4, steps=60, eval_size=100)
    run = tmp_path / "run"
    with pytest.raises(Exception, match="at step 45"):
        fit(spec, run, lambda d: PalindromeTask(spec, d), CPU, inject_nan_at=45)
    good = (run / "resume.pt").read_bytes()
    (run / "resume.pt").write_bytes(good[: len(good) // 2] if content == "truncate" else content)
    with caplog.at_level("WARNING", logger="rnnrepro"):
        summary = fit(spec, run, lambda d: PalindromeTask(spec, d), CPU)
    assert summary["resumed_from"] == []
    assert f"{run / 'resume.pt'} cannot be read as a checkpoint" in caplog.text
    assert "moved to resume.pt.unreadable, and the run starts over" in caplog.text
    assert (run / "resume.pt.unreadable").exists() and not (run / "resume.pt").exists()
    clean = fit(spec, tmp_path / "clean", lambda d: PalindromeTask(spec, d), CPU)
    assert (run / "metrics.csv").read_bytes() == (tmp_path / "clean" / "metrics.csv").read_bytes()
    assert clean["run_id"] == summary["run_id"]


@pytest.mark.parametrize("make,expect", [
    (lambda p: p.write_bytes(b""), "cannot be read as a checkpoint (0 bytes"),
    (lambda p: p.write_text("hello"), "cannot be read as a checkpoint"),
    (lambda p: torch.save(torch.zeros(3), p), "holds a Tensor, not a dict"),
    (lambda p: torch.save({"kind": "text"}, p), "it lacks ['spec', 'model', 'step']"),
    (lambda p: torch.save({"kind": "palindrome", "spec": {}, "model": {}, "step": 1}, p),
     "is a 'palindrome' checkpoint, not a text model's"),
])
def test_complete_and_sample_name_a_bad_checkpoint(tmp_path, make, expect):
    path = tmp_path / "bad.pt"
    make(path)
    for cmd in (["complete", "--prompt", "a"], ["sample"]):
        res = _cli(*cmd, "--checkpoint", str(path), "--out", str(tmp_path / "out.jsonl"))
        assert res.returncode == 1, res.stderr
        assert expect in res.stderr and str(path) in res.stderr and "Traceback" not in res.stderr
        assert not (tmp_path / "out.jsonl").exists()


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "x"])
def test_temperatures_must_be_finite_and_positive_on_the_command_line(tmp_path, text_model, value):
    for cmd in (["complete", "--prompt", "a", "--methods", "random", "--temperature", value],
                ["sample", "--temperatures", "1", value]):
        res = _cli(*cmd, "--checkpoint", str(text_model), "--out", str(tmp_path / "o.jsonl"))
        assert res.returncode == 2 and "temperature" in res.stderr and value in res.stderr, res.stderr
        assert not (tmp_path / "o.jsonl").exists()


def test_sampling_refuses_a_temperature_that_is_not_one():
    logits = torch.zeros(2, 5)
    for t in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite and > 0"):
            pick(logits, "random", t)
        with pytest.raises(ValueError, match="finite and > 0"):
            check_temperature(t)
    assert pick(logits, "greedy", None).tolist() == [0, 0]  # greedy is asked for by name
    for bad in (dict(temperature=float("inf")), dict(sample_temperatures=(1.0, float("nan")))):
        with pytest.raises(ValueError, match="finite and > 0"):
            TextSpec(**bad)


def test_the_text_model_still_samples_and_completes(tmp_path, text_model):
    res = _cli("complete", "--checkpoint", str(text_model), "--prompt", "Once", "--length", "5",
               "--methods", "greedy", "random", "--temperature", "0.5", "--out", str(tmp_path / "c.jsonl"))
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert [r["method"] for r in rows] == ["greedy", "random"] and all(len(r["completion"]) == 5 for r in rows)


@pytest.mark.parametrize("args,expect", [
    (["--prompt", ""], "a prompt must not be empty"),
    (["--prompt", "a", "--length", "0"], "--length: must be ≥ 1, got 0"),
    (["--prompt", "a", "--length", "-3"], "--length: must be ≥ 1, got -3"),
    (["--prompt", "a", "--chunk", "0"], "--chunk: must be ≥ 1, got 0"),
    (["--prompt", "a", "--seed", str(2 ** 70)], "a seed must be below 2**63"),
    (["--prompt", "a", "--seed", "x"], "a whole number is wanted, got 'x'"),
])
def test_complete_refuses_bad_values_up_front(tmp_path, text_model, args, expect):
    res = _cli("complete", "--checkpoint", str(text_model), *args, "--out", str(tmp_path / "o.jsonl"))
    assert res.returncode == 2 and expect in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "o.jsonl").exists()


def test_a_prompt_outside_the_vocabulary_is_named(tmp_path, text_model, corpus_path):
    res = _cli("complete", "--checkpoint", str(text_model), "--prompt", "Schloß ☃",
               "--out", str(tmp_path / "o.jsonl"))
    assert res.returncode == 1 and "prompt 'Schloß ☃' has characters that are not in the vocabulary" in res.stderr
    # and the workflow's corpus_stats job checks the report's prompts as soon as the corpus is here
    res = _cli("corpus-stats", "--corpus", str(corpus_path), "--prompt", "Once", "☃ snow",
               "--out", str(tmp_path / "stats.json"))
    assert res.returncode == 1 and "prompt '☃ snow' has characters that are not in the corpus: ['☃']" in res.stderr
    assert not (tmp_path / "stats.json").exists()


def test_a_spec_file_must_be_a_json_object(tmp_path):
    for text, expect in (("[1, 2]", "a JSON object of spec fields is wanted, got a list"),
                         ("{nope", "not JSON")):
        (tmp_path / "spec.json").write_text(text)
        res = _cli("train", "palindrome", "--spec", str(tmp_path / "spec.json"), "--device", "cpu",
                   "--out", str(tmp_path / "run"))
        assert res.returncode == 1 and expect in res.stderr and "Traceback" not in res.stderr


def test_one_character_samples(tmp_path, corpus_path):
    spec = TextSpec(steps=10, hidden=8, eval_every=10, sample_every=10, sample_first=0,
                    samples_per_step=2, sample_length=1)
    train_text(spec, corpus_path, tmp_path, Execution(device="cpu"))
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert rows and all(len(r["text"]) == 1 and r["text"] == r["first"] for r in rows)


@pytest.mark.parametrize("content,expect", [
    ("{not json", "not a readable run summary"),
    ("[]", "not a run summary of this project"),
    ('{"run_id": "other", "kind": "palindrome", "spec": {}, "eval_final": {}, "wall_seconds": 1}',
     "is the summary of run other, not of"),
])
def test_a_bad_summary_is_named_when_read(tmp_path, content, expect):
    from rnnrepro.aggregate import read_summary

    run = tmp_path / "rnn-x"
    run.mkdir()
    (run / "summary.json").write_text(content)
    with pytest.raises(ValueError, match="summary") as err:
        read_summary(run / "summary.json")
    assert expect in str(err.value) and str(run / "summary.json") in str(err.value)
