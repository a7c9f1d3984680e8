"""The command line the workflow's rules call: `rnnrepro <command> ...`.

Heavy modules (torch and everything built on it) are imported inside the commands, so
`--help` and argument errors answer at once.
"""

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
from pathlib import Path

from rnnrepro.config.kinds import SPECS
from rnnrepro.config.spec import INITS, MODELS, Execution, PalindromeSpec, SpecError, TextSpec


def _spec_arguments(parser, cls, title=None):
    """A flag per field of `cls`, taken as text: `_build_spec` reads it as the schema's type
    and checks it as the config's value of that field is checked (studies.check_fields)."""
    group = parser.add_argument_group(
        title or f"{cls.kind} run spec (defaults: the course's train.py, held by rnnrepro.config.spec)")
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        if isinstance(default, bool):
            group.add_argument(flag, dest=f.name, default=None, metavar="{true,false}",
                               help=f"default: {str(default).lower()}")
        elif isinstance(default, tuple):
            group.add_argument(flag, dest=f.name, nargs="*", default=None,
                               help=f"default: {list(default)}")
        else:
            group.add_argument(flag, dest=f.name, default=None, metavar=type(default).__name__.upper(),
                               help=f"default: {default}")
    if cls is not Execution:
        parser.add_argument("--spec", type=Path, help="JSON file of spec fields (flags override it)")


def _read_spec(path):
    if not path:
        return {}
    try:
        fields = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"--spec {path}: no such file") from None
    except (ValueError, OSError) as err:
        raise SpecError(f"--spec {path}: not JSON ({err})") from None
    if not isinstance(fields, dict):
        raise SpecError(f"--spec {path}: a JSON object of spec fields is wanted, got a "
                        f"{type(fields).__name__}")
    return fields


def _build_spec(cls, args, fields=None, source=None):
    """`cls` from `fields` (a --spec file's, named `source`) and the flags given, checked by
    the config's rules (and a run spec against this machine's memory, as the config's are
    against execution.mem_mb); an error names the flag, or the file, that gave the value."""
    from rnnrepro.config.checks import coerce, machine_memory_mb, memory_problem
    from rnnrepro.config.studies import check_fields, field_schema

    fields, flags = dict(fields or {}), set()
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name)
        if value is not None:
            fields[f.name] = coerce(value, field_schema(cls, f.name))
            flags.add(f.name)

    def where(key):
        return f"--{key.replace('_', '-')}" if key in flags else (source or "the command line")

    built = check_fields(cls, fields, where)
    budget = machine_memory_mb() if cls is not Execution else None
    problem = budget and memory_problem(built, budget, "this machine's memory")
    if problem:
        raise SpecError(f"{where(problem.field)}: {problem}", problem.field)
    return built


def cmd_train(args):
    spec = _build_spec(SPECS[args.kind], args, _read_spec(args.spec), args.spec and f"--spec {args.spec}")
    execution = _build_spec(Execution, args)
    from rnnrepro.run.numerics import set_environment

    set_environment(execution.numerics)  # before torch loads (jobs imports it)
    from rnnrepro.run.jobs import train_job

    _outputs(args.out, folder=True)
    summary = train_job(spec, args.out, execution, corpus=getattr(args, "corpus", None),
                        run_table=args.run_table, inject_nan_at=args.inject_nan_at)
    print(json.dumps({"run_id": summary["run_id"], "eval_final": summary["eval_final"],
                      "wall_seconds": round(summary["wall_seconds"], 2)}))


def cmd_sample(args):
    from rnnrepro.analysis.completions import resample
    from rnnrepro.files import write_jsonl
    from rnnrepro.train.loop import resolve_device

    _outputs(args.out, inputs=args.checkpoint)
    write_jsonl(args.out, resample(args.checkpoint, args.temperatures, args.n, args.length,
                                   args.seed, resolve_device(args.device)))


def cmd_complete(args):
    from rnnrepro.analysis.completions import complete
    from rnnrepro.files import write_jsonl
    from rnnrepro.train.loop import resolve_device

    _from_schema(args, length="completion_length")
    _outputs(args.out, inputs=[args.checkpoint])
    write_jsonl(args.out, complete(args.checkpoint, args.prompts, args.length, args.methods,
                                   args.temperature, args.seed, args.chunk,
                                   resolve_device(args.device)))


# the speed benchmark's module, in the checkout beside the course-style baseline it times
# against (neither is part of the package; the bench rule passes both)
SPEED = Path("benchmarks/speed.py")


def load_speed(path=SPEED):
    """benchmarks/speed.py, the module behind `rnnrepro bench`, loaded from the checkout."""
    import importlib.util

    if not Path(path).is_file():
        raise FileNotFoundError(f"the speed benchmark is not at {path}: run rnnrepro bench in the "
                                "checkout, or give --module")
    spec = importlib.util.spec_from_file_location("rnnrepro_speed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cmd_bench(args):
    bench = load_speed(args.module)
    _from_schema(args, "bench", threads="threads")
    corpus = args.corpus or os.environ.get("RNNREPRO_CORPUS") or "data/grimms_fairy_tales.txt"
    bench.run(cases=args.cases, threads=args.threads, corpus=corpus, quick=args.quick,
              rounds=args.rounds, seconds=args.seconds, overhead=not args.no_overhead,
              baseline=args.baseline or bench.BASELINE, out=args.out)


def cmd_gpu_slots(args):
    from rnnrepro.run.gpus import visible_gpus, workflow_slots

    if not args.config.is_file():
        raise SpecError(f"--config {args.config}: no such file")
    print(workflow_slots(args.config))
    if args.verbose:
        print(f"visible GPUs: {visible_gpus() or 'none'}", file=sys.stderr)


def cmd_check_config(args):
    from rnnrepro.config.studies import SCHEMA, check_config_file, execution

    config, runs, study_runs = check_config_file(*args.configfile, schema_path=args.schema or SCHEMA)
    print(f"{' + '.join(map(str, args.configfile))}: valid; {len(study_runs)} studies, "
          f"{len(runs)} training runs, execution.device {execution(config).device}")


def cmd_config_reference(args):
    from rnnrepro.config.reference import config_reference
    from rnnrepro.config.studies import SCHEMA
    from rnnrepro.files import atomic_write

    text = config_reference(args.schema or SCHEMA)
    if args.out:
        _outputs(args.out)
        atomic_write(args.out, lambda f: f.write(text))
    else:
        sys.stdout.write(text)


def cmd_save_config(args):
    from rnnrepro.files import atomic_write

    try:
        config = json.loads(args.config)
    except ValueError as err:
        raise SpecError(f"the config is not JSON ({err})") from None
    if not isinstance(config, dict):
        raise SpecError(f"the config must be a JSON object, got a {type(config).__name__}")
    _outputs(args.out)
    atomic_write(args.out, lambda f: f.write(json.dumps(config, sort_keys=True) + "\n"))


def cmd_download(args):
    from rnnrepro.data.download import download

    _from_schema(args, "corpus", retries="retries", timeout="timeout", backoff="backoff",
                 max_mb="max_mb")
    _outputs(args.out)
    download(args.url, args.sha256, args.out, args.retries, args.timeout, args.backoff,
             args.max_mb)


def cmd_corpus_stats(args):
    from rnnrepro.data.corpus import Corpus
    from rnnrepro.files import write_json

    _outputs(args.out, inputs=[args.corpus])
    corpus = Corpus.from_file(args.corpus, args.val_fraction)
    corpus.check_prompts(args.prompts)  # the report's prompts, checked before training
    write_json(args.out, corpus.stats())


def cmd_grad_probe(args):
    from rnnrepro.analysis.gradients import COLUMNS, probe
    from rnnrepro.files import write_csv

    _from_schema(args, input_length="probe_length")
    _outputs(args.out)
    write_csv(args.out, probe(args.models, args.input_length, args.hidden, args.batch, args.init,
                              args.seeds, args.threads), COLUMNS)


def cmd_extrapolate(args):
    from rnnrepro.analysis.extrapolation import COLUMNS, extrapolate
    from rnnrepro.files import write_csv

    _from_schema(args, lengths="extrapolation_lengths", size="extrapolation_size")
    runs = []
    for item in args.runs:
        study, sep, folder = item.partition("=")
        if not sep or not study or not folder:
            raise SpecError(f"--runs {item!r}: give each run as STUDY=RUN_FOLDER")
        runs.append((study, Path(folder)))
    _outputs(args.out, inputs=[folder / "model.pt" for _, folder in runs])
    write_csv(args.out, extrapolate(runs, args.lengths, args.size, args.threads), COLUMNS)


def cmd_aggregate(args):
    from rnnrepro.analysis.tables import aggregate_study

    _from_schema(args, threshold="convergence_threshold")
    _outputs(args.out_dir, inputs=args.runs, folder=True)
    aggregate_study(args.study, args.runs, args.out_dir, args.threshold)


def cmd_compute_table(args):
    from rnnrepro.analysis.tables import compute_table

    if len(args.benchmarks) != len(args.summaries):
        raise SpecError("--benchmarks and --summaries must list the same runs in the same order")
    _outputs(args.out, inputs=[*args.benchmarks, *args.summaries])
    compute_table(args.benchmarks, args.summaries, args.out)


def _from_schema(args, section="report", **keys):
    """Flags not given take the config schema's default of <section>.<key> (one owner)."""
    from rnnrepro.config.studies import schema_default

    for attr, key in keys.items():
        if getattr(args, attr) is None:
            setattr(args, attr, schema_default(section, key))


def cmd_scorecard(args):
    from rnnrepro.analysis.scorecard import write_scorecards

    _from_schema(args, threshold="convergence_threshold", frequency_target="frequency_target",
                 extrapolation_size="extrapolation_size")
    if not args.tables_dir.is_dir():
        raise SpecError(f"--tables-dir {args.tables_dir}: no such folder")
    _outputs(*[o for o in (args.out, args.init_out) if o])
    write_scorecards(args.tables_dir, args.threshold, args.out, args.init_out,
                     args.frequency_target, args.extrapolation_size)


def cmd_figure(args):
    from rnnrepro.analysis.tables import study_table_path
    from rnnrepro.report.drawings import draw, save
    from rnnrepro.report.registry import FIGURES

    _from_schema(args, threshold="convergence_threshold", smoothing="smoothing_window")
    if args.name not in FIGURES:
        raise SpecError(f"unknown figure {args.name!r}; known: {', '.join(FIGURES)}")
    studies = FIGURES[args.name]["studies"]
    if not args.tables.is_dir():
        raise SpecError(f"--tables {args.tables}: no such folder")
    for study in studies:
        if not study_table_path(args.tables, study, "runs").exists():
            raise SpecError(f"figure {args.name}: study {study} has no tables under "
                            f"{args.tables / 'studies'} (aggregate it first)")
    _outputs(*args.out)
    try:
        fig = draw(args.name, args.tables, args.smoothing, args.threshold)
    except (KeyError, AttributeError) as err:
        raise SpecError(f"figure {args.name} cannot draw the studies {studies}: their tables "
                        f"lack {err} (is each study of the kind the report reads it as?)") from None
    save(fig, args.out)


def cmd_report(args):
    from rnnrepro.files import read_json
    from rnnrepro.report.context import TEMPLATES, build
    from rnnrepro.report.registry import FIGURES

    args.templates = args.templates or TEMPLATES
    config = read_json(args.config, "resolved config", ("studies", "seeds", "defaults", "report"))
    unknown = [f for f in args.figures if f not in FIGURES]
    if unknown:
        raise SpecError(f"--figures: unknown {', '.join(unknown)}; known: {', '.join(FIGURES)}")
    missing = [str(args.figures_dir / f"{f}.pdf") for f in args.figures
               if not (args.figures_dir / f"{f}.pdf").is_file()]
    if missing:
        raise SpecError(f"the figures {', '.join(missing)} are missing: draw them first")
    _outputs(args.tex, inputs=[p for p in (args.config, args.bench) if p])
    build(args.tables_dir, args.figures_dir, args.figures, config, args.tex, args.bench,
          args.templates)


def cmd_pdf(args):
    from rnnrepro.report.context import compile_report

    if args.tex.resolve() == args.pdf.resolve():
        raise SpecError("--tex and --pdf must be two files")
    if not args.tex.is_file():
        raise SpecError(f"--tex {args.tex}: no such file (rnnrepro report writes it)")
    _outputs(args.pdf, inputs=[args.tex])
    compile_report(args.tex, args.pdf)


def _arg_type(name, schema):
    """An argparse type for a command's own argument `name` (one no config holds), checked as
    config values are (studies.check_value), against the JSON schema `schema`."""
    def parse(text):
        from rnnrepro.config.studies import check_value

        try:
            return check_value(name, text, schema)
        except SpecError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse


def _count(name, least=1):
    return _arg_type(name, {"type": "integer", "minimum": least})


def _config_type(section, key, item=False):
    """An argparse type for a value of config key <section>.<key> (an item of its list with
    `item`): read and checked as the config's value is (studies.check_config_value)."""
    def parse(text):
        from rnnrepro.config.studies import check_config_value

        try:
            return check_config_value(section, key, text, item)
        except SpecError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse


def _spec_type(cls, field, item=False):
    """An argparse type for a value of a spec field (an item of a list field with `item`),
    checked as the field's value in a config is (studies.check_fields)."""
    def parse(text):
        from rnnrepro.config.checks import coerce
        from rnnrepro.config.studies import check_fields, field_schema

        prop = field_schema(cls, field)
        value = coerce([text] if item else text, prop)
        try:
            checked = getattr(check_fields(cls, {field: value}), field)
        except SpecError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return checked[0] if item else checked
    return parse


def _device(text):
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"one of auto, cpu, cuda, cuda:N is wanted, got {text!r}")
    return text


def _outputs(*outs, inputs=(), folder=False):
    """Refuse an output that would overwrite an input, land in a run's own folder, or that
    cannot be written where it is asked for (a folder where a file goes, a file above it)."""
    ins = {Path(i).resolve() for i in inputs}
    for out in outs:
        out = Path(out)
        if out.resolve() in ins:
            raise SpecError(f"{out} is also an input of this command: write the output elsewhere")
        if not folder and out.is_dir():
            raise SpecError(f"{out} is a folder: a file name is wanted")
        if folder and out.exists() and not out.is_dir():
            raise SpecError(f"{out} is a file: a folder is wanted")
        for parent in out.resolve().parents:
            if parent.exists() and not parent.is_dir():
                raise SpecError(f"{out}: {parent} is a file, not a folder")
            if (parent / "summary.json").is_file() and (parent / "metrics.csv").is_file():
                raise SpecError(f"{out} is inside the run folder {parent}, which only its training "
                                "writes: write the output elsewhere")


def build_parser():
    p = argparse.ArgumentParser(prog="rnnrepro", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train one run into an output directory")
    kinds = train.add_subparsers(dest="kind", required=True)
    for kind, cls in SPECS.items():
        k = kinds.add_parser(kind, help=f"one {kind} run")
        _spec_arguments(k, cls)
        _spec_arguments(k, Execution, "execution (where and how it runs; never part of the "
                                      "run id; runs_per_job 0 = auto)")
        if kind == "text":
            k.add_argument("--corpus", type=Path, required=True, help="UTF-8 text file")
        k.add_argument("--out", type=Path, required=True, help="run directory")
        k.add_argument("--run-table", type=Path,
                       help="the workflow's runs, for a job that may train others' pending runs")
        k.add_argument("--inject-nan-at", type=int, metavar="STEP",
                       help="testing aid: make the loss NaN at this step")
        k.set_defaults(func=cmd_train)

    def text_model_command(name, help, checkpoints, length, length_default, length_help, func):
        """sample and complete: a trained text model's checkpoint(s) in, JSON lines out."""
        p = sub.add_parser(name, help=help)
        p.add_argument("--checkpoint", type=Path, nargs=checkpoints, required=True)
        p.add_argument("--length", type=length, default=length_default, help=length_help)
        p.add_argument("--seed", type=_spec_type(TextSpec, "seed"), default=0)
        p.add_argument("--device", type=_device, default="cpu")
        p.add_argument("--out", type=Path, required=True, help="JSON-lines file")
        p.set_defaults(func=func)
        return p

    s = text_model_command("sample", "greedy and random samples from text checkpoints", "+",
                           _spec_type(TextSpec, "sample_length"), TextSpec.sample_length,
                           "characters, the first included (default: the text spec's sample_length)",
                           cmd_sample)
    s.add_argument("--temperatures", type=_spec_type(TextSpec, "sample_temperatures", item=True),
                   nargs="+", default=[0.5, 1.0, 2.0])
    s.add_argument("--n", type=_spec_type(TextSpec, "samples_per_step"), default=TextSpec.samples_per_step,
                   help="samples per checkpoint and method (default: the text spec's samples_per_step)")

    c = text_model_command("complete", "continue prompts, carrying the LSTM state", None,
                           _config_type("report", "completion_length"), None,
                           "characters after the prompt (default: the schema's "
                           "report.completion_length)", cmd_complete)
    c.add_argument("prompts", nargs="+", metavar="PROMPT", type=_config_type("report", "prompts", item=True),
                   help="the prompts, after the options (after -- where one starts with -)")
    c.add_argument("--methods", nargs="+", choices=("greedy", "random"), default=["greedy"])
    c.add_argument("--temperature", type=_spec_type(TextSpec, "temperature"), default=1.0,
                   help="for --methods random (finite, > 0)")
    c.add_argument("--chunk", type=_count("chunk"), default=30, help="prompt steps per forward pass")

    b = sub.add_parser("bench", help="time the training step against a course-style baseline")
    b.add_argument("--cases", nargs="+", choices=("rnn", "lstm", "text"),
                   default=["rnn", "lstm", "text"])
    b.add_argument("--threads", type=_config_type("bench", "threads", item=True), nargs="+",
                   help="default: the schema's bench.threads")
    b.add_argument("--corpus", type=Path,
                   help="text corpus (default: $RNNREPRO_CORPUS or data/grimms_fairy_tales.txt)")
    b.add_argument("--rounds", type=_count("rounds"), default=9, help="interleaved timing rounds (median)")
    b.add_argument("--seconds", type=_arg_type("seconds", {"type": "number", "exclusiveMinimum": 0}),
                   default=0.4,
                   help="seconds per implementation per round")
    b.add_argument("--quick", action="store_true", help="a few steps of each: checks, not timings")
    b.add_argument("--no-overhead", action="store_true", help="skip the per-job overhead")
    b.add_argument("--baseline", type=Path, help="course_baseline.py (default: the checkout's)")
    b.add_argument("--module", type=Path, default=SPEED, help="the bench's module (default: %(default)s)")
    b.add_argument("--out", type=Path, help="CSV, one row per case, implementation, threads")
    b.set_defaults(func=cmd_bench)

    gs = sub.add_parser("gpu-slots", help="--resources gpu= for this machine: GPUs x jobs_per_gpu")
    gs.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    gs.set_defaults(func=cmd_gpu_slots)

    cc = sub.add_parser("check-config", help="check config files as the workflow does before "
                        "its first job, naming the line of a YAML error; several are merged in "
                        "order, as snakemake --configfile A B merges them")
    cc.add_argument("configfile", nargs="+", type=Path)
    cc.add_argument("--schema", type=Path, help="the config schema (default: the checkout's, "
                    "workflow/schemas/, from the working directory)")
    cc.set_defaults(func=cmd_check_config)

    cr = sub.add_parser("config-reference", help="every config key, from the schema, as Markdown "
                        "(config/README.md)")
    cr.add_argument("--schema", type=Path, help="the config schema (default: the checkout's)")
    cr.add_argument("--out", type=Path, help="write it here (default: print it)")
    cr.set_defaults(func=cmd_config_reference)

    sv = sub.add_parser("save-config", help="write the workflow's resolved config (JSON, given "
                        "after --) for the report's provenance")
    sv.add_argument("config", help="the config as a JSON object")
    sv.add_argument("--out", type=Path, required=True)
    sv.set_defaults(func=cmd_save_config)

    d = sub.add_parser("download", help="fetch a file, verify its sha256, write it atomically")
    d.add_argument("--url", nargs="+", required=True, type=_config_type("corpus", "urls", item=True),
                   help="tried in order (http, https, file)")
    d.add_argument("--sha256", type=_config_type("corpus", "sha256"), required=True)
    d.add_argument("--out", type=Path, required=True)
    for key, text in (("retries", "attempts per URL"), ("timeout", "seconds per attempt"),
                      ("backoff", "seconds before the first retry, doubling (at most 60)"),
                      ("max_mb", "the largest file accepted, in MB")):
        d.add_argument("--" + key.replace("_", "-"), type=_config_type("corpus", key),
                       help=f"{text} (default: the schema's corpus.{key})")
    d.set_defaults(func=cmd_download)

    cs = sub.add_parser("corpus-stats", help="characters, vocabulary, book and validation bounds")
    cs.add_argument("--corpus", type=Path, required=True)
    cs.add_argument("--val-fraction", type=_spec_type(TextSpec, "val_fraction"),
                    default=TextSpec.val_fraction)
    cs.add_argument("prompts", nargs="*", metavar="PROMPT", type=_config_type("report", "prompts", item=True),
                    help="prompts that must be in its vocabulary (after -- where one starts with -)")
    cs.add_argument("--out", type=Path, required=True)
    cs.set_defaults(func=cmd_corpus_stats)

    x = sub.add_parser("extrapolate", help="palindrome runs scored at longer input lengths")
    x.add_argument("--runs", nargs="+", required=True, metavar="STUDY=RUN_FOLDER",
                   help="the runs, each with the study it is read for")
    x.add_argument("--lengths", nargs="+", type=_config_type("report", "extrapolation_lengths", item=True),
                   help="default: report.extrapolation_lengths")
    x.add_argument("--size", type=_config_type("report", "extrapolation_size"),
                   help="held-out palindromes per length; default: report.extrapolation_size")
    x.add_argument("--threads", type=_spec_type(Execution, "threads"), default=Execution.threads)
    x.add_argument("--out", type=Path, required=True)
    x.set_defaults(func=cmd_extrapolate)

    g = sub.add_parser("grad-probe", help="‖∂L/∂h_k‖ against k for freshly initialised models")
    g.add_argument("--models", nargs="+", choices=[*MODELS, "phased"], default=list(MODELS))
    g.add_argument("--input-length", type=_config_type("report", "probe_length"),
                   help="default: report.probe_length")
    g.add_argument("--hidden", type=_spec_type(PalindromeSpec, "hidden"), default=PalindromeSpec.hidden)
    g.add_argument("--batch", type=_spec_type(PalindromeSpec, "batch"), default=256)
    g.add_argument("--init", choices=INITS, default="default")
    g.add_argument("--seeds", type=_count("seeds"), default=3)
    g.add_argument("--threads", type=_spec_type(Execution, "threads"), default=Execution.threads)
    g.add_argument("--out", type=Path, required=True)
    g.set_defaults(func=cmd_grad_probe)
    a = sub.add_parser("aggregate", help="gather a study's run directories into tidy CSV tables")
    a.add_argument("--study", required=True)
    a.add_argument("--runs", type=Path, nargs="+", required=True, help="run directories")
    a.add_argument("--out-dir", type=Path, required=True)
    a.add_argument("--threshold", type=_config_type("report", "convergence_threshold"),
                   help="a palindrome run's outcome (never, kept, "
                   "lost) is read against this held-out accuracy (default: the config schema's "
                   "report.convergence_threshold)")
    a.set_defaults(func=cmd_aggregate)

    ct = sub.add_parser("compute-table", help="per-job wall time and memory, with device")
    ct.add_argument("--benchmarks", type=Path, nargs="+", required=True, help="Snakemake TSVs")
    ct.add_argument("--summaries", type=Path, nargs="+", required=True, help="same order")
    ct.add_argument("--out", type=Path, required=True)
    ct.set_defaults(func=cmd_compute_table)
    sc = sub.add_parser("scorecard", help="the original's claims against this run's tables")
    sc.add_argument("--tables-dir", type=Path, required=True)
    sc.add_argument("--threshold", type=_config_type("report", "convergence_threshold"),
                    help="converged: final accuracy ≥ this (default: the config schema's "
                    "report.convergence_threshold)")
    sc.add_argument("--frequency-target", type=_config_type("report", "frequency_target"),
                    help="claims 13 and 15: the frequency task's accuracy target (default: the "
                    "config schema's report.frequency_target)")
    sc.add_argument("--extrapolation-size", type=_config_type("report", "extrapolation_size"),
                    help="held-out palindromes per length of the extrapolation table (default: "
                    "report.extrapolation_size)")
    sc.add_argument("--out", type=Path, required=True)
    sc.add_argument("--init-out", type=Path, help="also the per-initialisation verdicts")
    sc.set_defaults(func=cmd_scorecard)
    f = sub.add_parser("figure", help="draw one of the report's figures from the tables")
    f.add_argument("name", help="a figure of the report (figures.FIGURES), e.g. fig01_rnn_rmsprop_loss")
    f.add_argument("--tables", type=Path, required=True, help="results/tables")
    f.add_argument("--smoothing", type=_config_type("report", "smoothing_window"),
                   help="rolling-mean window (steps; default: the schema's report.smoothing_window)")
    f.add_argument("--threshold", type=_config_type("report", "convergence_threshold"),
                   help="default: report.convergence_threshold")
    f.add_argument("--out", type=Path, nargs="+", required=True, help="e.g. fig.pdf fig.png")
    f.set_defaults(func=cmd_figure)
    r = sub.add_parser("report", help="render the report's LaTeX from the tables and figures")
    r.add_argument("--tables-dir", type=Path, required=True)
    r.add_argument("--figures-dir", type=Path, required=True)
    r.add_argument("--figures", nargs="*", default=[], help="figures to include")
    r.add_argument("--config", type=Path, required=True,
                   help="the workflow's resolved config (results/report/config.json)")
    r.add_argument("--bench", type=Path, help="rnnrepro bench's CSV, for the appendix")
    r.add_argument("--templates", type=Path, default=None,
                   help="template folder (default: the checkout's report/templates)")
    r.add_argument("--tex", type=Path, required=True)
    r.set_defaults(func=cmd_report)

    pdf = sub.add_parser("pdf", help="compile the rendered report (latexmk with pdflatex where "
                         "installed, else tectonic)")
    pdf.add_argument("--tex", type=Path, required=True)
    pdf.add_argument("--pdf", type=Path, required=True)
    pdf.set_defaults(func=cmd_pdf)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        args.func(args)
    except (SpecError, ValueError, OSError, RuntimeError) as err:
        print(f"rnnrepro {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0
