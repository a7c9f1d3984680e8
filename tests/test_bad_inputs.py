"""Bad inputs and faults, one table row each, through the command line the workflow's rules
call (in this process: `rnnrepro.cli.main`). Every row asserts

- the exit status (2: a bad argument, refused before anything is read; 1: a bad file or
  state, named when it is read),
- that the message names the cause (and, for a file, its path), with no traceback,
- that nothing finished changed: the module's finished runs and tables, and every file the
  row's own folder held before, are byte for byte as they were, and nothing was added.

The README's "When things go wrong" section is written from this table.
"""

import hashlib
import json
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from rnnrepro import files as rio
from rnnrepro.cli import main
from rnnrepro.config.spec import PalindromeSpec, TextSpec

PAL = PalindromeSpec(model="rnn", optimizer="rmsprop", input_length=4, steps=40, eval_size=100,
                     eval_every=20, log_every=10)
TXT = TextSpec(steps=20, hidden=16, eval_every=20, sample_every=20, sample_first=0,
               samples_per_step=1, seq_length=20, batch=8)


def _spec_file(path, spec):
    path.write_text(json.dumps(spec.to_dict()))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory, corpus_path):
    """Finished results that no row may change: a palindrome run, a text run, their study
    tables, a Snakemake-style benchmark file and the compute table."""
    root = tmp_path_factory.mktemp("finished")
    w = {"root": root, "corpus": root / "corpus.txt"}
    shutil.copy(corpus_path, w["corpus"])
    w["pal"] = root / "runs" / PAL.run_id()
    w["txt"] = root / "runs" / TXT.run_id()
    assert main(["train", "palindrome", "--spec", str(_spec_file(root / "pal.json", PAL)),
                 "--device", "cpu", "--checkpoint-every", "20", "--out", str(w["pal"])]) == 0
    assert main(["train", "text", "--spec", str(_spec_file(root / "txt.json", TXT)), "--device", "cpu",
                 "--corpus", str(w["corpus"]), "--out", str(w["txt"])]) == 0
    w["tables"] = root / "tables"
    for study, run in (("rnn_rmsprop", w["pal"]), ("text_temperature", w["txt"])):
        assert main(["aggregate", "--study", study, "--runs", str(run),
                     "--out-dir", str(w["tables"] / "studies" / study)]) == 0
    w["bench"] = root / "bench.tsv"
    w["bench"].write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                          "1.5\t0:00:01\t300.1\t900.2\t280.0\t285.0\t0.1\t0.2\t90.0\t1.4\n")
    assert main(["compute-table", "--benchmarks", str(w["bench"]), "--summaries",
                 str(w["pal"] / "summary.json"), "--out", str(w["tables"] / "compute.csv")]) == 0
    (root / "pal.json").unlink()
    (root / "txt.json").unlink()
    return w


def snapshot(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


@dataclass
class Ctx:
    """What a row's setup works with: its own folder and the finished world (read only)."""

    tmp: Path
    w: dict

    def copy_run(self, name):
        """A copy of a finished run in this row's folder, to break (never the original)."""
        dst = self.tmp / "runs" / self.w[name].name
        shutil.copytree(self.w[name], dst)
        return dst

    def copy_tables(self):
        dst = self.tmp / "tables"
        shutil.copytree(self.w["tables"], dst)
        return dst

    def config_json(self):
        """A resolved config the report command takes (the order of checks puts the row's
        own fault first)."""
        return self.file("config.json", json.dumps({"studies": {}, "seeds": [0], "defaults": {},
                                                    "report": {}}))

    def file(self, name, content):
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
        return path

    def spec(self, spec, name="spec.json"):
        return _spec_file(self.tmp / name, spec)

    @property
    def out(self):
        return self.tmp / "out.jsonl"


class _Evil:
    """A pickle that, loaded without weights_only, would write a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def evil(c, protocol=2):
    path = c.tmp / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"kind": "text", "spec": {}, "model": {}, "step": 1, "vocab": ["a"],
                     "payload": _Evil(c.tmp.parent / f"{c.tmp.name}-ran")}, f, protocol=protocol)
    return path


def text_checkpoint(c, edit):
    ck = torch.load(c.w["txt"] / "model.pt", weights_only=True)
    edit(ck)
    path = c.tmp / "edited.pt"
    torch.save(ck, path)
    return path


def complete(ckpt, *args, prompt="Once"):
    """`complete` with its prompt after the options (after --, as the workflow passes them)."""
    return lambda c: ["complete", "--checkpoint", str(ckpt(c) if callable(ckpt) else ckpt), *args,
                      "--out", str(c.out), *(["--", prompt] if prompt is not None else [])]


def sample(ckpt, *args):
    return lambda c: ["sample", "--checkpoint", str(ckpt(c) if callable(ckpt) else ckpt), *args,
                      "--out", str(c.out)]


def text_model(c):
    return c.w["txt"] / "model.pt"


def train_pal(setup=None, *args, spec=PAL):
    def argv(c):
        out = c.tmp / "run"
        out.mkdir()
        if setup:
            setup(c, out)
        return ["train", "palindrome", "--spec", str(c.spec(spec)), "--device", "cpu",
                "--checkpoint-every", "20", *args, "--out", str(out)]
    return argv


def train_txt(corpus, *args, spec=TXT):
    return lambda c: ["train", "text", "--spec", str(c.spec(spec)), "--device", "cpu",
                      "--corpus", str(corpus(c)), *args, "--out", str(c.tmp / "run")]


def aggregate(kind, breaker):
    def argv(c):
        run = c.copy_run(kind)
        breaker(run)
        return ["aggregate", "--study", "s", "--runs", str(run), "--out-dir", str(c.tmp / "tables")]
    return argv


def rewrite(name, content):
    def brk(run):
        (run / name).unlink()
        if content is not None:
            (run / name).write_bytes(content) if isinstance(content, bytes) else (run / name).write_text(content)
    return brk


def edit_file(name, edit):
    """A run's file rewritten as `edit` makes its text (a new file: the original stays)."""
    def brk(run):
        text = (run / name).read_text()
        (run / name).unlink()
        (run / name).write_text(edit(text))
    return brk


def _line(text, n):
    """Line n (after the header: 1 is the first row) of a table, with its line break."""
    return text.splitlines(True)[n]


def summary_edit(edit):
    def brk(run):
        s = json.loads((run / "summary.json").read_text())
        edit(s)
        (run / "summary.json").unlink()
        (run / "summary.json").write_text(json.dumps(s))
    return brk


def compute(bench=None, summary=None):
    return lambda c: ["compute-table", "--benchmarks", str(bench(c) if bench else c.w["bench"]),
                      "--summaries", str(summary(c) if summary else c.w["pal"] / "summary.json"),
                      "--out", str(c.tmp / "compute.csv")]


def figure(breaker=None, name="fig01_rnn_rmsprop_loss"):
    def argv(c):
        tables = c.w["tables"]
        if breaker:
            tables = c.copy_tables()
            breaker(tables)
        return ["figure", name, "--tables", str(tables), "--out", str(c.tmp / "f.pdf"),
                str(c.tmp / "f.png")]
    return argv


def check_config(text):
    return lambda c: ["check-config", str(c.file("config.yaml", text))]


def valid_config(edit):
    import yaml

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config" / "test.yaml").read_text())
    edit(config)
    return check_config(yaml.safe_dump(config))


def resume_from(edit):
    """A resume.pt of PAL (from a run stopped at step 20), edited."""
    def setup(c, out):
        from rnnrepro.config.spec import Execution
        from rnnrepro.train.loop import fit
        from rnnrepro.train.palindrome import PalindromeTask

        scratch = c.tmp.parent / f"{c.tmp.name}-scratch"
        with pytest.raises(Exception, match="at step 25"):
            fit(PAL, scratch, lambda d: PalindromeTask(PAL, d), Execution(device="cpu", checkpoint_every=20),
                inject_nan_at=25)
        ck = torch.load(scratch / "resume.pt", weights_only=True)
        edit(ck)
        torch.save(ck, out / "resume.pt")
        shutil.rmtree(scratch)
    return setup


OTHER = PalindromeSpec(model="lstm", optimizer="adam", input_length=5, steps=40, eval_size=100)
BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
YAML_OK = "seeds: [0]\n"

# id, argv(ctx), exit status, what the message must say ({tmp}: the row's folder)
CASES = [
    # checkpoints handed to `complete` and `sample`: never run code, always named
    ("pickle-runs-code-complete", complete(evil), 1, "{tmp}/evil.pt holds Python objects (exec)"),
    ("pickle-runs-code-sample", sample(evil), 1, "loading it could run code, so it is refused"),
    ("pickle-protocol-4", complete(lambda c: evil(c, 4)), 1, "{tmp}/evil.pt cannot be read as a checkpoint"),
    ("checkpoint-empty", complete(lambda c: c.file("e.pt", b"")), 1, "{tmp}/e.pt cannot be read as a checkpoint (0 bytes"),
    ("checkpoint-garbage", sample(lambda c: c.file("g.pt", "hello")), 1, "{tmp}/g.pt cannot be read as a checkpoint"),
    ("checkpoint-truncated", complete(lambda c: c.file("t.pt", text_model(c).read_bytes()[:5000])), 1,
     "{tmp}/t.pt cannot be read as a checkpoint"),
    ("checkpoint-bare-tensor", complete(lambda c: (torch.save(torch.zeros(3), c.tmp / "b.pt"), c.tmp / "b.pt")[1]), 1,
     "holds a Tensor, not a dict"),
    ("checkpoint-missing-keys", sample(lambda c: (torch.save({"kind": "text"}, c.tmp / "k.pt"), c.tmp / "k.pt")[1]), 1,
     "it lacks ['spec', 'model', 'step']"),
    ("checkpoint-of-a-palindrome-run", complete(lambda c: c.w["pal"] / "model.pt"), 1,
     "is a 'palindrome' checkpoint, not a text model's"),
    ("checkpoint-missing", complete(lambda c: c.tmp / "nope.pt"), 1, "{tmp}/nope.pt: no such file"),
    ("checkpoint-is-a-folder", complete(lambda c: c.tmp), 1, "cannot be read as a checkpoint"),
    ("checkpoint-vocab-does-not-fit", complete(lambda c: text_checkpoint(c, lambda ck: ck["vocab"].pop())), 1,
     "{tmp}/edited.pt: its weights do not fit its own spec and vocabulary"),
    ("checkpoint-spec-does-not-fit", sample(lambda c: text_checkpoint(c, lambda ck: ck["spec"].update(hidden=32))), 1,
     "its weights do not fit"),
    # temperatures: finite and > 0 wherever a sampler is asked for one
    *[(f"complete-temperature-{v}", complete(text_model, "--methods", "random", "--temperature", v), 2,
       f"temperature must be finite and > 0, got {v}") for v in ("0", "-1")],
    *[(f"complete-temperature-{v}", complete(text_model, "--methods", "random", "--temperature", v), 2,
       f"temperature must be a finite number, got {v}") for v in ("nan", "inf")],
    ("complete-temperature-not-a-number", complete(text_model, "--temperature", "warm"), 2,
     "temperature must be a number, got 'warm'"),
    ("sample-temperature-0", sample(text_model, "--temperatures", "1", "0"), 2,
     "sample_temperatures must be finite and > 0, got 0"),
    ("sample-temperature-nan", sample(text_model, "--temperatures", "nan"), 2,
     "sample_temperatures[0] must be a finite number, got nan"),
    # values refused before the checkpoint is read
    ("prompt-empty", complete(text_model, prompt=""), 2, "prompts must be non-empty text, got ''"),
    ("prompt-nul", complete(text_model, prompt="a\x00b"), 2, "prompts must not hold a NUL character"),
    ("prompt-not-a-character", complete(text_model, prompt="a\udc80b"), 2, "prompts must not hold '\\udc80'"),
    ("length-0", complete(text_model, "--length", "0"), 2, "--length: completion_length must be ≥ 1, got 0"),
    ("length-negative", complete(text_model, "--length", "-3"), 2, "--length: completion_length must be ≥ 1, got -3"),
    ("chunk-0", complete(text_model, "--chunk", "0"), 2, "--chunk: chunk must be ≥ 1, got 0"),
    ("seed-huge", complete(text_model, "--seed", str(2 ** 70)), 2,
     "seed must be a whole number in [0, 2**63), got 1180591620717411303424"),
    ("seed-not-a-number", complete(text_model, "--seed", "x"), 2, "--seed: seed must be a whole number, got 'x'"),
    ("sample-n-0", sample(text_model, "--n", "0"), 2, "--n: samples_per_step must be ≥ 1, got 0"),
    ("sample-length-0", sample(text_model, "--length", "0"), 2, "--length: sample_length must be ≥ 1, got 0"),
    ("prompt-outside-vocabulary", complete(text_model, prompt="Schloß ☃"), 1,
     "prompt 'Schloß ☃' has characters that are not in the vocabulary of"),
    # training: the spec, the corpus, the output folder, the disk
    ("spec-file-a-list", lambda c: ["train", "palindrome", "--spec", str(c.file("s.json", "[1, 2]")),
                                    "--out", str(c.tmp / "r")], 1, "a JSON object of spec fields is wanted, got a list"),
    ("spec-file-not-json", lambda c: ["train", "palindrome", "--spec", str(c.file("s.json", "{nope")),
                                      "--out", str(c.tmp / "r")], 1, "{tmp}/s.json: not JSON"),
    ("spec-file-missing", lambda c: ["train", "palindrome", "--spec", str(c.tmp / "s.json"),
                                     "--out", str(c.tmp / "r")], 1, "--spec {tmp}/s.json: no such file"),
    ("spec-unknown-field", lambda c: ["train", "palindrome", "--spec", str(c.file("s.json", '{"hiden": 3}')),
                                      "--out", str(c.tmp / "r")], 1, "unknown palindrome spec keys ['hiden']"),
    ("steps-0", lambda c: ["train", "palindrome", "--steps", "0", "--out", str(c.tmp / "r")], 1, "steps must be ≥ 1, got 0"),
    ("lr-nan", lambda c: ["train", "palindrome", "--lr", "nan", "--out", str(c.tmp / "r")], 1, "--lr: lr must be a finite number, got nan"),
    ("lr-not-a-number", lambda c: ["train", "palindrome", "--lr", "fast", "--out", str(c.tmp / "r")], 1, "--lr: lr must be a number, got 'fast'"),
    ("spec-file-lr-as-text", lambda c: ["train", "palindrome", "--spec", str(c.file("s.json", '{"lr": "0.1"}')),
                                        "--out", str(c.tmp / "r")], 1, "--spec {tmp}/s.json: lr must be a number, got '0.1'"),
    ("spec-file-value-named-with-its-file", lambda c: ["train", "palindrome", "--spec", str(c.file("s.json", '{"batch": 0}')),
                                                       "--steps", "5", "--out", str(c.tmp / "r")], 1,
     "--spec {tmp}/s.json: batch must be ≥ 1, got 0"),
    ("flag-value-named-with-its-flag", lambda c: ["train", "palindrome", "--spec", str(c.file("s.json", '{"steps": 5}')),
                                                  "--eval-size", "0", "--out", str(c.tmp / "r")], 1,
     "--eval-size: eval_size must be ≥ 1, got 0"),
    ("spec-file-nan", lambda c: ["train", "palindrome", "--spec", str(c.file("s.json", '{"max_norm": NaN}')),
                                 "--out", str(c.tmp / "r")], 1, "--spec {tmp}/s.json: max_norm must be a finite number, got nan"),
    ("batch-not-a-number", lambda c: ["train", "palindrome", "--batch", "many", "--out", str(c.tmp / "r")], 1,
     "--batch: batch must be a whole number, got 'many'"),
    ("eval-size-beyond-memory", lambda c: ["train", "palindrome", "--eval-size", str(10 ** 15), "--out", str(c.tmp / "r")], 1,
     "--eval-size: eval_size must let a run fit in this machine's memory"),
    ("momentum-2", lambda c: ["train", "palindrome", "--momentum", "2", "--out", str(c.tmp / "r")], 1, "momentum must be in [0, 1)"),
    ("model-unknown", lambda c: ["train", "palindrome", "--model", "gru", "--out", str(c.tmp / "r")], 1,
     "model must be one of ('rnn', 'lstm'), got 'gru'"),
    ("device-unknown", lambda c: ["train", "palindrome", "--device", "tpu", "--out", str(c.tmp / "r")], 1,
     "device must be one of ('auto', 'cpu', 'cuda'), got 'tpu'"),
    ("threads-0", lambda c: ["train", "palindrome", "--threads", "0", "--out", str(c.tmp / "r")], 1, "threads must be ≥ 1, got 0"),
    ("text-temperature-0", train_txt(lambda c: c.w["corpus"], "--temperature", "0"), 1, "temperature must be finite and > 0"),
    ("corpus-missing", train_txt(lambda c: c.tmp / "none.txt"), 1, "corpus {tmp}/none.txt: no such file"),
    ("corpus-not-utf8", train_txt(lambda c: c.file("latin1.txt", "Märchen".encode("latin-1") * 500)), 1,
     "{tmp}/latin1.txt is not UTF-8"),
    ("corpus-empty", train_txt(lambda c: c.file("empty.txt", "")), 1, "the corpus is empty"),
    ("corpus-too-short", train_txt(lambda c: c.file("short.txt", "Once upon a time")), 1,
     "corpus too short for seq_length 20"),
    ("out-holds-another-runs-summary",
     train_pal(lambda c, out: shutil.copy(c.w["pal"] / "summary.json", out / "summary.json"), spec=OTHER), 1,
     f"{{tmp}}/run holds the results of run {PAL.run_id()} (summary.json), and this is run {OTHER.run_id()}"),
    ("out-holds-another-runs-model",
     train_pal(lambda c, out: shutil.copy(c.w["pal"] / "model.pt", out / "model.pt"), spec=OTHER), 1,
     f"holds the results of run {PAL.run_id()} (model.pt)"),
    ("out-holds-another-runs-resume", train_pal(resume_from(lambda ck: None), spec=OTHER), 1,
     f"{{tmp}}/run/resume.pt belongs to run {PAL.run_id()}, not {OTHER.run_id()}"),
    ("resume-on-another-device", train_pal(resume_from(lambda ck: ck.update(device="cuda"))), 1,
     "training on cuda, and this job trains on cpu: a run continues on the device it started on"),
    ("train-on-cuda-without-cuda", lambda c: ["train", "palindrome", "--device", "cuda", "--out", str(c.tmp / "r")], 1,
     "execution.device is cuda, but no GPU is visible here"),
    ("disk-full-at-the-first-checkpoint", train_pal(), 1,
     "could not write {tmp}/run/metrics.csv ([Errno 28] No space left on device"),
    ("disk-full-writing-the-model", train_pal(), 1,
     "could not write {tmp}/run/model.pt ([Errno 28] No space left on device"),
    # the corpus statistics job checks the report's prompts as soon as the corpus is there
    ("report-prompt-outside-corpus", lambda c: ["corpus-stats", "--corpus", str(c.w["corpus"]),
                                                "--out", str(c.tmp / "stats.json"), "--", "Once", "☃ snow"], 1,
     "prompt '☃ snow' has characters that are not in the corpus: ['☃']"),
    ("report-prompt-empty", lambda c: ["corpus-stats", "--corpus", str(c.w["corpus"]),
                                       "--out", str(c.tmp / "stats.json"), "--", ""], 2, "prompts must be non-empty text, got ''"),
    ("report-prompt-like-an-option", lambda c: ["corpus-stats", "--corpus", str(c.w["corpus"]),
                                                "--out", str(c.tmp / "stats.json"), "--", "Once", "--val-fraction 0.5 ☃"], 1,
     "prompt '--val-fraction 0.5 ☃' has characters that are not in the corpus: ['☃']"),
    ("stats-corpus-missing", lambda c: ["corpus-stats", "--corpus", str(c.tmp / "x.txt"),
                                        "--out", str(c.tmp / "stats.json")], 1, "corpus {tmp}/x.txt: no such file"),
    # a finished run's files, read back by the aggregation
    ("summary-not-json", aggregate("pal", rewrite("summary.json", "{not json")), 1,
     "summary.json: not a readable run summary (not JSON"),
    ("summary-a-list", aggregate("pal", rewrite("summary.json", "[]")), 1,
     "summary.json: not a run summary: a JSON object is wanted, it holds a list"),
    ("summary-not-utf8", aggregate("pal", rewrite("summary.json", b"\xff\xfe{}")), 1, "summary.json: not a run summary: not UTF-8"),
    ("summary-missing-keys", aggregate("pal", summary_edit(lambda s: s.pop("eval_final"))), 1,
     "summary.json: not a run summary of this project (no eval_final)"),
    ("summary-of-another-run", aggregate("pal", summary_edit(lambda s: s.update(run_id="other"))), 1,
     f"summary.json is the summary of run other, and its folder is named {PAL.run_id()}"),
    ("summary-unknown-kind", aggregate("pal", summary_edit(lambda s: s.update(kind="gru"))), 1,
     "run kind 'gru' is not one of palindrome, text"),
    ("summary-deleted", aggregate("pal", rewrite("summary.json", None)), 1, "summary.json: no such file (the run summary is missing)"),
    ("metrics-deleted", aggregate("pal", rewrite("metrics.csv", None)), 1,
     "metrics.csv: no such file (the run's step metrics is missing)"),
    ("metrics-not-a-number", aggregate("pal", rewrite("metrics.csv", "step,loss,accuracy,grad_norm\n10,lots,0.5,1\n")), 1,
     "metrics.csv, row 2: column loss holds 'lots', not a number"),
    ("metrics-missing-column", aggregate("pal", rewrite("metrics.csv", "step,loss,accuracy\n10,1,0.5\n")), 1,
     "metrics.csv: not a run's step metrics of this project: no column grad_norm"),
    ("metrics-no-rows", aggregate("pal", rewrite("metrics.csv", "step,loss,accuracy,grad_norm\n")), 1,
     "metrics.csv: the run's step metrics has a header and no rows"),
    ("metrics-ragged", aggregate("pal", rewrite("metrics.csv", "step,loss,accuracy,grad_norm\n1,2,3,4\n1,2,3,4,5,6\n")), 1,
     "metrics.csv: not a readable run's step metrics"),
    ("eval-empty", aggregate("pal", rewrite("eval.csv", "")), 1, "eval.csv: the run's held-out evaluations is empty"),
    ("metrics-cut-mid-line", aggregate("pal", edit_file("metrics.csv", lambda t: t[:-3])), 1,
     "metrics.csv: the run's step metrics is cut mid-line (its last line"),
    ("metrics-row-missing", aggregate("pal", edit_file("metrics.csv", lambda t: t.replace(_line(t, 2), "", 1))), 1,
     "metrics.csv has 3 rows where the run writes 4: no row for step 20"),
    ("metrics-row-repeated", aggregate("pal", edit_file("metrics.csv", lambda t: t.replace(_line(t, 2), _line(t, 2) * 2, 1))), 1,
     "metrics.csv has 5 rows where the run writes 4: a row repeated for step 20"),
    ("metrics-rows-out-of-order", aggregate("pal", edit_file("metrics.csv", lambda t: t.replace(
        _line(t, 1) + _line(t, 2), _line(t, 2) + _line(t, 1), 1))), 1, "metrics.csv has 4 rows where the run writes 4: its rows out of order"),
    ("eval-cell-empty", aggregate("pal", edit_file("eval.csv", lambda t: t.replace(_line(t, 2), _line(t, 2).split(",", 1)[0] + ",,"
                                                                                   + _line(t, 2).split(",", 2)[2], 1))), 1,
     "eval.csv, line 3: the run's held-out evaluations has an empty cell (column 2)"),
    ("samples-short-by-a-line", aggregate("txt", edit_file("samples.jsonl", lambda t: "".join(t.splitlines(True)[:-1]))), 1,
     "samples.jsonl holds 1 sample, and the run writes 2 at each of the steps 20 (2 in all)"),
    ("best-samples-cut-mid-line", aggregate("txt", edit_file("best_samples.jsonl", lambda t: t[:-1])), 1,
     "best_samples.jsonl: the run's samples is cut mid-line"),
    ("eval-text-without-bpc", aggregate("txt", rewrite("eval.csv", "step,loss,accuracy\n0,4,0.1\n")), 1,
     "eval.csv: not a run's held-out evaluations of this project: no column bpc"),
    ("samples-bad-line", aggregate("txt", rewrite("samples.jsonl", '{"step": 1}\nnot json\n')), 1,
     "samples.jsonl, line 1: not a run's samples of this project (no temperature, method, first, text)"),
    ("samples-not-json", aggregate("txt", rewrite("samples.jsonl", "not json\n")), 1,
     "samples.jsonl, line 1: not a readable run's samples (not JSON"),
    ("samples-deleted", aggregate("txt", rewrite("samples.jsonl", None)), 1, "samples.jsonl: no such file"),
    # Snakemake's benchmark files and the compute table
    ("benchmark-garbage", compute(lambda c: c.file("b.tsv", b"\x00\x01\x02")), 1, "{tmp}/b.tsv: not a Snakemake benchmark"),
    ("benchmark-missing-column", compute(lambda c: c.file("b.tsv", "x\ty\n1\t2\n")), 1,
     "{tmp}/b.tsv: not a Snakemake benchmark of this project: no column s, max_rss, cpu_time"),
    ("benchmark-no-rows", compute(lambda c: c.file("b.tsv", BENCH_HEADER)), 1,
     "{tmp}/b.tsv: the Snakemake benchmark has a header and no rows"),
    ("benchmark-seconds-not-a-number", compute(lambda c: c.file("b.tsv", BENCH_HEADER + "-\t-\t-\t-\t-\t-\t-\t-\t-\t-\n")), 1,
     "{tmp}/b.tsv, row 2: column s holds '-', not a number"),
    ("compute-summary-unreadable", compute(summary=lambda c: c.file("rnn-x/summary.json", "{")), 1,
     "{tmp}/rnn-x/summary.json: not a readable run summary"),
    ("compute-lists-differ", lambda c: ["compute-table", "--benchmarks", str(c.w["bench"]), str(c.w["bench"]),
                                        "--summaries", str(c.w["pal"] / "summary.json"), "--out", str(c.tmp / "c.csv")], 1,
     "--benchmarks and --summaries must list the same runs in the same order"),
    # figures and the report
    ("figure-unknown", figure(name="fig99"), 1, "unknown figure 'fig99'; known: fig01_rnn_rmsprop_loss"),
    ("figure-curves-garbage", figure(lambda t: (t / "studies/rnn_rmsprop/curves.csv").write_text("run_id,step\nx,\"open\n")), 1,
     "studies/rnn_rmsprop/curves.csv: not a readable study curves table"),
    ("report-config-not-json", lambda c: ["report", "--tables-dir", str(c.w["tables"]), "--figures-dir", str(c.tmp),
                                          "--config", str(c.file("config.json", "{oops")), "--tex", str(c.tmp / "r.tex")],
     1, "{tmp}/config.json: not a readable resolved config"),
    # config files, checked as the workflow checks them (Snakemake's own loader names no line)
    ("config-yaml-syntax", check_config("seeds: [0\nstudies: {}\n"), 1, "{tmp}/config.yaml, line 2, column"),
    ("config-yaml-tab", check_config("seeds:\n\t- 0\n"), 1, "{tmp}/config.yaml, line 2, column 1: not valid YAML"),
    ("config-missing", lambda c: ["check-config", str(c.tmp / "nope.yaml")], 1, "config file {tmp}/nope.yaml: no such file"),
    ("config-a-list", check_config("- 1\n- 2\n"), 1, "a mapping of keys at the top level is wanted, it holds list"),
    ("config-empty", check_config(""), 1, "a mapping of keys at the top level is wanted, it holds nothing"),
    ("config-missing-section", check_config(YAML_OK), 1, "config: corpus must be given"),
    ("config-unknown-key", valid_config(lambda c: c.update(bogus=1)), 1, "config: bogus is not one of its keys"),
    ("config-grid-typo", valid_config(lambda c: c["studies"]["rnn_adam"]["grid"].update(hiden=[3])), 1,
     "config studies.rnn_adam: unknown palindrome spec keys ['hiden'] (hiden: did you mean hidden?); allowed:"),
    ("config-model-unknown", valid_config(lambda c: c["studies"].update(x={"kind": "palindrome", "set": {"model": "gru"}})), 1,
     "config studies.x.set: model must be one of ('rnn', 'lstm'), got 'gru'"),
    ("config-seed-in-grid", valid_config(lambda c: c["studies"]["rnn_adam"]["grid"].update(seed=[3])), 1,
     "config studies.rnn_adam.grid: seed is set by a study's seeds: list (or the top-level one), not here"),
    ("config-defaults-bad-value", valid_config(lambda c: c.setdefault("defaults", {}).setdefault("palindrome", {}).update(steps=-150)), 1,
     "config defaults.palindrome: steps must be ≥ 1, got -150"),
    ("config-seeds-negative", valid_config(lambda c: c.update(seeds=[-1, 1])), 1,
     "config seeds: seed must be a whole number in [0, 2**63), got -1"),
    ("config-execution-key-typo", valid_config(lambda c: c["execution"].update(devce="cpu")), 1,
     "config execution: devce is not one of its keys (devce: did you mean device?)"),
    ("config-removed-key", valid_config(lambda c: c.setdefault("report", {}).update(init_study="init_study")), 1,
     "report.init_study was removed: the report reads its studies by their names"),
    ("config-set-and-grid", valid_config(lambda c: c["studies"]["rnn_adam"].setdefault("set", {}).update(model="lstm")), 1,
     "config studies.rnn_adam: model in both set and grid; a field goes in one of them"),
    ("config-text-temperature-0", valid_config(lambda c: c["studies"]["text_temperature"]["grid"].update(temperature=[0.0])), 1,
     "temperature must be finite and > 0"),
    ("config-report-study-typo", valid_config(lambda c: c["studies"].update(text_temprature=c["studies"].pop("text_temperature"))), 1,
     "studies.text_temprature: not a study the report reads; did you mean text_temperature?"),
    ("config-report-study-wrong-kind", valid_config(lambda c: c["studies"].update(init_study={"kind": "text"})), 1,
     "studies.init_study: the report reads init_study as a palindrome study, and it is a text one"),
    ("config-report-key-gone", valid_config(lambda c: c.setdefault("report", {}).update(text_study="x")), 1,
     "config report: text_study is not one of its keys (report.text_study was removed"),
    ("config-seeds-empty", valid_config(lambda c: c.update({"seeds": []})), 1,
     "config: seeds must be a list of at least 1 value, got []"),
    ("config-grid-key-typo", valid_config(lambda c: c.update({"studies": {"x": {"kind": "palindrome", "grid": {"hiden": [3]}}}})), 1,
     "config studies.x: unknown palindrome spec keys ['hiden'] (hiden: did you mean hidden?)"),
    ("config-grid-empty-list", valid_config(lambda c: c.update({"studies": {"x": {"kind": "palindrome", "grid": {"steps": []}}}})), 1,
     "config studies.x.grid: steps must be a list of at least 1 value, got []"),
    ("config-steps-0", valid_config(lambda c: c.update({"studies": {"x": {"kind": "palindrome", "set": {"steps": 0}}}})), 1,
     "config studies.x.set: steps must be ≥ 1, got 0"),
    ("config-grid-temperature-0", valid_config(lambda c: c.update({"studies": {"x": {"kind": "text", "grid": {"temperature": [0.0]}}}})), 1,
     "config studies.x.grid: temperature must be finite and > 0"),
    ("config-kind-unknown", valid_config(lambda c: c.update({"studies": {"x": {"kind": "rnn"}}})), 1,
     "config studies.x: kind must be one of ('palindrome', 'text', 'phased', 'frequency'), got 'rnn'"),
    ("config-optimizer-unknown", valid_config(lambda c: c.update({"studies": {"x": {"kind": "palindrome", "grid": {"optimizer": ["adagrad"]}}}})), 1,
     "config studies.x.grid: optimizer must be one of ('rmsprop', 'adam', 'sgd'), got 'adagrad'"),
    ("config-batch-negative", valid_config(lambda c: c.update({"studies": {"x": {"kind": "palindrome", "set": {"batch": -1}}}})), 1,
     "config studies.x.set: batch must be ≥ 1, got -1"),
    ("config-study-key-typo", valid_config(lambda c: c.update({"studies": {"x": {"kind": "palindrome", "sett": {}}}})), 1,
     "config studies.x: sett is not one of its keys (sett: did you mean set?)"),
    ("config-no-studies", valid_config(lambda c: c.update({"studies": {}})), 1,
     "config: studies must be a mapping of at least 1 key, got {{}}"),
    ("config-corpus-url-scheme", valid_config(lambda c: c.update({"corpus": {"urls": ["ftp://x"], "sha256": "0" * 64, "path": "d"}})), 1,
     "config corpus: urls[0] must be an http://, https:// or file:// URL, got 'ftp://x'"),
    ("config-init-study-typo", valid_config(lambda c: c["studies"].update(init_studdy=c["studies"].pop("init_study"))), 1,
     "studies.init_studdy: not a study the report reads; did you mean init_study?"),
    ("config-text-study-wrong-kind", valid_config(lambda c: c["studies"].update(text_temperature={"kind": "palindrome"})), 1,
     "studies.text_temperature: the report reads text_temperature as a text study, and it is a palindrome one"),
    ("config-runs-per-job-negative", valid_config(lambda c: c.update({"execution": {"runs_per_job": -1}})), 1,
     "config execution: runs_per_job must be ≥ 0 (0: auto), got -1"),
    ("config-jobs-per-gpu-0", valid_config(lambda c: c.update({"execution": {"jobs_per_gpu": 0}})), 1,
     "config execution: jobs_per_gpu must be ≥ 1, got 0"),
    ("config-impl-unknown", valid_config(lambda c: c.update({"execution": {"impl": "cudagraph"}})), 1,
     "config execution: impl must be one of ('auto', 'fused', 'loop', 'bptt', 'graph'), got 'cudagraph'"),
    ("config-key-twice", check_config("seeds: [0]\nstudies:\n  a: {kind: text}\n  a: {kind: palindrome}\n"), 1,
     "{tmp}/config.yaml, line 4, column 3: not valid YAML: the key 'a' is given twice (first on line 3)"),
    ("config-exponent-read-as-text", valid_config(lambda c: c["defaults"]["palindrome"].update(lr="3e-3")), 1,
     "config defaults.palindrome: lr must be a number, got '3e-3' (YAML reads 3e-3 as text"),
    ("config-seed-huge", valid_config(lambda c: c.update(seeds=[2 ** 70])), 1,
     "seed must be a whole number in [0, 2**63), got 1180591620717411303424"),
    ("config-lr-beyond-float32", valid_config(lambda c: c["defaults"]["palindrome"].update(lr=1e300)), 1,
     "lr must be a positive number (below 3.4e38, the float32 range)"),
    ("config-dropout-one-layer", valid_config(lambda c: c["defaults"]["text"].update(dropout=0.5, layers=1)), 1,
     "dropout acts between LSTM layers only: with layers 1 it must be 0"),
    ("config-threshold-nan", valid_config(lambda c: c["report"].update(convergence_threshold=float("nan"))), 1,
     "config report: convergence_threshold must be a finite number, got nan"),
    ("config-timeout-inf", valid_config(lambda c: c["corpus"].update(timeout=float("inf"))), 1,
     "config corpus: timeout must be a finite number, got inf"),
    ("config-eval-size-beyond-memory", valid_config(lambda c: c["defaults"]["palindrome"].update(eval_size=10 ** 12)), 1,
     "eval_size must let a run fit in execution.mem_mb (2000 MB), got 1000000000000: the run would hold at least 50.9 TB (the held-out set: 50.9 TB); lower it"),
    ("config-hidden-beyond-memory", valid_config(lambda c: c["defaults"]["palindrome"].update(hidden=10 ** 6)), 1,
     "hidden must let a run fit in execution.mem_mb (2000 MB), got 1000000"),
    ("config-text-sample-steps-beyond-memory", valid_config(lambda c: c["defaults"]["text"].update(
        steps=10 ** 12, sample_every=1, log_every=10 ** 9, eval_every=10 ** 9)), 1,
     "config studies.text_temperature: sample_every must let a run fit in execution.mem_mb (2000 MB), got 1"),
    ("config-text-steps-beyond-memory", valid_config(lambda c: c["defaults"]["text"].update(steps=10 ** 12)), 1,
     "config studies.text_temperature: steps must let a run fit in execution.mem_mb (2000 MB), got 1000000000000"),
    ("config-prompt-nul", valid_config(lambda c: c["report"].update(prompts=["Once", "a\x00b"])), 1,
     "config report: prompts[1] must not hold a NUL character"),
    ("config-prompt-not-a-character", valid_config(lambda c: c["report"].update(prompts=["a\udc80"])), 1,
     "config report: prompts[0] must not hold '\\udc80'"),
    ("config-corpus-outside-the-checkout", valid_config(lambda c: c["corpus"].update(path="../elsewhere/x.txt")), 1,
     "config corpus: path must lie in the workflow's folder"),
    ("config-corpus-absolute-elsewhere", valid_config(lambda c: c["corpus"].update(path="/tmp/rnnrepro-x.txt")), 1,
     "unless the config says write_outside_checkout: true), got '/tmp/rnnrepro-x.txt'"),
    ("config-tensorboard-outside-the-checkout", valid_config(lambda c: c["execution"].update(tensorboard="../tb")), 1,
     "config execution: tensorboard must lie in the workflow's folder"),
    ("config-corpus-inside-results", valid_config(lambda c: c["corpus"].update(path="results/tables/corpus_stats.json")), 1,
     "corpus.path results/tables/corpus_stats.json is inside results/, which the workflow writes"),
    ("config-corpus-not-the-configs", lambda c: valid_config(lambda k: (k["corpus"].update(
        path=str(c.w["corpus"]), sha256="0" * 64), k.update(write_outside_checkout=True)))(c), 1,
     "holds a file with sha256 e643"),
    # every command's own arguments, refused before any work
    ("probe-model-unknown", lambda c: ["grad-probe", "--models", "gru", "--out", str(c.tmp / "g.csv")], 2,
     "argument --models: invalid choice: 'gru'"),
    ("probe-length-0", lambda c: ["grad-probe", "--input-length", "0", "--out", str(c.tmp / "g.csv")], 2,
     "--input-length: probe_length must be ≥ 2, got 0"),
    ("probe-hidden-0", lambda c: ["grad-probe", "--hidden", "0", "--out", str(c.tmp / "g.csv")], 2, "--hidden: hidden must be ≥ 1, got 0"),
    ("bench-baseline-not-python", lambda c: ["bench", "--quick", "--cases", "rnn", "--threads", "1", "--no-overhead",
                                             "--baseline", str(c.w["corpus"]), "--out", str(c.tmp / "b.csv")], 1,
     "corpus.txt is not a Python module"),
    ("bench-text-without-corpus", lambda c: ["bench", "--quick", "--cases", "text", "--threads", "1", "--no-overhead",
                                             "--corpus", str(c.tmp / "no.txt"), "--out", str(c.tmp / "b.csv")], 1,
     "the text case needs a corpus, and there is none at {tmp}/no.txt"),
    ("bench-threads-0", lambda c: ["bench", "--threads", "0"], 2, "--threads: threads must be ≥ 1, got 0"),
    ("bench-rounds-0", lambda c: ["bench", "--rounds", "0"], 2, "--rounds: rounds must be ≥ 1, got 0"),
    ("figure-study-of-another-kind", figure(lambda t: (shutil.rmtree(t / "studies/rnn_rmsprop"), shutil.copytree(
        t / "studies/text_temperature", t / "studies/rnn_rmsprop"))), 1,
     "figure fig01_rnn_rmsprop_loss cannot draw the studies ['rnn_rmsprop']"),
    ("figure-tables-missing", lambda c: figure()(c)[:2] + ["--tables", str(c.tmp / "none")] + figure()(c)[4:], 1,
     "--tables {tmp}/none: no such folder"),
    ("figure-study-missing", figure(lambda t: shutil.rmtree(t / "studies/rnn_rmsprop")), 1,
     "figure fig01_rnn_rmsprop_loss: study rnn_rmsprop has no tables under"),
    ("figure-smoothing-0", lambda c: figure()(c) + ["--smoothing", "0"], 2, "--smoothing: smoothing_window must be ≥ 1, got 0"),
    ("figure-threshold-2", lambda c: figure()(c) + ["--threshold", "2"], 2, "--threshold: convergence_threshold must be ≤ 1, got 2"),
    ("scorecard-threshold-nan", lambda c: ["scorecard", "--tables-dir", str(c.w["tables"]), "--threshold", "nan",
                                           "--out", str(c.tmp / "s.csv")], 2, "--threshold: convergence_threshold must be a finite number, got nan"),
    ("scorecard-tables-missing", lambda c: ["scorecard", "--tables-dir", str(c.tmp / "none"), "--out", str(c.tmp / "s.csv")], 1,
     "--tables-dir {tmp}/none: no such folder"),
    ("scorecard-runs-table-garbage", lambda c: ["scorecard", "--tables-dir", str((lambda t: (
        [p.write_bytes(b"\0garbage") for p in t.glob("studies/*/runs.csv")], t)[1])(c.copy_tables())),
        "--out", str(c.tmp / "s.csv")], 1, "runs.csv: not a study runs table of this project: no column run_id, eval_final_accuracy"),
    ("report-config-not-an-object", lambda c: ["report", "--tables-dir", str(c.w["tables"]), "--figures-dir", str(c.tmp),
                                               "--config", str(c.file("config.json", "[]")), "--tex", str(c.tmp / "r.tex")], 1,
     "{tmp}/config.json: not a resolved config: a JSON object is wanted, it holds a list"),
    ("report-figure-unknown", lambda c: ["report", "--tables-dir", str(c.w["tables"]), "--figures-dir", str(c.tmp),
                                         "--figures", "fig99", "--config", str(c.config_json()), "--tex", str(c.tmp / "r.tex")],
     1, "--figures: unknown fig99; known: fig01"),
    ("report-figure-not-drawn", lambda c: ["report", "--tables-dir", str(c.w["tables"]), "--figures-dir", str(c.tmp),
                                           "--figures", "fig01_rnn_rmsprop_loss", "--config", str(c.config_json()), "--tex",
                                           str(c.tmp / "r.tex")], 1,
     "the figures {tmp}/fig01_rnn_rmsprop_loss.pdf are missing: draw them first"),
    ("pdf-tex-is-pdf", lambda c: ["pdf", "--tex", str(c.tmp / "r"), "--pdf", str(c.tmp / "r")], 1,
     "--tex and --pdf must be two files"),
    ("pdf-tex-missing", lambda c: ["pdf", "--tex", str(c.tmp / "r.tex"), "--pdf", str(c.tmp / "r.pdf")], 1,
     "--tex {tmp}/r.tex: no such file (rnnrepro report writes it)"),
    # a study's runs, and where its tables go
    ("aggregate-run-twice", lambda c: ["aggregate", "--study", "s", "--runs", str(c.w["pal"]), str(c.w["pal"]),
                                       "--out-dir", str(c.tmp / "t")], 1, f"run {PAL.run_id()} is listed twice"),
    ("aggregate-mixed-kinds", lambda c: ["aggregate", "--study", "s", "--runs", str(c.w["pal"]), str(c.w["txt"]),
                                         "--out-dir", str(c.tmp / "t")], 1, "study s mixes runs of the kinds palindrome, text"),
    ("metrics-cut-short", aggregate("pal", rewrite("metrics.csv", "step,loss,accuracy,grad_norm\n10,2.3,0.1,1.0\n")), 1,
     "metrics.csv ends at step 10, and the run trained 40 steps (summary.json): the file is cut short"),
    ("run-folder-renamed", lambda c: ["aggregate", "--study", "s", "--runs",
                                      str(shutil.copytree(c.w["pal"], c.tmp / "renamed")), "--out-dir", str(c.tmp / "t")], 1,
     f"its folder is named renamed: a run's folder is named by its run id (renamed? name it {PAL.run_id()} again)"),
    ("aggregate-out-is-a-file", lambda c: ["aggregate", "--study", "s", "--runs", str(c.w["pal"]),
                                           "--out-dir", str(c.file("t", "x"))], 1, "{tmp}/t is a file: a folder is wanted"),
    # outputs that would destroy an input or a run's files
    ("complete-out-is-its-checkpoint", lambda c: ["complete", "--checkpoint", str(shutil.copy(text_model(c), c.tmp / "m.pt")),
                                                  "--out", str(c.tmp / "m.pt"), "Once"], 1,
     "{tmp}/m.pt is also an input of this command"),
    ("sample-out-in-a-run-folder", lambda c: ["sample", "--checkpoint", str(text_model(c)),
                                              "--out", str(c.copy_run("txt") / "samples.jsonl")], 1,
     "is inside the run folder"),
    ("complete-out-is-a-folder", lambda c: ["complete", "--checkpoint", str(text_model(c)),
                                            "--out", str(c.tmp), "Once"], 1, "{tmp} is a folder: a file name is wanted"),
    ("device-unknown-for-sampling", sample(text_model, "--device", "tpu"), 2, "one of auto, cpu, cuda, cuda:N is wanted, got 'tpu'"),
    ("stats-val-fraction-1.5", lambda c: ["corpus-stats", "--corpus", str(c.w["corpus"]), "--val-fraction", "1.5",
                                          "--out", str(c.tmp / "s.json")], 2, "--val-fraction: val_fraction must be in (0, 1), got 1.5"),
    ("stats-val-fraction-nan", lambda c: ["corpus-stats", "--corpus", str(c.w["corpus"]), "--val-fraction", "nan",
                                          "--out", str(c.tmp / "s.json")], 2, "--val-fraction: val_fraction must be a finite number, got nan"),
    ("corpus-a-folder", train_txt(lambda c: c.tmp), 1, "corpus {tmp} is a folder: a UTF-8 text file is wanted"),
    ("corpus-dev-null", train_txt(lambda c: "/dev/null"), 1, "the corpus is empty"),
    ("val-fraction-leaves-no-slice", train_txt(lambda c: c.w["corpus"], "--val-fraction", "1e-9"), 1,
     "the slice (val_fraction 1e-09) holds 0 characters"),
    ("train-out-is-a-file", lambda c: ["train", "palindrome", "--steps", "5", "--out", str(c.file("r", "x"))], 1,
     "{tmp}/r is a file: a folder is wanted"),
    ("seed-negative", lambda c: ["train", "palindrome", "--seed", "-1", "--out", str(c.tmp / "r")], 1,
     "seed must be a whole number in [0, 2**63), got -1"),
    ("init-std-inf", lambda c: ["train", "palindrome", "--init", "normal", "--init-std", "inf", "--out", str(c.tmp / "r")], 1,
     "--init-std: init_std must be a finite number, got inf"),
    ("gpu-slots-config-missing", lambda c: ["gpu-slots", "--config", str(c.tmp / "none.yaml")], 1,
     "--config {tmp}/none.yaml: no such file"),
    ("download-retries-0", lambda c: ["download", "--url", c.w["corpus"].as_uri(), "--sha256", "0" * 64,
                                      "--retries", "0", "--out", str(c.tmp / "d.txt")], 2, "--retries: retries must be ≥ 1, got 0"),
    ("download-backoff-negative", lambda c: ["download", "--url", c.w["corpus"].as_uri(), "--sha256", "0" * 64,
                                             "--backoff", "-5", "--out", str(c.tmp / "d.txt")], 2, "--backoff: backoff must be ≥ 0, got -5"),
    ("download-sha256-not-hex", lambda c: ["download", "--url", c.w["corpus"].as_uri(), "--sha256", "xyz",
                                           "--out", str(c.tmp / "d.txt")], 2, "--sha256: sha256 must be 64 lowercase hexadecimal digits, got 'xyz'"),
    ("download-relative-file-url", lambda c: ["download", "--url", "file://data/corpus.txt", "--sha256", "0" * 64,
                                              "--out", str(c.tmp / "d.txt")], 1, "a file:// URL needs an absolute path (file:///…)"),
    # the download: a wrong or missing file is named, and nothing is saved
    ("download-checksum-mismatch", lambda c: ["download", "--url", c.w["corpus"].as_uri(), "--sha256", "0" * 64,
                                              "--retries", "1", "--backoff", "0", "--out", str(c.tmp / "d.txt")], 1,
     "checksum mismatch: expected sha256 " + "0" * 64),
    ("download-larger-than-max-mb", lambda c: ["download", "--url", c.w["corpus"].as_uri(), "--sha256", "0" * 64,
                                                "--max-mb", "0.1", "--out", str(c.tmp / "d.txt")], 1,
     "MB announced, more than corpus.max_mb (0.1 MB) accepts"),
    ("download-max-mb-0", lambda c: ["download", "--url", c.w["corpus"].as_uri(), "--sha256", "0" * 64,
                                     "--max-mb", "0", "--out", str(c.tmp / "d.txt")], 2, "--max-mb: max_mb must be > 0, got 0"),
    ("download-url-like-an-option", lambda c: ["download", "--url", "--retries", "--sha256", "0" * 64,
                                               "--out", str(c.tmp / "d.txt")], 2, "expected at least one argument"),
    ("download-missing", lambda c: ["download", "--url", (c.tmp / "gone.txt").as_uri(), "--sha256", "0" * 64,
                                    "--retries", "1", "--backoff", "0", "--out", str(c.tmp / "d.txt")], 1,
     "could not download d.txt; nothing was saved"),
]


def _full_disk_for(names, monkeypatch):
    """Writes of files with these names hit a full disk (their temporary file is /dev/full)."""
    real = rio.tempfile.mkstemp

    def mkstemp(prefix="", suffix="", dir=None):
        if any(prefix == f".{n}." for n in names):
            return os.open("/dev/full", os.O_WRONLY), str(Path(dir) / f"{prefix}full{suffix}")
        return real(prefix=prefix, suffix=suffix, dir=dir)
    monkeypatch.setattr(rio.tempfile, "mkstemp", mkstemp)


def test_the_table_is_big_enough():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("argv,status,expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_input_is_refused_naming_its_cause_and_nothing_is_lost(
        request, world, tmp_path, capsys, monkeypatch, argv, status, expect):
    c = Ctx(tmp_path / "case", world)
    c.tmp.mkdir()
    name = request.node.callspec.id
    if name == "disk-full-at-the-first-checkpoint":
        _full_disk_for(["metrics.csv"], monkeypatch)
    elif name == "disk-full-writing-the-model":
        _full_disk_for(["model.pt"], monkeypatch)
    args = argv(c)
    before_world, before = snapshot(world["root"]), snapshot(c.tmp)
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    err = capsys.readouterr().err
    assert code == status, err
    assert expect.format(tmp=c.tmp) in err, err
    assert "Traceback" not in err
    assert snapshot(world["root"]) == before_world, "a finished result changed"
    after = snapshot(c.tmp)
    if name.startswith("disk-full"):  # the run's checkpointed files stay; nothing half-written
        assert not any(".tmp" in p for p in after) and "run/summary.json" not in after
        if name == "disk-full-writing-the-model":
            assert "run/resume.pt" in after and "run/model.pt" not in after
        after = {p: h for p, h in after.items() if p in before}
    assert after == before, "the row's files changed or something was written"
    assert not list(tmp_path.glob("*-ran")), "a checkpoint ran code"
