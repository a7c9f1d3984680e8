"""The report: tables and figures of this run -> a Jinja2 context -> LaTeX -> PDF.

Every number the templates print comes from the context built here out of results/tables;
the templates hold the prose, and sentences that state a result test it first.
"""

import dataclasses
import hashlib
import itertools
import json
import math
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date
from importlib import metadata
from pathlib import Path

import pandas as pd

from rnnrepro.analysis.outcomes import tally
from rnnrepro.analysis.scorecard import Tables, init_label, reference_text_run, steps_to_targets
from rnnrepro.analysis.statistics import ALPHA, MIN_PAIRS, VERDICTS, fisher_exact
from rnnrepro.analysis.tables import SAMPLE_CHECKPOINTS, SETTING_FIELDS
from rnnrepro.config import roles as R
from rnnrepro.config.roles import COLLAPSE_STUDIES, INIT_STUDIES, LR_STUDIES, LR_STUDY, TEXT_STUDY
from rnnrepro.config.kinds import SPECS
from rnnrepro.report.phased_context import PhasedSection, phased_context
from rnnrepro.files import read_json, read_jsonl, read_table
from rnnrepro.report.collapse import Collapse, collapses
from rnnrepro.report.latex import raw
from rnnrepro.report.registry import BAND_TEXT, FIGURES
from rnnrepro.report.words import number

TEMPLATES = Path("report/templates")  # in the checkout (the render rule passes it)


class ReportError(RuntimeError):
    pass


def _mean_sd(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return mean, sd


def first_steps_at(evals, threshold):
    """Per run id: the first evaluated step with held-out accuracy at the threshold (runs that
    never reached it are absent)."""
    reached = evals[evals["accuracy"] >= threshold]
    return reached.groupby("run_id")["step"].min()



def palindrome_rows(t, study):
    """One row per setting (input length, and any other training field the study varies):
    accuracy over seeds, the seeds' outcomes (outcomes.py: kept, lost, never) with the Wilson
    interval of the share converged (kept), and the median first step at the convergence
    threshold (over the seeds that reached it). `variant` names the fields beyond the input
    length that set the row apart ("" where the study varies the length only)."""
    runs = t.study(study)
    if runs is None:
        return []
    evals = t.study(study, "evals")
    first = first_steps_at(evals, t.threshold) if evals is not None else pd.Series(dtype=float)
    varied = [f for f in SETTING_FIELDS if f in runs and runs[f].nunique() > 1]
    rows = []
    for key, g in runs.groupby(["input_length", *varied], sort=True):
        length = key[0] if isinstance(key, tuple) else key
        steps = first.reindex(g["run_id"]).dropna()
        final, final_sd = _mean_sd(g["eval_final_accuracy"].tolist())
        best, _ = _mean_sd(g["eval_best_accuracy"].tolist())
        r = g.iloc[0]
        rows.append({
            "study": study, "input_length": int(length), "model": r["model"],
            # init_std is part of the init's label where both vary
            "variant": ", ".join(_field_text(f, r) for f in varied
                                 if not (f == "init_std" and "init" in varied)),
            "optimizer": r["optimizer"], "lr": float(r["lr"]),
            "steps": int(r["steps"]), **tally(g["outcome"]),
            "final": final, "final_sd": final_sd, "best": best,
            "steps_to": float(steps.median()) if len(steps) else None,
        })
    return rows


def _field_text(field, row):
    """A training field's value as a table row names it: LSTM, N(0, sd 0.01), hidden 64."""
    if field == "model":
        return row["model"].upper()
    if field in ("init", "init_std"):
        return init_label(row["init"], row["init_std"])
    value = row[field]
    return f"{field.replace('_', ' ')} {value:g}" if isinstance(value, float) else f"{field} {value}"


@dataclass
class LrTable:
    """The learning-rate table: the LSTM at `length` under each initialisation (`rows`, each
    with a cell per rate of `lrs` and Fisher's p of the smallest rate against the largest)."""

    length: int
    optimizer: str
    lrs: list
    rows: list
    default: dict  # the default initialisation's row
    alpha: float  # statistics.ALPHA


def lr_by_init(t):
    """The LSTM at the input length of claim 5's learning-rate test, per initialisation and
    learning rate: seeds converged (with the Wilson interval), seeds lost, seeds that never
    reached the criterion, the mean final held-out accuracy and the median first step at the
    criterion. Every run at that length in LR_STUDIES counts once, whichever studies share it."""
    lr_runs = t.study(LR_STUDY)
    if lr_runs is None:
        return None
    length = int(lr_runs["input_length"].max())
    frames = [r for s in LR_STUDIES if (r := t.study(s)) is not None]
    runs = pd.concat(frames).drop_duplicates("run_id")
    runs = runs[(runs["model"] == "lstm") & (runs["input_length"] == length)
                & (runs["optimizer"] == lr_runs["optimizer"].iloc[0])]
    # a default init ignores init_std: one row for it whatever std its runs recorded
    runs = runs.assign(std=runs["init_std"].where(runs["init"] != "default"))
    lrs = sorted(runs["lr"].unique())
    rows = []
    for (init, std), g in sorted(runs.groupby(["init", "std"], dropna=False),
                                 key=lambda kv: (kv[0][0] != "default", kv[0][0], -(kv[0][1] or 0))):
        cells = {}
        for lr, c in g.groupby("lr"):
            reached = c["reached_step"].dropna()
            cells[float(lr)] = {**tally(c["outcome"]), "final": float(c["eval_final_accuracy"].mean()),
                                "reached": float(reached.median()) if len(reached) else None}
        rows.append({"label": init_label(init, std), "init": init, "cells": cells})
    for r in rows:  # the smallest rate against the largest: Fisher's exact test, and which of
        # the two converged in most seeds
        lo, hi = r["cells"].get(float(lrs[0])), r["cells"].get(float(lrs[-1]))
        r["fisher_p"] = r["which"] = None
        if lo and hi and len(lrs) > 1:
            r["fisher_p"] = fisher_exact(lo["converged"], lo["seeds"], hi["converged"], hi["seeds"])
            mostly = tuple(c["converged"] * 2 > c["seeds"] for c in (lo, hi))
            r["which"] = {(True, True): "both", (False, False): "neither", (True, False): "smaller",
                          (False, True): "larger"}[mostly]
    return LrTable(length=length, optimizer=lr_runs["optimizer"].iloc[0],
                   lrs=[float(x) for x in lrs], rows=rows, alpha=ALPHA,
                   default=next((r for r in rows if r["init"] == "default"), None))


def lengths_by_outcome(rows):
    """Input lengths where every seed, some seeds or no seed converged, and per length where
    some seed reached the criterion and lost it, (length, lost, seeds)."""
    out = {"all": [], "some": [], "none": [], "lost": []}
    for r in rows:
        key = "all" if r["converged"] == r["seeds"] else "none" if r["converged"] == 0 else "some"
        out[key].append(r["input_length"])
        if r["lost"]:
            out["lost"].append((r["input_length"], r["lost"], r["seeds"]))
    return out


# a text run overfits when its final held-out loss is more than this fraction above its lowest
OVERFIT_RISE = 0.02


@dataclass
class TextSection:
    """Part 3, the text model: the reference run (`ref`), each temperature's run (`by_T`),
    samples over training (`table1`, `table2`, `sampling_only`), best against final weights,
    the steps to each target and their gaps, and which runs overfit."""

    study: str
    ref: dict
    by_T: list
    table1: list
    table2: list
    best_vs_final: list
    targets: list
    gaps: dict  # the smallest and largest lead in steps, or None
    overfit: list  # the runs whose held-out loss ends more than overfit_rise above its lowest
    overfit_rise: float
    sampling_only: list
    sample_temperatures: list
    best_val: float
    logged_steps: int


def text_context(t, study):
    runs, evals, samples = t.study(study), t.study(study, "evals"), t.study(study, "samples")
    if runs is None:
        return None
    ref = reference_text_run(runs)
    curves = t.study(study, "curves")
    ref_evals = evals[evals["run_id"] == ref["run_id"]]
    samples = samples.sort_values("text").groupby(
        ["run_id", "checkpoint", "temperature", "step", "method", "sample_temperature"],
        dropna=False).head(1)
    best_samples = samples[samples["checkpoint"] == SAMPLE_CHECKPOINTS[1]]
    samples = samples[samples["checkpoint"] == SAMPLE_CHECKPOINTS[0]]

    greedy = samples[(samples["run_id"] == ref["run_id"]) & (samples["method"] == "greedy")]
    table1 = [{"step": int(r.step), "text": r.text} for r in greedy.sort_values("step").itertuples()]

    table2 = []  # each training temperature's own greedy and random samples
    for T, g in samples.groupby("temperature"):
        g = g[g["seed"] == g["seed"].min()]
        for step, s in g.groupby("step"):
            gr = s[s["method"] == "greedy"]["text"]
            rn = s[(s["method"] == "random") & ((s["sample_temperature"] - T).abs() < 1e-9)]["text"]
            table2.append({"temperature": float(T), "step": int(step),
                           "greedy": gr.iloc[0] if len(gr) else None,
                           "random": rn.iloc[0] if len(rn) else None})

    ref_random = samples[(samples["run_id"] == ref["run_id"]) & (samples["method"] == "random")]
    sampling_only = []  # the reference model sampled at every temperature
    for step, s in ref_random.groupby("step"):
        sampling_only.append({"step": int(step), "by_t": {float(r.sample_temperature): r.text
                                                         for r in s.itertuples()}})
    by_T, best_vs_final = [], []
    for T, g in runs.groupby("temperature"):
        r = g.sort_values("seed").iloc[0]
        e = evals[evals["run_id"] == r["run_id"]]
        at_best = e[e["step"] == r["eval_lowest_loss_step"]].iloc[0]
        by_T.append({"temperature": float(T), "final_batch_accuracy": r["final_batch_accuracy"],
                     "eval_final_accuracy": r["eval_final_accuracy"],
                     "eval_final_bpc": r["eval_final_bpc"], "final_loss": r["final_loss"],
                     "eval_final_loss": r["eval_final_loss"],
                     "lowest_loss": r["eval_lowest_loss"],
                     "lowest_loss_step": int(r["eval_lowest_loss_step"]),
                     "accuracy_at_lowest": float(at_best["accuracy"]),
                     "accuracy_change": r["eval_final_accuracy"] - float(at_best["accuracy"]),
                     "rise": r["eval_final_loss"] / r["eval_lowest_loss"] - 1})
        last = samples[(samples["run_id"] == r["run_id"]) & (samples["step"] == samples["step"].max())]
        best = best_samples[best_samples["run_id"] == r["run_id"]]
        for method in ("greedy", "random"):
            def pick(df, method=method):
                df = df[df["method"] == method]
                if method == "random":
                    df = df[(df["sample_temperature"] - T).abs() < 1e-9]
                return df["text"].iloc[0] if len(df) else None
            best_vs_final.append({"temperature": float(T), "method": method,
                                  "best_step": int(r["eval_lowest_loss_step"]),
                                  "final_step": int(r["steps"]),
                                  "best": pick(best), "final": pick(last)})
    targets = [{"label": label, "steps": steps}
               for label, steps in steps_to_targets(evals, ref, ref["seed"])]
    # how far apart neighbouring temperatures met each target (T ascending), where both did
    gaps = [b - a for row in targets for a, b in itertools.pairwise(
        [row["steps"][T] for T in sorted(row["steps"])]) if a is not None and b is not None]
    return TextSection(
        study=study, ref=ref.to_dict(), by_T=by_T, table1=table1, table2=table2,
        best_vs_final=best_vs_final, targets=targets,
        gaps={"min": min(gaps), "max": max(gaps)} if gaps else None,
        overfit=[r for r in by_T if r["rise"] > OVERFIT_RISE], overfit_rise=OVERFIT_RISE,
        sampling_only=sampling_only,
        sample_temperatures=sorted({float(x) for x in ref_random["sample_temperature"].dropna()}),
        best_val=ref_evals["accuracy"].max(),
        logged_steps=len(curves[curves["run_id"] == ref["run_id"]]),
    )


@dataclass
class InitSection:
    """The initialisation study: each initialisation's verdicts and share of the original's
    pattern (`variants`), the best overall and per model (ties named), and the closest pair."""

    variants: list
    best: dict
    default: dict
    claims: list
    seeds: int
    reproduced: list
    per_model: dict
    models: tuple
    pair: dict  # the closest initialisation per model, or None
    pair_whole: bool


def init_context(tables_dir):
    """The initialisation study: per initialisation, the verdicts of claims 1, 4, 5, 6 and
    the share of the original's convergence pattern it reproduces, whole and per model; per
    model the initialisations that reproduce its part, and the best pair of them."""
    path = Path(tables_dir) / "scorecard_init.csv"
    df = read_table(path) if path.exists() else pd.DataFrame()
    if df.empty:
        return None
    variants = []
    for (label, init, std), g in df.groupby(["label", "init", "init_std"], sort=False):
        first = g.iloc[0]
        variants.append({"label": label, "init": init, "std": std,
                         "match": float(first["pattern_match"]),
                         "model_match": {m: number(first[f"{m}_match"]) for m in MODELS},
                         "verdicts": {int(r.claim): r.verdict for r in g.itertuples()},
                         "measured": {int(r.claim): r.measured for r in g.itertuples()}})
    best = max(variants, key=lambda v: v["match"])
    default = next((v for v in variants if v["init"] == "default"), None)
    per_model = {}
    for m in MODELS:
        scored = [v for v in variants if v["model_match"][m] is not None]
        top = max(scored, key=lambda v: v["model_match"][m]) if scored else None
        per_model[m] = {"best": top, "reproduced": [v for v in scored if v["model_match"][m] == 1.0],
                        # every initialisation as close as the best: a tie is named, not hidden
                        "tied": [v for v in scored if v["model_match"][m] == top["model_match"][m]]
                        if top else []}
    pair = {m: per_model[m]["best"] for m in MODELS}
    return InitSection(variants=variants, best=best, default=default,
                       claims=sorted({int(c) for c in df["claim"]}),
                       seeds=int(df["judged"].max()),
                       reproduced=[v for v in variants if v["match"] == 1.0],
                       per_model=per_model, models=MODELS,
                       pair=pair if all(pair.values()) else None,
                       pair_whole=all(v and v["model_match"][m] == 1.0 for m, v in pair.items()))


MODELS = ("rnn", "lstm")  # the models whose part of the pattern is judged apart


@dataclass
class ComputeSection:
    """What the runs cost and how they computed: per kind, the jobs and their time."""

    kinds: list
    jobs: int
    job_seconds: float
    unmeasured: int  # jobs whose benchmark file is missing
    numerics: list  # (mode, CPU kernel set) -> runs: how the runs' floats were computed
    devices: list
    shared: int  # runs trained in another run's job
    stacked: int  # runs trained in a stack


def compute_context(tables_dir):
    path = Path(tables_dir) / "compute.csv"
    df = read_table(path, "compute table", ("kind", "job_seconds", "train_seconds", "device"))
    kinds = []
    for kind, g in df.groupby("kind"):
        kinds.append({"kind": kind, "jobs": len(g), "job_seconds": g["job_seconds"].sum(),
                      "train_seconds": g["train_seconds"].sum(), "mean_seconds": g["job_seconds"].mean(),
                      "max_rss_mb": g["max_rss_mb"].max()})
    shared = df["trained_in_job_of"].fillna("").astype(str) if "trained_in_job_of" in df else None
    numerics = (df.groupby(["numerics", "cpu_kernels"], dropna=False).size().to_dict()
                if "numerics" in df else {})
    return ComputeSection(
        kinds=kinds, jobs=len(df), job_seconds=df["job_seconds"].sum(),
        unmeasured=int(df["job_seconds"].isna().sum()),
        numerics=[{"mode": m, "kernels": k if isinstance(k, str) and k else None, "runs": n}
                  for (m, k), n in sorted(numerics.items(), key=lambda kv: -kv[1])],
        devices=sorted(df["device"].unique()),
        shared=int((shared != "").sum()) if shared is not None else 0,
        stacked=int((df["runs_in_step"] > 1).sum()) if "runs_in_step" in df else 0)


@dataclass
class BenchSection:
    """The speed benchmark's table (only where it ran)."""

    rows: list
    quick: bool  # a check with a few steps, not a timing


def bench_context(path, quick=False):
    """The speed benchmark: per case and thread count, the course baseline, the project's
    step and the plain nn.LSTM model, as steps/s and ratios, and the ceiling: the ratio to
    the course of the step's matmuls alone."""
    if not path or not Path(path).exists():
        return None
    df = read_table(path, "speed benchmark", ("case", "threads", "implementation", "steps_per_s"))
    df = df[df["case"] != "job-overhead"]
    rows = []
    for (case, threads), g in df.groupby(["case", "threads"], sort=False):
        def pick(name, g=g):
            rows = g[g["implementation"] == name]
            return rows.iloc[0] if len(rows) else None

        course, project, plain = pick("course"), pick("project"), pick("plain-nn.LSTM")
        floor = pick("floor:matmuls")
        if course is None or project is None:
            continue
        rows.append({"case": case, "threads": int(threads), "impl": project["impl"],
                     "course": course["steps_per_s"], "project": project["steps_per_s"],
                     "ratio": project["ratio_to_baseline"],
                     "ratio_plain": None if plain is None else project["ratio_to_plain"],
                     "floor": project["floor_fraction"],
                     "ceiling": None if floor is None else floor["ratio_to_baseline"]})
    return BenchSection(rows=rows, quick=quick)


@dataclass
class GradientSection:
    """The gradient probe: per model, the mean gradient norm at the first and last step of a
    `length`-step input and their ratio."""

    length: int
    rnn: dict
    lstm: dict
    phased: dict = None  # where the probe measured the phased LSTM too


def gradient_context(tables_dir):
    df = read_table(Path(tables_dir) / "grad_norms.csv", "gradient-norm table",
                    ("model", "k", "grad_norm"), ("k", "grad_norm"), rows=True)
    ends = {}
    for model, g in df.groupby("model"):
        m = g.groupby("k")["grad_norm"].mean()
        ends[model] = {"first": m.iloc[0], "last": m.iloc[-1], "ratio": m.iloc[0] / m.iloc[-1]}
    return GradientSection(length=int(df["k"].max()), rnn=ends.get("rnn"), lstm=ends.get("lstm"),
                           phased=ends.get("phased"))


def provenance(config):
    def git(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None
    canonical = json.dumps(config, sort_keys=True).encode()
    return {
        "commit": commit or "not a git checkout", "dirty": dirty,
        "config_sha256": hashlib.sha256(canonical).hexdigest(),
        "date": date.today().isoformat(),
        "python": platform.python_version(),
        "packages": {p: version(p) for p in ("torch", "snakemake", "snakemake-executor-plugin-slurm",
                                             "pandas", "numpy", "seaborn", "matplotlib", "jinja2")},
        "platform": platform.platform(),
    }


@dataclass
class ReportContext:
    """Everything the report's templates read, each under its name, a section each a dataclass
    of its own (here and in report/collapse.py); None where a study did not run."""

    config: dict  # the resolved config: the schema filled in every default
    threshold: float  # report.convergence_threshold
    smoothing: int  # report.smoothing_window
    band: str  # the wording of the bands around mean curves
    seeds: list  # every seed any study trains
    defaults: dict  # per kind, what a run gets where no study sets a field
    figures: dict  # name -> path (relative to the tex file) and caption, of the figures drawn
    missing_figures: list  # registered figures not drawn (their studies did not run)
    studies: dict  # palindrome study -> palindrome_rows
    study_names: dict  # the studies the report reads (config.roles)
    outcomes: dict  # palindrome study -> lengths_by_outcome
    table_studies: dict  # the palindrome table's studies (all but the initialisation studies)
    scorecard: list  # the rows of scorecard.csv
    verdict: dict  # claim -> verdict
    claim_rows: dict  # claim -> its scorecard row
    verdict_counts: dict  # verdict -> how many claims got it
    collapses: Collapse  # the "Learned, then lost" subsection
    lr_by_init: LrTable
    min_pairs: int  # statistics.MIN_PAIRS
    text: TextSection
    corpus: dict  # corpus_stats.json
    completions: list  # completions.jsonl (empty without a text study)
    lstm_params: object  # the LSTM's counted and formula parameters
    compute: ComputeSection
    init: InitSection
    bench: BenchSection  # None unless the bench ran
    gradients: GradientSection
    phased: PhasedSection  # Section 2
    meta: dict  # provenance

    def variables(self):
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def build_context(tables_dir, figures_dir, figures, config, bench=None, tex_dir="."):
    report = config["report"]  # the resolved config: the schema filled in every default
    threshold = report["convergence_threshold"]
    t = Tables(tables_dir, threshold, frequency_target=report["frequency_target"],
               extrapolation_size=report["extrapolation_size"])
    studies = {name: palindrome_rows(t, name) for name in config["studies"]
               if config["studies"][name]["kind"] == "palindrome"}
    outcomes = {name: lengths_by_outcome(rows) for name, rows in studies.items()}
    scorecard = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
                 for r in read_table(Path(tables_dir) / "scorecard.csv", "scorecard").to_dict("records")]
    lstm_runs = [r for s in (R.LSTM_ADAM, R.LSTM_RMSPROP) if (r := t.study(s)) is not None]
    lstm = pd.concat(lstm_runs).iloc[0] if lstm_runs else None
    seeds = sorted({s for st in config["studies"].values() for s in st.get("seeds", config["seeds"])})
    completions = Path(tables_dir) / "completions.jsonl"
    return ReportContext(
        config=config, threshold=threshold, smoothing=report["smoothing_window"],
        band=BAND_TEXT, seeds=seeds,
        # what a run gets where no study sets a field: rnnrepro.config.spec, under the config's defaults
        defaults={kind: {**cls.defaults(), **config["defaults"].get(kind, {})}
                  for kind, cls in SPECS.items()},
        # relative to the tex file, which LaTeX reads from its own folder: the checkout's
        # path (spaces, quotes, any letters) never reaches LaTeX
        figures={name: {"path": os.path.relpath(Path(figures_dir) / f"{name}.pdf", tex_dir),
                        "caption": raw(FIGURES[name]["caption"])} for name in figures},
        missing_figures=[name for name in FIGURES if name not in figures],
        studies=studies, study_names=R.NAMES, outcomes=outcomes,
        # the palindrome table: every study but the initialisation studies, which have tables
        # of their own (the init table and the learning-rate table)
        table_studies={name: rows for name, rows in studies.items() if name not in INIT_STUDIES},
        scorecard=scorecard, verdict={r["claim"]: r["verdict"] for r in scorecard},
        claim_rows={r["claim"]: r for r in scorecard},
        verdict_counts={v: sum(r["verdict"] == v for r in scorecard) for v in VERDICTS},
        collapses=collapses(t, COLLAPSE_STUDIES),
        lr_by_init=lr_by_init(t), min_pairs=MIN_PAIRS,
        text=text_context(t, TEXT_STUDY),
        corpus=read_json(Path(tables_dir) / "corpus_stats.json", "corpus statistics"),
        completions=read_jsonl(completions) if completions.exists() else [],
        lstm_params=None if lstm is None else {
            "n": int(lstm["hidden"]), "counted": int(lstm["cell_parameters"]),
            "formula": int(lstm["cell_formula"]), "total": int(lstm["parameters"])},
        compute=compute_context(tables_dir),
        init=init_context(tables_dir),
        bench=bench_context(bench, config.get("bench", {}).get("quick", False)),
        gradients=gradient_context(tables_dir),
        phased=phased_context(t, report["frequency_target"]),
        meta=provenance(config),
    )


def render(context, tex_out, template="report.tex.j2", template_dir=TEMPLATES):
    from rnnrepro.files import atomic_write
    from rnnrepro.report.latex import environment

    env = environment(template_dir)
    tex = env.get_template(template).render(**context.variables())
    atomic_write(tex_out, lambda f: f.write(tex))
    return tex_out


def build(tables_dir, figures_dir, figures, config, tex_out, bench=None, template_dir=TEMPLATES):
    """The report's LaTeX from the tables and figures (no TeX needed)."""
    context = build_context(tables_dir, figures_dir, figures, config, bench, Path(tex_out).parent)
    return render(context, tex_out, template_dir=template_dir)


def compile_report(tex, pdf_out):
    """The PDF of a rendered report (latex.compile_pdf), and a copy kept as the last good one;
    text that runs past a margin is named in the output (the rule's log)."""
    from rnnrepro.report.latex import build_log, compile_pdf, overfull_boxes

    pdf = compile_pdf(Path(tex), Path(pdf_out))
    log = build_log(tex)
    for box in overfull_boxes(log.read_text(encoding="utf-8", errors="replace")
                              if log.exists() else ""):
        print(f"warning: {tex}: {box}")
    # Snakemake removes a job's outputs before it reruns it; this copy, which no rule
    # declares, keeps the last good PDF through a failed rebuild.
    keep = pdf.parent / "last-good" / pdf.name
    keep.parent.mkdir(exist_ok=True)
    shutil.copyfile(pdf, keep)
    return pdf
