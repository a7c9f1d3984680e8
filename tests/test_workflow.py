"""The workflow end to end on config/test.yaml: real Snakemake, real training, real LaTeX.

One complete run in a private copy of the workflow; the tests after it ask Snakemake what a
change would rerun (dry runs), so they share the finished run.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rnnrepro.config.roles import COLLAPSE_STUDIES
from rnnrepro.report.registry import FIGURES

from .workflow_utils import config_run_ids, make_workdir, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def done(finished_workflow):
    return finished_workflow


def pdf_text(workdir):
    """The report PDF's text, on one line, as a reader sees it."""
    text = subprocess.run(["pdftotext", str(workdir / "results" / "report" / "report.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    return " ".join(text.replace("’", "'").split())


def lost_runs(workdir):
    """The runs of the studies the collapse section reads that learned the task and lost it,
    as the tables say (whatever this CPU's runs did)."""
    lost = set()
    for study in COLLAPSE_STUDIES:
        runs = pd.read_csv(workdir / "results" / "tables" / "studies" / study / "runs.csv")
        lost |= set(runs.run_id[runs.outcome == "lost"])
    return lost


def check_collapse_section(workdir):
    """The collapse table and figure appear exactly when a run was lost, one row a run."""
    lost, flat = lost_runs(workdir), pdf_text(workdir)
    tex = (workdir / "results" / "report" / "report.tex").read_text()
    assert ("Runs that reached the criterion and lost it" in flat) == bool(lost)
    assert ("one panel per setting: held-out accuracy" in flat) == bool(lost)
    assert ("No run of the palindrome studies reached the criterion and then lost it" in flat) != bool(lost)
    table = tex.split("\\label{tab:collapse}")[1].split("\\endhead")[1].split("\\bottomrule")[0] \
        if lost else ""
    assert table.count("\\\\") == len(lost), table
    return lost, flat, tex


def test_full_run_produces_the_report(done):
    pdf = done / "results" / "report" / "report.pdf"
    assert pdf.exists() and pdf.stat().st_size > 50_000
    flat = pdf_text(done)
    assert "??" not in flat, "unresolved reference in the PDF"
    for junk in ("(((", ")))", "((*", "*))"):
        assert junk not in flat, f"unexpanded template syntax {junk!r} in the PDF"
    shown = set(FIGURES) - ({"fig_collapse"} if not lost_runs(done) else set())
    for name in shown:  # every figure's caption, by its first words
        start = " ".join(FIGURES[name]["caption"].split()[:5])
        if "$" not in start:
            assert start in flat, (name, start)
    for caption in ("Figure 11:", "Table 1:", "Greedy samples of", "Samples from the model trained at",
                    "Sampling-only temperature", "Completions of the prompts", "Scorecard of the",
                    "Corpus statistics", "The part-1 claims under each initialisation",
                    "Palindrome runs: held-out accuracy"):
        assert caption in flat, caption
    # captions leave the seed count to the note each plot carries (the text study has one
    # seed per temperature, the palindrome studies two): no caption claims averaging
    tex = (done / "results" / "report" / "report.tex").read_text()
    captions = re.findall(r"\\caption\{(.*?)\}\s*\\label\{fig:", tex, re.S)
    assert len(captions) == len(shown) and not any("means over seeds" in c for c in captions)
    assert sum("Where a line averages several seeds" in c for c in captions) >= 8


def test_every_rule_has_a_log_and_training_has_benchmarks(done):
    runs = list((done / "results" / "runs").glob("*/*/summary.json"))
    assert len(runs) == len(config_run_ids())  # the test config's distinct runs (shared ones train once)
    assert len(list((done / "results" / "compute").glob("*/*.tsv"))) == len(runs)
    compute = pd.read_csv(done / "results" / "tables" / "compute.csv")
    assert len(compute) == len(runs) and (compute["job_seconds"] > 0).all()
    assert len(list((done / "logs" / "train").glob("*/*.log"))) == len(runs)
    assert not list((done / "results" / "runs").glob("*/*/resume.pt"))


def test_initialisation_study_runs_and_its_verdicts(done):
    tables = done / "results" / "tables"
    runs = pd.read_csv(tables / "studies" / "init_study" / "runs.csv")
    variants = set(zip(runs.init, runs.init_std))
    assert variants == {("default", 0.01), ("normal", 1.0), ("normal", 0.001)}
    assert len(runs) == 2 * 2 * 3 and runs.run_id.is_unique
    card = pd.read_csv(tables / "scorecard_init.csv")
    assert set(zip(card.init, card.init_std)) == variants
    assert sorted(card.claim.unique()) == [1, 4, 5, 6]
    # claim 4's measured accuracies are those of the study's RNN runs under that init
    for (init, std), g in card[card.claim == 4].groupby(["init", "init_std"]):
        rnn = runs[(runs.model == "rnn") & (runs.init == init) & (runs.init_std == std)]
        for r in rnn.itertuples():
            assert f"{r.input_length}: {r.eval_final_accuracy:.3f}" in g.measured.iat[0]


def test_outcomes_collapses_and_intervals_reach_the_tables_and_the_report(done):
    """Every palindrome run's outcome is what its own eval.csv says, and the report's collapse
    table and figure appear exactly when one was lost (which runs are lost depends on the
    CPU's float rounding: test_a_run_that_learned_and_lost_the_task_... makes one); rates
    carry Wilson intervals, comparisons bootstrap ones; the text runs' lowest-held-out-loss
    samples reach samples.csv and the report."""
    from rnnrepro.analysis.outcomes import COLUMNS, classify
    from rnnrepro.analysis.statistics import wilson

    tables = done / "results" / "tables"
    for study in ("rnn_rmsprop", "rnn_adam", "rnn_adam_long", "rnn_adam_40k", "lstm_adam", "init_study"):
        runs = pd.read_csv(tables / "studies" / study / "runs.csv")
        assert set(COLUMNS) <= set(runs.columns) and (runs.outcome_threshold == 0.99).all()
        for r in runs.itertuples():
            d = done / "results" / "runs" / "palindrome" / r.run_id
            again = classify(pd.read_csv(d / "eval.csv"), pd.read_csv(d / "metrics.csv"), 0.99)
            assert again["outcome"] == r.outcome, r.run_id
            if r.outcome == "lost":
                assert r.reached_step <= r.last_held_step < r.lost_step and r.peak_grad_norm > 0
    _, flat, _ = check_collapse_section(done)
    card = pd.read_csv(tables / "scorecard.csv").set_index("claim")
    for claim in (1, 5):
        row = card.loc[claim]
        assert row.interval_of == "share of seeds"
        assert (row.interval_lo, row.interval_hi) == pytest.approx(wilson(row.held, row.judged))
    assert card.loc[3, "interval_of"] == "mean paired difference" and card.loc[3, "pairs"] == 4
    assert card.loc[9, "interval_of"] == "targets"
    samples = pd.read_csv(tables / "studies" / "text_temperature" / "samples.csv")
    assert set(samples.checkpoint) == {"sample step", "lowest held-out loss"}
    for d in (done / "results" / "runs" / "text").iterdir():
        assert (d / "checkpoints" / "best.pt").exists() and (d / "best_samples.jsonl").exists()
    collapse = done / "results" / "figures" / "fig_collapse.pdf"  # drawn either way
    assert collapse.read_bytes()[:5] == b"%PDF-" and collapse.stat().st_size > 5_000
    for part in ("Learned, then lost", "converged [95 %]",
                 "Training text against held-out text", "checkpoint of lowest held-out loss",
                 "Claim 9 at several targets", "RNN part", "LSTM part",
                 "at input length 6 under each initialisation and learning rate"):
        assert part in flat, part
    # every "k/n [lo–hi %]" of the palindrome table is the Wilson interval of k of n
    shares = re.findall(r"(\d+)/(\d+) \[(\d+)–(\d+) %\]", flat)
    assert shares
    for k, n, lo, hi in shares:
        want = wilson(int(k), int(n))
        assert (int(lo), int(hi)) == (round(100 * want[0]), round(100 * want[1])), (k, n, lo, hi)


def test_section_2_claims_and_tables_reach_the_report(done):
    """Claims 12-15 have verdicts from the run's own tables; the phased runs' outcomes are
    what their eval.csv says; the extrapolation scores every memory study's run at the
    training length at each configured length; Section 2's tables and verdicts are in the PDF."""
    from rnnrepro.analysis.outcomes import classify
    from rnnrepro.analysis.statistics import VERDICTS

    tables = done / "results" / "tables"
    card = pd.read_csv(tables / "scorecard.csv").set_index("claim")
    assert list(card.index[-4:]) == [12, 13, 14, 15]
    assert set(card.loc[[12, 13, 14, 15], "verdict"]) <= set(VERDICTS) - {"not run"}
    for study in ("phased_short", "phased_long"):
        for r in pd.read_csv(tables / "studies" / study / "runs.csv").itertuples():
            d = done / "results" / "runs" / "phased" / r.run_id
            assert classify(pd.read_csv(d / "eval.csv"), pd.read_csv(d / "metrics.csv"),
                            0.99)["outcome"] == r.outcome, r.run_id
    config = yaml.safe_load((done / "test.yaml").read_text())["report"]
    lengths = config["extrapolation_lengths"]
    ext = pd.read_csv(tables / "extrapolation.csv")
    assert sorted(ext.study.unique()) == ["lstm_memory", "phased_long", "phased_short"]
    assert (ext.groupby("study").length.apply(list) == [lengths] * 3).all()
    assert (ext.train_length == lengths[0]).all() and ext.accuracy.between(0, 1).all()
    flat = pdf_text(done)
    for part in ("Memory on palindromes: runs that reached the criterion", "Length extrapolation",
                 "The frequency task: held-out accuracy (%) measured here and as the phased-LSTM",
                 "Neil et al. (2016), 110 units, 70 epochs, 5 seeds", "Which timing parameters to learn",
                 "Claim 12 (memory)", "Claim 13", "Claim 14", "Claim 15"):
        assert part in flat, part


def make_lost(run_dir, reached, lost, spike):
    """Rewrite a finished palindrome run's files as those of a run that reached the criterion
    at step `reached`, held it, and lost it for good at evaluation `lost` after a gradient
    spike at step `spike`: every row the run wrote stays, only values change, and its
    summary agrees with them."""
    evals = pd.read_csv(run_dir / "eval.csv")
    held = (evals.step >= reached) & (evals.step < lost)
    evals["accuracy"] = [1.0 if h else (0.1 if s >= lost else 0.5) for s, h in zip(evals.step, held)]
    evals["loss"] = [0.01 if h else 2.3 for h in held]
    evals["saturation"] = [0.5 if s < lost else 0.8 for s in evals.step]
    evals.to_csv(run_dir / "eval.csv", index=False, float_format="%.8g")
    metrics = pd.read_csv(run_dir / "metrics.csv")
    metrics.loc[metrics.step == spike, "grad_norm"] = 900.0
    metrics.to_csv(run_dir / "metrics.csv", index=False, float_format="%.8g")
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = evals.to_dict("records")
    summary["eval_final"] = rows[-1]
    summary["eval_best"] = max(rows, key=lambda e: (e["accuracy"], -e["step"]))
    summary["eval_lowest_loss"] = min(rows, key=lambda e: (e["loss"], e["step"]))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))


def test_a_run_that_learned_and_lost_the_task_reaches_the_collapse_table_and_figure(done, tmp_path):
    """A lost run made on purpose (its files rewritten as a collapse leaves them), so that the
    collapse section is shown on every CPU: aggregation reads its outcome, and the report's
    table, figure and counts show it."""
    work = tmp_path / "copy"
    shutil.copytree(done, work, symlinks=True)
    (run,) = (work / "results" / "runs" / "palindrome").glob("rnn-adam-len6-seed0-lr0.04-*")
    make_lost(run, reached=150, lost=250, spike=230)
    res = snakemake(work)
    out = res.stdout + res.stderr
    assert "rule train_" not in out, "rewriting a run's files retrains nothing"
    assert re.findall(r"study=(\w+)", out) == ["rnn_adam_40k"], out
    lost, flat, tex = check_collapse_section(work)
    assert run.name in lost
    (row,) = pd.read_csv(work / "results" / "tables" / "studies" / "rnn_adam_40k" / "runs.csv").itertuples()
    assert (row.outcome, row.reached_step, row.last_held_step, row.lost_step) == ("lost", 150, 200, 250)
    assert row.peak_grad_norm == 900.0
    assert "& 150 & 200 & 250 &" in tex
    assert "1 of 1 seed at length 6 reached it and then lost it" in flat


@pytest.mark.plan
def test_unchanged_config_has_nothing_to_do(done):
    jobs, out = planned_jobs(done)
    assert jobs == [], out
    assert "Nothing to be done" in out


@pytest.mark.plan
@pytest.mark.parametrize("gone", ["folder", "summary.json"])
def test_a_deleted_run_is_trained_again_with_what_depends_on_it(done, gone):
    """Snakemake by itself keeps an up-to-date report whose inputs were deleted ("Nothing to
    be done"); the workflow asks for every run, so a deleted one is planned again."""
    run = next((done / "results" / "runs" / "palindrome").glob("rnn-rmsprop-len4-seed0-*"))
    target = run if gone == "folder" else run / "summary.json"
    aside = done / f"aside-{gone}"
    target.rename(aside)  # moved back afterwards, mtimes kept: the other tests see no change
    try:
        jobs, out = planned_jobs(done)
    finally:
        aside.rename(target)
    rules = [r for r, _ in jobs]
    assert ("train_palindrome", f"run_id={run.name}") in jobs, out
    assert rules.count("train_palindrome") == 1 and "train_text" not in rules
    assert {"aggregate_study", "compute_table", "render_report"} <= set(rules)
    assert planned_jobs(done)[0] == []


@pytest.mark.plan
def test_device_cuda_without_cuda_is_refused_when_the_workflow_starts(tmp_path, corpus_path):
    workdir = make_workdir(tmp_path, corpus_path, edit=lambda c: c["execution"].update(device="cuda"))
    res = snakemake(workdir, check=False)
    assert res.returncode != 0
    assert "execution.device is cuda, and this torch is a CPU build" in res.stdout + res.stderr
    assert not (workdir / "results").exists() and not (workdir / "data").exists()


@pytest.mark.plan
@pytest.mark.parametrize("fault,expect", [
    ("corpus", "holds a file with sha256"),
    ("folder", "is a file where the workflow keeps a folder: move it away"),
    ("twice", "not valid YAML: the key 'seeds' is given twice (first on line 1)"),
    ("elsewhere", "is not the workflow's checkout"),
])
def test_workflow_faults_are_named_before_any_job(tmp_path, corpus_path, fault, expect):
    (tmp_path / "w").mkdir()
    workdir = make_workdir(tmp_path / "w", corpus_path)
    cwd, args = workdir, []
    if fault == "corpus":  # a file at corpus.path that is not the config's corpus
        (workdir / "data").mkdir()
        (workdir / "data" / "grimms_fairy_tales.txt").write_text("another book\n")
    elif fault == "folder":
        (workdir / "logs").write_text("a file where logs/ goes\n")
    elif fault == "twice":
        text = (workdir / "test.yaml").read_text()
        (workdir / "test.yaml").write_text("seeds: [5]\n" + text)
    else:
        cwd = tmp_path / "elsewhere"
        cwd.mkdir()
        args = ["-s", str(workdir / "Snakefile")]
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    res = subprocess.run([str(Path(sys.executable).with_name("snakemake")), *args, "--configfile",
                          str(workdir / "test.yaml"), "--cores", "1"], cwd=cwd, capture_output=True,
                         text=True)
    assert res.returncode != 0 and expect in res.stdout + res.stderr, res.stdout + res.stderr
    after = sorted(p.relative_to(workdir) for p in workdir.rglob("*") if ".snakemake" not in p.parts)
    assert after == [p for p in before if ".snakemake" not in p.parts]  # no job ran


@pytest.mark.plan
def test_a_yaml_error_in_the_default_config_names_the_line(tmp_path, corpus_path):
    workdir = make_workdir(tmp_path, corpus_path)
    with open(workdir / "config" / "config.yaml", "a") as f:
        f.write("seeds: [0\n")
    res = subprocess.run([str(Path(sys.executable).with_name("snakemake")), "-n", "--cores", "1"],
                         cwd=workdir, capture_output=True, text=True)
    assert res.returncode != 0
    assert re.search(r"config file config/config.yaml, line \d+, column 1: not valid YAML",
                     res.stdout + res.stderr), res.stdout + res.stderr


@pytest.mark.plan
def test_unrelated_changes_plan_nothing(done):
    (done / "NOTES.md").write_text("a note\n")
    (done / "config" / "config.yaml").write_text(
        (done / "config" / "config.yaml").read_text() + "\n# an edit to the other config\n")
    (done / "src" / "rnnrepro" / "models" / "lstm.py").touch()  # same content, new mtime
    jobs, out = planned_jobs(done)
    assert jobs == [], out


@pytest.mark.plan
def test_a_training_job_reruns_for_its_own_model_and_task_only(done):
    """A run's code inputs are the loop, its task and its own model's module: a new model or
    task module retrains nothing; an edit of the LSTM's module retrains the LSTM runs alone."""
    package = done / "src" / "rnnrepro"
    added = [package / "models" / "gru.py", package / "train" / "sequence.py"]
    for path in added:
        path.write_text('"""A module no run uses yet."""\n')
    lstm = package / "models" / "lstm.py"
    original = lstm.read_text()
    try:
        jobs, out = planned_jobs(done)
        assert jobs == [], out
        lstm.write_text(original + "\n# an edit of the LSTM's module\n")
        jobs, out = planned_jobs(done)
    finally:
        lstm.write_text(original)
        for path in added:
            path.unlink()
    models = {}
    for summary in (done / "results" / "runs" / "palindrome").glob("*/summary.json"):
        models[summary.parent.name] = json.loads(summary.read_text())["spec"]["model"]
    lstm_runs = sorted(f"run_id={r}" for r, model in models.items() if model == "lstm")
    assert lstm_runs and len(lstm_runs) < len(models)
    assert sorted(w for r, w in jobs if r == "train_palindrome") == lstm_runs, out
    assert not [r for r, _ in jobs if r == "train_text"], out


@pytest.mark.plan
def test_section_2_studies_are_added_and_edited_apart_from_the_other_runs(done):
    """Without Section 2's studies the config plans no training (its runs are what they were
    before those studies existed), and an edit of the phased LSTM's module retrains Section 2's
    runs alone: the phased runs on palindromes and the frequency task's."""
    config = yaml.safe_load((done / "test.yaml").read_text())
    section2 = ("lstm_memory", "phased_short", "phased_long", "frequency_sampling", "frequency_learn")
    for name in section2:
        del config["studies"][name]
    write_config(done / "without.yaml", config)
    jobs, out = planned_jobs(done, config="without.yaml")
    assert not [r for r, _ in jobs if r.startswith("train_")], out
    phased = done / "src" / "rnnrepro" / "models" / "phased.py"
    original = phased.read_text()
    try:
        phased.write_text(original + "\n# an edit of the phased LSTM's module\n")
        jobs, out = planned_jobs(done)
    finally:
        phased.write_text(original)
    timed = [p.parent.name for kind in ("phased", "frequency")
             for p in (done / "results" / "runs" / kind).glob("*/summary.json")]
    assert sorted(w for r, w in jobs if r.startswith("train_")) == sorted(
        f"kind={'phased' if r.startswith('phased') else 'frequency'}, run_id={r}" for r in timed), out
    assert {r for r, _ in jobs if r.startswith("train_")} == {"train_timed"}, out


@pytest.mark.plan
def test_changing_one_study_reruns_only_that_study_and_what_uses_it(done):
    config = yaml.safe_load((done / "test.yaml").read_text())
    config["studies"]["lstm_adam_lr01"]["set"]["lr"] = 0.02
    write_config(done / "changed.yaml", config)
    jobs, out = planned_jobs(done, config="changed.yaml")
    rules = sorted(r for r, _ in jobs)
    trained = [w for r, w in jobs if r.startswith("train_")]
    assert len(trained) == 2 and all("lstm-adam-len6" in w for w in trained), out
    assert [w for r, w in jobs if r == "aggregate_study"] == ["study=lstm_adam_lr01"], out
    figures = sorted(w for r, w in jobs if r == "figure")
    assert figures == ["figure=fig06_lstm_adam_loss", "figure=fig07_lstm_accuracy",
                       "figure=fig11_init_study", "figure=fig_collapse"], out
    assert rules == sorted(["train_palindrome"] * 2 + [
        "aggregate_study", "compute_table"] + ["figure"] * 4 + ["save_config", "scorecard",
        "render_report", "compile_report", "all"]), out


def test_more_text_seeds_train_only_their_runs_and_give_claim_9_an_interval(done, tmp_path):
    """A second seed per temperature (config/text_seeds.yaml gives six): only its three runs
    train, and claim 9 is judged over seeds, by the interval of each seed's lead in steps."""
    work = tmp_path / "copy"
    shutil.copytree(done, work, symlinks=True)
    config = yaml.safe_load((work / "test.yaml").read_text())
    config["studies"]["text_temperature"]["seeds"] = [0, 1]
    write_config(work / "seeds.yaml", config)
    res = snakemake(work, config="seeds.yaml")
    trained = re.findall(r"rule train_(\w+):", res.stdout + res.stderr)
    assert trained == ["text"] * 3, trained
    card = pd.read_csv(work / "results" / "tables" / "scorecard.csv").set_index("claim")
    row = card.loc[9]
    assert row["interval_of"] == "seeds' lead in steps" and row["pairs"] == 2
    assert row["verdict"] == "unresolved"  # two seeds are fewer than outcomes.MIN_PAIRS
    assert row["interval_lo"] <= row["interval_hi"] and "Over 2 seeds" in row["measured"]
    tex = (work / "results" / "report" / "report.tex").read_text()
    assert "Over the 2 seeds run at" in tex and "seeds in order at every target; weaker lead" in tex
    assert "The table gives the runs of seed 0." in tex
    assert (work / "results" / "report" / "report.pdf").stat().st_mtime > \
        (done / "results" / "report" / "report.pdf").stat().st_mtime


@pytest.mark.plan
@pytest.mark.parametrize("key,value", [
    ("device", "auto"), ("threads", 2), ("checkpoint_every", 7), ("impl", "loop"),
    ("jobs_per_gpu", 3), ("runs_per_job", 5), ("mem_mb", 3000), ("deterministic", True),
    ("tensorboard", "results/tensorboard"), ("numerics", "portable"),
])
def test_changing_how_runs_are_computed_retrains_nothing(done, key, value):
    """execution.* is not part of any run's identity: a user can finish on the CPU and move
    to a GPU or a cluster without losing a run. Only the provenance and the report rebuild."""
    config = yaml.safe_load((done / "test.yaml").read_text())
    assert config["execution"].get(key) != value
    config["execution"][key] = value
    write_config(done / f"exec-{key}.yaml", config)
    jobs, out = planned_jobs(done, config=f"exec-{key}.yaml")
    assert not [r for r, _ in jobs if r.startswith("train_")], out
    assert {r for r, _ in jobs} <= {"save_config", "render_report", "compile_report", "all"}, out


@pytest.mark.plan
@pytest.mark.parametrize("key,value", [
    ("retries", 7), ("timeout", 5.0), ("backoff", 0.5), ("max_mb", 20.0),
    ("urls", ["https://example.org/grimm.txt", "file:///elsewhere/grimm.txt"]),
])
def test_how_the_corpus_is_fetched_changes_nothing(done, key, value):
    """Where from and how the corpus is fetched is not what it is: a verified corpus stays,
    and nothing that reads it is made again (only the provenance and the report)."""
    config = yaml.safe_load((done / "test.yaml").read_text())
    config["corpus"][key] = value
    write_config(done / f"fetch-{key}.yaml", config)
    jobs, out = planned_jobs(done, config=f"fetch-{key}.yaml")
    assert {r for r, _ in jobs} <= {"save_config", "render_report", "compile_report", "all"}, out


@pytest.mark.plan
def test_a_deleted_benchmark_file_retrains_nothing(done):
    tsv = next((done / "results" / "compute" / "palindrome").glob("*.tsv"))
    aside = done / "aside.tsv"
    tsv.rename(aside)
    try:
        jobs, out = planned_jobs(done)
    finally:
        aside.rename(tsv)
    assert jobs == [], out


@pytest.mark.plan
def test_values_given_with_config_on_the_command_line_are_read_as_their_types(done):
    """Snakemake hands `--config` list and mapping items over as text: they are read as the
    schema's types; a value of the wrong shape is told the form that works."""
    for given in ("seeds=[0, 1]", "execution={threads: 1, checkpoint_every: 100}"):
        jobs, out = planned_jobs(done, "--config", given)
        assert not [r for r, _ in jobs if r.startswith("train_")], out
    res = snakemake(done, "--dry-run", "--config", "seeds=0", check=False)
    assert res.returncode != 0
    assert "with --config, write seeds=[a, b]" in res.stdout + res.stderr


@pytest.mark.plan
def test_no_extrapolation_without_memory_runs_at_its_first_length(tmp_path, corpus_path):
    """report.extrapolation_lengths starting at a length no memory study trains: no
    extrapolation job and no extrapolation figure; the rest of Section 2 is planned."""
    def edit(config):
        config["report"]["extrapolation_lengths"] = [50, 100]

    workdir = make_workdir(tmp_path, corpus_path, edit)
    jobs, out = planned_jobs(workdir)
    assert not [r for r, _ in jobs if r == "extrapolate"], out
    figures = {w for r, w in jobs if r == "figure"}
    assert "figure=fig_extrapolation" not in figures and "figure=fig_phased_memory" in figures, out


@pytest.mark.plan
def test_batches_split_the_training_and_batching_all_is_told_the_form_that_does(tmp_path, corpus_path):
    workdir = make_workdir(tmp_path, corpus_path)
    jobs, out = planned_jobs(workdir, "--batch", "runs=1/3", "runs")
    trained = [w for r, w in jobs if r.startswith("train_")]
    runs = len(config_run_ids())  # in 3 batches, the first taking one of the remainder
    assert len(trained) == runs // 3 + (runs % 3 > 0) and "Considering only batch 1/3" in out, out
    res = snakemake(workdir, "--dry-run", "--batch", "all=1/3", check=False)
    assert res.returncode != 0 and "Split the training with --batch runs=1/3 runs" in res.stdout + res.stderr


# A few of the config checks through Snakemake itself; tests/test_bad_inputs.py holds the
# rest, through `rnnrepro check-config`, which makes the same checks (studies.py).
@pytest.mark.plan
@pytest.mark.parametrize("override,expect", [
    ({"bogus": 1}, "config: bogus is not one of its keys"),
    ({"execution": {"device": "tpu"}}, "device must be one of ('auto', 'cpu', 'cuda'), got 'tpu'"),
    ({"corpus": {"urls": ["file:///x"], "sha256": "0" * 64, "path": "results/c.txt"}},
     "corpus.path results/c.txt is inside results/"),
    ({"seeds": [2 ** 64]}, "seed must be a whole number in [0, 2**63)"),
    ({"studies": {"x": {"kind": "palindrome", "grid": {"model": ["gru"]}}}},
     "config studies.x.grid: model must be one of ('rnn', 'lstm'), got 'gru'"),
    ({"studies": {"text_temprature": {"kind": "text"}, "rnn_adam": {"kind": "palindrome"}}},
     "studies.text_temprature: not a study the report reads; did you mean text_temperature?"),
    ({"corpus": {"urls": ["file:///x"], "sha256": "0" * 64, "path": "../elsewhere/corpus.txt"}},
     "config corpus: path must lie in the workflow's folder"),
    ({"report": {"convergence_threshold": float("nan")}},
     "config report: convergence_threshold must be a finite number, got nan"),
])
def test_bad_config_is_refused_before_any_job_naming_the_key(tmp_path, corpus_path, override, expect):
    workdir = make_workdir(tmp_path, corpus_path, edit=lambda c: c.update(override))
    res = snakemake(workdir, "--dry-run", check=False)
    assert res.returncode != 0
    assert expect in res.stdout + res.stderr
    assert not (workdir / "results").exists() and not (workdir / "data").exists()


def test_snakemake_html_report_carries_the_figures_with_their_captions(done):
    snakemake(done, "--report", "report.html")
    html = (done / "report.html").read_text(errors="replace")
    for name in FIGURES:  # each figure with the caption the PDF gives it (one source: figures.py)
        assert f"{name}.png" in html, name
        words = " ".join(FIGURES[name]["caption"].split("$")[0].split()[:5])
        assert f"<strong>{name}.</strong> {words}" in html, name
    for part in ("scorecard.csv", "report.pdf", "reproduced end to end"):  # and the front page
        assert part in html, part


def test_without_tex_every_result_but_the_pdf_is_made_with_one_message(done, tmp_path):
    """A machine without TeX (no latexmk, no tectonic on PATH): the workflow makes the rest,
    the rendered .tex and the HTML report included, says once what is missing, and succeeds."""
    workdir = tmp_path / "no-tex"
    shutil.copytree(done, workdir, symlinks=True)
    for name in ("report.pdf", "report.tex"):
        (workdir / "results" / "report" / name).unlink()
    tools = tmp_path / "bin"  # every command of this machine but TeX's
    tools.mkdir()
    for folder in map(Path, ("/usr/local/bin", "/usr/bin", "/bin")):
        for exe in folder.iterdir() if folder.is_dir() else ():
            if exe.name not in ("latexmk", "pdflatex", "tectonic") and not (tools / exe.name).exists():
                (tools / exe.name).symlink_to(exe)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{tools}"}
    res = snakemake(workdir, env=env)
    out = res.stdout + res.stderr
    assert out.count("no TeX on PATH") == 1 and "every result but the PDF" in out, out[-3000:]
    assert "compile_report" not in out
    assert (workdir / "results" / "report" / "report.tex").stat().st_size > 10_000
    assert not (workdir / "results" / "report" / "report.pdf").exists()
    snakemake(workdir, "--report", "report.html", env=env)
    html = (workdir / "report.html").read_text(errors="replace")
    assert "scorecard.csv" in html and "fig01_rnn_rmsprop_loss.png" in html
    assert planned_jobs(workdir)[0] == [("compile_report", ""), ("all", "")]  # with TeX: the PDF
