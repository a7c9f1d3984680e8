"""Bad files and bad values given to the command line: each is refused with a message that
names the cause, without a traceback, and nothing already computed is lost. A checkpoint
never runs code when it is loaded."""

import json
import pickle
import subprocess
import sys

import pytest
import torch

from rnnrepro.config.spec import Execution, PalindromeSpec, TextSpec, check_temperature
from rnnrepro.files import CheckpointError, load_checkpoint
from rnnrepro.models.sampling import pick
from rnnrepro.train.loop import fit
from rnnrepro.train.palindrome import PalindromeTask
from rnnrepro.train.text import train_text

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


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.pt")


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
    res = _cli("complete", "--checkpoint", str(text_model), "--length", "5", "--methods", "greedy",
               "random", "--temperature", "0.5", "--out", str(tmp_path / "c.jsonl"), "--", "Once")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert [r["method"] for r in rows] == ["greedy", "random"]
    assert all(len(r["completion"]) == 5 for r in rows)


def test_prompts_that_look_like_options_are_completed_as_prompts(tmp_path, text_model):
    """The workflow passes the prompts after --: one that looks like a flag is a prompt too,
    and none before it is lost."""
    res = _cli("complete", "--checkpoint", str(text_model), "--length", "3", "--out",
               str(tmp_path / "c.jsonl"), "--", "Once", "--length 9", "-x")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["Once", "--length 9", "-x"]
    assert all(len(r["completion"]) == 3 for r in rows)


def test_a_value_that_looks_like_a_flag_reaches_training_as_a_value():
    """A spec's and an execution's values reach `rnnrepro train` joined to their flags."""
    from rnnrepro.cli import build_parser
    from rnnrepro.config.studies import cli_args

    execution = Execution(tensorboard="-results/tb")
    args = build_parser().parse_args(["train", "palindrome", *cli_args(execution), "--out", "o"])
    assert args.tensorboard == "-results/tb" and args.numerics == "native"


def test_one_character_samples(tmp_path, corpus_path):
    spec = TextSpec(steps=10, hidden=8, eval_every=10, sample_every=10, sample_first=0,
                    samples_per_step=2, sample_length=1)
    train_text(spec, corpus_path, tmp_path, Execution(device="cpu"))
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert rows and all(len(r["text"]) == 1 and r["text"] == r["first"] for r in rows)


def test_the_crafted_pickle_of_the_bad_input_table_does_run_code_when_loaded_unsafely(tmp_path):
    """So its rows prove something: loaded the unsafe way, the file runs its code."""
    marker = tmp_path / "marker"
    evil = _evil_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError, match="could run code"):
        load_checkpoint(evil)
    assert not marker.exists()
    with open(evil, "rb") as f:
        pickle.load(f)
    assert marker.read_text() == "ran"


def test_a_resume_checkpoint_from_another_corpus_is_set_aside(tmp_path, corpus_path, caplog):
    spec = TextSpec(steps=30, hidden=8, eval_every=10, sample_every=10, sample_first=0,
                    samples_per_step=1, seq_length=20, batch=4)
    run = tmp_path / "run"
    other = tmp_path / "other.txt"
    other.write_text(corpus_path.read_text(encoding="utf-8")[:200_000], encoding="utf-8")
    with pytest.raises(Exception, match="at step 15"):
        train_text(spec, other, run, Execution(device="cpu", checkpoint_every=10), inject_nan_at=15)
    assert (run / "resume.pt").exists()
    with caplog.at_level("WARNING", logger="rnnrepro"):
        summary = train_text(spec, corpus_path, run, Execution(device="cpu", checkpoint_every=10))
    assert summary["resumed_from"] == [] and (run / "resume.pt.unreadable").exists()
    assert "was written by this run on other data (corpus_sha256" in caplog.text
    assert "continuing it would mix two corpora" in caplog.text
    clean = train_text(spec, corpus_path, tmp_path / "clean", Execution(device="cpu"))
    assert (run / "metrics.csv").read_bytes() == (tmp_path / "clean" / "metrics.csv").read_bytes()
    assert clean["run_id"] == summary["run_id"]


def test_a_run_trained_again_in_its_folder_never_shows_its_old_summary(tmp_path):
    spec = PalindromeSpec(model="rnn", input_length=4, steps=40, eval_size=100)
    run = tmp_path / "run"
    fit(spec, run, lambda d: PalindromeTask(spec, d), CPU)
    assert (run / "summary.json").exists()
    with pytest.raises(Exception, match="at step 30"):  # trained again, and it fails half way
        fit(spec, run, lambda d: PalindromeTask(spec, d), CPU, inject_nan_at=30)
    assert not (run / "summary.json").exists()  # not the old one beside the new metrics
    assert (run / "resume.pt").exists()


def test_a_full_disk_keeps_the_old_file_and_says_so(tmp_path, monkeypatch):
    from rnnrepro import files as rio

    path = tmp_path / "model.pt"
    rio.torch_save({"v": torch.ones(2)}, path)
    old = path.read_bytes()

    def short_write(obj, f):  # what torch.save says when the disk fills under its zip writer
        f.write(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    monkeypatch.setattr(torch, "save", short_write)
    with pytest.raises(rio.WriteError) as err:
        rio.torch_save({"v": torch.zeros(2)}, path)
    assert f"could not write {path} ([enforce fail at inline_container.cc" in str(err.value)
    assert "MiB free there): the disk or quota is full" in str(err.value)
    assert path.read_bytes() == old and [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_complete_run_is_not_trained_again_by_hand(tmp_path):
    """`rnnrepro train` into the folder of the same run, complete for this code: nothing is
    retrained or rewritten (Snakemake removes a job's outputs before it runs it)."""
    args = ("train", "palindrome", "--model", "rnn", "--input-length", "4", "--steps", "40",
            "--eval-size", "100", "--device", "cpu", "--out", str(tmp_path / "run"))
    assert _cli(*args).returncode == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    res = _cli(*args, "--impl", "loop")
    assert res.returncode == 0 and "is already complete" in res.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == before
