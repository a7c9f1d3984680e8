# The run table: studies in the config -> one training run per distinct spec.
import json
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from rnnrepro.run import jobs as J
from rnnrepro import sources
from rnnrepro.config import studies as S
from rnnrepro.analysis.tables import study_table_path
from rnnrepro.config.roles import MEMORY_STUDIES, TEXT_STUDY
from rnnrepro.report.registry import FIGURES, rst_caption
from rnnrepro.report.latex import NO_TEX, tex_engine
from rnnrepro.config.spec import RUN_ID, reference_order

# RUNS, STUDY_RUNS and EXEC come from the Snakefile's check of the config.

# Jobs run `rnnrepro` from this checkout's src/ (the code its rerun triggers watch, also
# when the package is installed elsewhere) in the rule's software environment. Under
# `--sdm conda` that is the conda environment each rule names (ENV); otherwise the Python
# that runs Snakemake, also inside cluster jobs, whatever the caller's PATH.
ENV = "../envs/rnnrepro.yaml"
REPORT_ENV = "../envs/report.yaml"  # ENV and a TeX engine
USES_CONDA = "CONDA" in {m.name for m in workflow.deployment_settings.deployment_method}
PREFIX = S.shell_prefix(Path(workflow.basedir, "src"), "python" if USES_CONDA else sys.executable)
shell.prefix(PREFIX.replace("{", "{{").replace("}", "}}"))  # Snakemake formats the prefix

# Without TeX the workflow makes every result but the PDF (its rendered .tex included) and
# says so once; under --sdm conda the report's environment brings tectonic.
HAS_TEX = USES_CONDA or tex_engine() is not None
REPORT_TARGET = "results/report/report.pdf" if HAS_TEX else "results/report/report.tex"

MEM_MB = config["execution"]["mem_mb"]  # Snakemake's resource, not an Execution field
GPU = int(S.uses_gpu(EXEC.device))
# How runs are computed reaches the training command as a resource (like threads), never
# through `params:` (a rerun trigger): changing a device, a thread count or the GPU sharing
# must not retrain a run that is complete. Each run's summary.json records what it ran with.
EXEC_ARGS = shlex.join(S.cli_args(EXEC, skip=("threads",)) + ["--run-table", J.RUN_TABLE])
# How the corpus is fetched (where from, how often, how long) is a resource too: changing it
# neither deletes a verified corpus nor reruns anything; its sha256 (what it is) is a param.
FETCH_ARGS = shlex.join(
    ["--url", *config["corpus"]["urls"]]
    + [
        f"--{k.replace('_', '-')}={config['corpus'][k]}"
        for k in ("retries", "timeout", "backoff", "max_mb")
    ]
)
REPORT = config["report"]
HAS_TEXT = TEXT_STUDY in STUDY_RUNS  # without it the report skips part 3

# A training job depends on the code that decides its run's results (rnnrepro.sources:
# the loop, the run's task and its own model's module, read from the imports): edit the
# LSTM's module and the LSTM runs retrain, not the RNN or text runs (`snakemake -n` says
# why). Every other rule depends on the code its `rnnrepro` command runs, so restyling a
# figure never retrains, and a new module or a moved caption cannot escape the rerun rules.
SRC = Path("src/rnnrepro")


def run_code(wildcards):
    return [str(SRC / m) for m in sources.run_code(RUNS[wildcards.run_id].spec)]


def study_table(study, table):
    """results/tables/<the aggregate module's layout> (a wildcard such as "{study}" stays)."""
    return str(study_table_path("results/tables", study, table))


def command_code(name):
    return [str(SRC / m) for m in sources.command(name)]


RUN_DIR = "results/runs/{kind}/{run_id}"


wildcard_constraints:
    run_id=RUN_ID,
    study=r"[A-Za-z][A-Za-z0-9_]*",
    figure=r"[A-Za-z0-9_]+",


def check_folders():
    """Where the workflow writes folders, a file in the way is named before any job (Snakemake
    would fail at the job with a NotADirectoryError traceback)."""
    folders = {
        Path(p)
        for p in (
            "results/tables/studies",
            "results/figures",
            "results/report",
            "results/benchmarks",
            "logs",
            Path(config["corpus"]["path"]).parent,
        )
    }
    for run_id, run in RUNS.items():
        folders |= {
            Path(run_file(run_id, "")),
            Path("logs/train") / run.kind,
            Path("results/compute") / run.kind,
        }
    for folder in sorted(folders):
        for p in (folder, *folder.parents):
            if p.exists() and not p.is_dir():
                raise WorkflowError(
                    f"{p} is a file where the workflow keeps a folder: move it away"
                )


def run_ids(kind):
    return [r for r, run in RUNS.items() if run.kind == kind]


def run_file(run_id, name):
    return str(Path(RUN_DIR.format(kind=RUNS[run_id].kind, run_id=run_id)) / name)


def study_files(study, name):
    return [run_file(r, name) for r in STUDY_RUNS[study]]


def train_args(wildcards):
    return shlex.join(S.cli_args(RUNS[wildcards.run_id].spec))


def train_runtime(wildcards, attempt):
    """Minutes for the cluster's time limit: a CPU estimate, doubled on each retry."""
    spec = RUNS[wildcards.run_id].spec
    per_second = 20 if spec.kind == "text" else 60
    if spec.kind == "phased":  # about 26 ms a step at input length 20 (benchmarks/README.md)
        per_second = max(1, 800 // spec.input_length)
    elif spec.kind == "frequency":  # steps/s at 32 units; 0.1 ms sampling: ten times the steps
        rate = (30 if spec.model == "phased" else 150) * 32 / max(32, spec.hidden)
        per_second = max(1, int(rate / (10 if spec.sampling == "fine" else 1)))
    return (10 + spec.steps // per_second // 60) * 2 ** (attempt - 1)


TIMED_KINDS = ("phased", "frequency")  # the kinds train_timed trains


def extrapolation_runs():
    """(study, run id) of the memory studies' runs trained at the first extrapolation length."""
    length = REPORT["extrapolation_lengths"][0]
    return [
        (s, r)
        for s in MEMORY_STUDIES
        for r in STUDY_RUNS.get(s, [])
        if RUNS[r].spec.input_length == length
    ]


# the extrapolation table, where the config has runs for it (the scorecard and figures read it)
EXTRAPOLATION = ["results/tables/extrapolation.csv"] if extrapolation_runs() else []


def text_reference_run():
    """The report's reference text run (spec.reference_order) of the text study."""
    specs = [RUNS[r].spec for r in STUDY_RUNS[TEXT_STUDY]]
    return min(specs, key=lambda s: reference_order(s.temperature, s.seed)).run_id()


check_folders()


# Figures whose studies are all in the config and whose tables are made (the extrapolation
# needs memory runs at its first length); the report lists the others as not drawn.
OPTIONAL_TABLES = {"extrapolation.csv": bool(EXTRAPOLATION)}
ACTIVE_FIGURES = [
    f
    for f in FIGURES
    if all(s in STUDY_RUNS for s in FIGURES[f]["studies"])
    and all(OPTIONAL_TABLES.get(t, True) for t in FIGURES[f].get("tables", []))
]


def figure_inputs(wildcards):
    spec = FIGURES[wildcards.figure]
    tables = [
        study_table(s, t)
        for s in FIGURES[wildcards.figure]["studies"]
        for t in ("runs", "curves", "evals")
    ]
    tables += [f"results/tables/{t}" for t in spec.get("tables", [])]
    return {"tables": tables, "code": command_code("figure")}


def all_study_tables():
    return [study_table(s, t) for s in STUDY_RUNS for t in ("runs", "evals")]


def check_device():
    """execution.device: cuda where this Snakemake runs its jobs itself (no cluster executor)
    and torch sees no CUDA: refused when the workflow starts, not at the first training job.
    A cluster submit host needs no GPU of its own, so the check is for local runs only."""
    if EXEC.device != "cuda" or not workflow.local_exec:
        return
    import torch

    if not torch.cuda.is_available():
        why = (
            "this torch is a CPU build"
            if torch.version.cuda is None
            else f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no CUDA device"
        )
        raise WorkflowError(
            f"invalid configuration: execution.device is cuda, and {why}. Use "
            "execution.device: auto (CUDA where there is one, else the CPU) or "
            "cpu, or submit the jobs to GPU nodes (--executor slurm)"
        )


def say_if_no_tex():
    if not HAS_TEX:
        print(
            f"rnnrepro: {NO_TEX}. This run makes every result but the PDF: the tables, the "
            "figures, results/report/report.tex and `snakemake --report`; run again with TeX "
            "for results/report/report.pdf.",
            file=sys.stderr,
        )


def planned_training_runs():
    """Run ids of the training jobs Snakemake is about to run, or None where its plan cannot
    be read (Snakemake keeps it in its DAG, which it does not document)."""
    try:
        return {
            job.wildcards.run_id
            for job in workflow.dag.needrun_jobs()
            if job.rule.name in ("train_palindrome", "train_text", "train_timed")
        }
    except (AttributeError, TypeError):
        return None


def write_run_table():
    """The runs this invocation trains, for training jobs that take on others' runs
    (execution.runs_per_job); written when the workflow starts, never in a dry run."""
    J.write_run_table(
        J.RUN_TABLE,
        RUNS,
        lambda r: Path(run_file(r, "")),
        config["corpus"]["path"],
        planned_training_runs(),
    )


def report_missing_runs():
    """After a failure: which runs have no results yet, and the last line of each one's log,
    so that a diverged or killed run is named instead of left to a traceback."""
    missing = [r for r in RUNS if not Path(run_file(r, "summary.json")).exists()]
    if not missing:
        return
    lines = [f"{len(missing)} of {len(RUNS)} training runs have no results yet:"]
    for r in missing:
        log = Path("logs/train") / RUNS[r].kind / f"{r}.log"
        last = ""
        if log.exists():  # lines, and the progress bar's redraws (\r)
            text = log.read_text(errors="replace").replace("\r", "\n")
            tail = [l for l in text.splitlines() if l.strip()]
            last = tail[-1] if tail else ""
        lines.append(f"  {r} (studies: {', '.join(RUNS[r].studies)}) {last}")
    lines.append(
        "The report needs every run. Fix or remove the failed ones and run again; "
        "--keep-going lets the other jobs finish meanwhile."
    )
    print("\n".join(lines), file=sys.stderr)


def all_inputs(wildcards):
    """The report (the PDF, or where there is no TeX, its LaTeX) and what it is made from:
    Snakemake keeps a present, up-to-date report whose inputs were deleted ("Nothing to be
    done"); asked for here, a deleted run folder, summary.json, table or figure is made again,
    and the report after it. Snakemake's --batch splits the sorted inputs of one rule, and
    the report, one of these, needs every run: `--batch all=…` is refused for the form that
    splits the training."""
    batch = workflow.dag_settings.batch
    if batch is not None and batch.rulename == "all":
        raise WorkflowError(
            f"--batch all={batch.idx}/{batch.batches} cannot split the work: the report, one "
            "of all's inputs, needs every run. Split the training with --batch runs=1/3 runs "
            "(then 2/3 and 3/3), then run snakemake for the rest"
        )
    return [REPORT_TARGET, *rules.render_report.input, *(run_file(r, "summary.json") for r in RUNS)]
