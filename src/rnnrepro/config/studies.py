"""Studies (one per figure or table) expanded into one table of runs.

A study is a kind (palindrome or text), a grid of hyperparameter lists, per-study
overrides and seeds. Each grid point × seed becomes a run spec on top of the config's
defaults; a run's id derives from its spec, so two studies that ask for the same run share
it. Torch-free: the Snakefile imports this to build the DAG.
"""

import functools
import itertools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rnnrepro.config.checks import coerce, describe, memory_problem, name_at, walk_problems
from rnnrepro.config.kinds import SPECS
from rnnrepro.config.spec import Execution, SpecError, check_seed


@dataclass
class Run:
    spec: object
    studies: list = field(default_factory=list)

    @property
    def kind(self):
        return self.spec.kind

    @property
    def run_id(self):
        return self.spec.run_id()


def study_specs(name, study, defaults, seeds):
    kind = study["kind"]
    grid = study.get("grid", {})
    for where, fields in (("grid", grid), ("set", study.get("set", {}))):
        if "seed" in fields:
            raise SpecError(f"config studies.{name}.{where}: seed is set by a study's seeds: "
                            "list (or the top-level one), not here")
    both = sorted(set(grid) & set(study.get("set", {})))
    if both:
        raise SpecError(f"config studies.{name}: {', '.join(both)} in both set and grid; a field "
                        "goes in one of them (the grid's values would win unseen)")
    base = {**defaults.get(kind, {}), **study.get("set", {})}
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        for seed in study.get("seeds", seeds):
            fields = {**base, **dict(zip(keys, values)), "seed": seed}
            try:
                yield SPECS[kind].from_dict(fields)
            except SpecError as err:  # named where the value is written, where one is
                part = next((p for p in ("grid", "set") if err.field in study.get(p, {})), None)
                where = f"config studies.{name}" + (f".{part}" if part else "")
                raise SpecError(f"{where}: {err}", err.field) from None


def execution(config):
    """The config's execution settings that training jobs take (mem_mb is Snakemake's)."""
    settings = {k: v for k, v in config["execution"].items() if k != "mem_mb"}
    try:
        return Execution.from_dict(settings)
    except SpecError as err:
        raise SpecError(f"config execution: {err}") from None


def check_defaults_and_seeds(config):
    """The config's defaults and seeds, checked on their own, so that a bad value in them is
    named where it is written (not in the first study that uses it)."""
    for seed in config["seeds"]:
        try:
            check_seed(seed)
        except SpecError as err:
            raise SpecError(f"config seeds: {err}") from None
    for kind, fields in config.get("defaults", {}).items():
        if "seed" in fields:
            raise SpecError(f"config defaults.{kind}: seed is set by the seeds: lists, not here")
        try:
            SPECS[kind].from_dict(fields)
        except SpecError as err:
            raise SpecError(f"config defaults.{kind}: {err}") from None


def expand(config):
    """All runs of the config, keyed by run id, each knowing the studies that use it."""
    check_defaults_and_seeds(config)
    runs, by_study = {}, {}
    for name, study in config["studies"].items():
        ids = []
        for spec in study_specs(name, study, config.get("defaults", {}), config["seeds"]):
            run = runs.setdefault(spec.run_id(), Run(spec))
            if name not in run.studies:
                run.studies.append(name)
            if spec.run_id() not in ids:
                ids.append(spec.run_id())
        if not ids:
            raise SpecError(f"config studies.{name}: the study has no runs")
        by_study[name] = ids
    return runs, by_study


def _unique_key_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        """YAML's safe loader, refusing a key given twice in one mapping (YAML would keep the
        last one, and a second `studies:` entry of one name silently replaces the first)."""

        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} is given twice (first on line {seen[key] + 1}); "
                        "YAML would keep only the last", key_node.start_mark)
                seen[key] = key_node.start_mark.line
            return super().construct_mapping(node, deep)
    return Loader


def corpus_problem(config):
    """What is wrong with the config's corpus.path as it stands, or None: a path where the
    pipeline writes its own results, a folder, or a file that is not the config's corpus
    (its sha256 differs: it would train under the same run ids)."""
    from rnnrepro.data.download import sha256_of

    corpus = config["corpus"]
    path = Path(corpus["path"])
    here = Path.cwd().resolve()
    for owned in ("results", "logs", ".snakemake"):
        if path.resolve().is_relative_to(here / owned):
            return (f"corpus.path {path} is inside {owned}/, which the workflow writes: give a "
                    "path of its own (data/… is the default)")
    if path.exists():
        if not path.is_file():
            return f"corpus.path {path} is not a file"
        actual = sha256_of(path)
        if actual != corpus["sha256"].lower():
            return (f"corpus.path {path} holds a file with sha256 {actual}, and corpus.sha256 is "
                    f"{corpus['sha256']}: it is not the config's corpus. Delete or move it to "
                    "download the right one, or correct corpus.path or corpus.sha256")
    return None


def load_config_file(path):
    """A YAML config as a dict; a file that is missing, not YAML or not a mapping is a
    SpecError that names it and, for a syntax error, the line and column (Snakemake's own
    loader says only "Config file is not valid JSON or YAML")."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"config file {path}: no such file (working directory {Path.cwd()})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"config file {path}: cannot be read ({err})") from None
    try:
        config = yaml.load(text, Loader=_unique_key_loader())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        context = getattr(err, "context", None)
        raise SpecError(f"config file {path}{where}: not valid YAML: {problem}"
                        + (f" ({context})" if context else "")) from None
    if not isinstance(config, dict):
        raise SpecError(f"config file {path}: a mapping of keys at the top level is wanted, "
                        f"it holds {type(config).__name__ if config is not None else 'nothing'}")
    return config


def check_report_studies(config):
    """The studies the report reads by name (figures.REPORT_STUDIES) must be of the kind it
    reads them as; and where one is missing, a config study of a name close to it is taken
    for a misspelling of it (else the report would leave that part out unnoticed)."""
    import difflib

    from rnnrepro.config.roles import REPORT_STUDIES

    studies = config["studies"]
    for name, kind in REPORT_STUDIES.items():
        if name in studies:
            got = studies[name]["kind"]
            if got != kind:
                raise SpecError(f"studies.{name}: the report reads {name} as a {kind} study, and "
                                f"it is a {got} one (give a study of another kind another name)")
            continue
        others = [s for s in studies if s not in REPORT_STUDIES]
        near = difflib.get_close_matches(name, others, n=1, cutoff=0.85)
        if near:
            raise SpecError(f"studies.{near[0]}: not a study the report reads; did you mean "
                            f"{name}? (the report reads {', '.join(REPORT_STUDIES)})")


# The checkout's schema: beside this package where it runs from a checkout's src/ (as every
# rule runs it), else in the working directory (the rules pass it; so may a caller).
SCHEMA = Path("workflow/schemas/config.schema.yaml")
if (Path(__file__).resolve().parents[3] / SCHEMA).is_file():
    SCHEMA = Path(__file__).resolve().parents[3] / SCHEMA


@functools.cache
def load_schema(schema_path=SCHEMA):
    """The config schema, read once per process."""
    import yaml

    try:
        return yaml.safe_load(Path(schema_path).read_text())
    except FileNotFoundError:
        raise SpecError(f"the config schema is not at {Path(schema_path).resolve()}: run in the "
                        "workflow's checkout") from None


def schema_default(section, key, schema_path=SCHEMA):
    """The default the config schema gives <section>.<key> (it owns the defaults of every key
    that is not a run spec field)."""
    return load_schema(schema_path)["properties"][section]["properties"][key]["default"]


def _best_error(schema, instance):
    import jsonschema

    return jsonschema.exceptions.best_match(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(instance))


def schema_problem(config, schema_path=SCHEMA, overrides=None):
    """The config's first departure from the schema, in one line that names the key (and a
    YAML pitfall, or the --config form that works, where one explains it), or None.
    Snakemake's own message prints the schema."""
    error = _best_error(load_schema(schema_path), config)
    if error is None:
        return None
    path = list(error.absolute_path)
    given = bool(overrides) and bool(path) and path[0] in overrides  # with --config, not YAML
    hint = (_override_hint(error) if given else _yaml_hint(error)) + _key_hint(error)
    described = describe(error)
    if described is None:
        return f"at {'.'.join(map(str, path)) or 'the top level'}: {error.message}{hint}"
    # `config <where the key is>: <key> must be ...`, as rnnrepro.config.spec says it; a missing or
    # unknown key is named in the mapping that lacks or holds it
    where = (" ".join(["config", ".".join(map(str, path))]).strip()
             if error.validator in ("required", "additionalProperties") else name_at(path, "config")[0])
    return f"{where}: {described}{hint}"


def _override_hint(error):
    """For a top-level value given with --config that has the wrong shape: the form that
    works (Snakemake reads `seeds=0` as a number, `seeds=[0]` as a list)."""
    path = list(error.absolute_path)
    example = {"array": "[a, b]", "object": "{key: value}"}.get(error.validator_value)
    return (f" (with --config, write {path[0]}={example})"
            if error.validator == "type" and example and len(path) == 1 else "")


# config keys that existed once, and where their meaning went
REMOVED = {"report.text_study": "the report reads its studies by their names (config/README.md): "
                                "name your text study text_temperature",
           "report.init_study": "the report reads its studies by their names (config/README.md)",
           "report.init_lr_study": "the report reads its studies by their names (config/README.md)"}


def _key_hint(error):
    """For an unknown key: what became of it, or the known key it is closest to."""
    import difflib

    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return ""
    known = set(error.schema.get("properties", {}))
    prefix = ".".join(map(str, error.absolute_path))
    hints = []
    for key in sorted(set(error.instance) - known):
        full = f"{prefix}.{key}" if prefix else key
        near = difflib.get_close_matches(key, known, n=1)
        if full in REMOVED:
            hints.append(f"{full} was removed: {REMOVED[full]}")
        elif near:
            hints.append(f"{key}: did you mean {near[0]}?")
    return f" ({'; '.join(hints)})" if hints else ""


def _yaml_hint(error):
    """YAML 1.1 reads 3e-3 as text and off, no, yes as booleans: say so where it bites (a
    config file's value of the wrong type)."""
    import re

    value = error.instance
    if error.validator != "type":
        return ""
    if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value):
        fix = ("write the whole number" if error.validator_value == "integer" else
               "write it with a dot and a signed exponent, e.g. 3.0e-3")
        return f" (YAML reads {value} as text: {fix})"
    if isinstance(value, bool):
        return " (YAML reads off/on/no/yes as true or false: quote the word)"
    return ""


def check_config(config, schema_path=SCHEMA, overrides=None):
    """Every check of a config before the first job, the Snakefile's and check-config's: the
    values given with --config (`overrides`) read as the schema's types, the schema (then its
    defaults, filled in place), numbers and text, the studies' runs and the memory each
    needs, the execution settings, where the workflow writes, the report's study roles and
    the corpus. Returns (runs, study runs, execution)."""
    from snakemake.utils import validate

    if overrides:
        take_overrides(config, overrides, load_schema(schema_path))
    problem = schema_problem(config, schema_path, overrides) or walk_problems(config, "config")
    if problem:
        raise SpecError(problem)
    validate(config, str(schema_path))
    runs, study_runs = expand(config)
    settings = execution(config)
    problem = memory_problems(config, runs) or outside_problem(config)
    if problem:
        raise SpecError(problem)
    check_report_studies(config)
    problem = corpus_problem(config)
    if problem:
        raise SpecError(problem)
    return runs, study_runs, settings


def take_overrides(config, overrides, schema):
    """Values given with Snakemake's --config (it hands list and mapping items over as text)
    read as the types the schema wants where the text spells one: seeds=[0, 5] gives the
    numbers 0 and 5. Only those values: a YAML file's text stays text, for the check to name."""
    def walk(target, given, props, kind=None):
        for key, value in given.items():
            if key not in target:
                continue
            prop = _resolve(props.get(key, {}), schema)
            if key in ("set", "grid") and kind:  # a study's fields, as its kind has them
                prop = _fields_schema(kind, schema, grid=key == "grid")
            if isinstance(value, dict) and isinstance(target[key], dict):
                sub = prop.get("properties") or {}
                extra = prop.get("additionalProperties")
                if not sub and isinstance(extra, dict):  # studies: each a study of its kind
                    for name, study in value.items():
                        if isinstance(study, dict) and isinstance(target[key].get(name), dict):
                            walk(target[key][name], study, _resolve(extra, schema).get("properties", {}),
                                 target[key][name].get("kind"))
                    continue
                walk(target[key], value, sub, key if key in SPECS else kind)
            else:
                target[key] = coerce(target[key], prop)
    walk(config, overrides, schema["properties"])


def _resolve(prop, schema):
    while isinstance(prop, dict) and "$ref" in prop:
        prop = {**schema["$defs"][prop["$ref"].rsplit("/", 1)[-1]],
                **{k: v for k, v in prop.items() if k != "$ref"}}
    return prop


def _fields_schema(kind, schema, grid=False):
    """The schema of a kind's spec fields (a grid's: each a list of such values)."""
    fields = _resolve({"$ref": f"#/$defs/{kind}_fields"}, schema)
    if not grid:
        return fields
    return {"type": "object", "properties": {k: {"type": "array", "items": v}
                                             for k, v in fields["properties"].items()}}


def check_config_value(section, key, value, item=False, schema_path=SCHEMA):
    """One value of config key <section>.<key> (an item of its list with `item`), given on a
    command line: read as the schema's type and checked by the schema's rule and the rules
    of every config value. Returns it; a SpecError says `<key> must be <rule>, got <value>`."""
    schema = load_schema(schema_path)
    prop = _resolve(schema["properties"][section]["properties"][key], schema)
    return check_value(key, value, _resolve(prop["items"], schema) if item else prop)


def check_value(key, value, prop):
    """`value` (text from a command line, or a value) of `key`, read as the JSON schema
    `prop`'s type and checked by its rule and the rules of every config value; a SpecError
    says `<key> must be <rule>, got <value>`."""
    value = coerce(value, prop)
    error = _best_error(prop, value)
    if error is not None:
        raise SpecError(describe(error, key) or f"{key}: {error.message}", key)
    problem = walk_problems({key: value})
    if problem:
        raise SpecError(problem, key)
    return value


def _class_schema(cls, schema):
    """The schema of a spec's or an Execution's fields (mem_mb, Snakemake's, left out)."""
    props = schema["properties"]["execution"] if cls is Execution else _fields_schema(cls.kind, schema)
    return {**props, "properties": {k: v for k, v in props["properties"].items() if k != "mem_mb"}}


def field_schema(cls, field, schema_path=SCHEMA):
    """The schema of one spec or Execution field."""
    schema = load_schema(schema_path)
    return _resolve(_class_schema(cls, schema)["properties"].get(field, {}), schema)


def check_fields(cls, fields, where=None, schema_path=SCHEMA):
    """`fields` (a spec's or an Execution's, from a --spec file or the command line) as an
    instance of `cls`, checked by the rules the config's are: the schema's types, finite
    numbers and carriable text, then rnnrepro.config.spec's values. A SpecError starts with
    `where(key)`, where the offending key was given (where `where` is given)."""
    def at(key, message):
        return SpecError(f"{where(key)}: {message}" if where else message, key)

    # unknown keys: from_dict names them, with a hint
    props = {**_class_schema(cls, load_schema(schema_path)), "additionalProperties": True}
    error = _best_error(props, fields)
    if error is not None:
        key = next((p for p in reversed(list(error.absolute_path)) if isinstance(p, str)), None)
        raise at(key, describe(error) or error.message)
    for key, value in fields.items():
        problem = walk_problems({key: value})
        if problem:
            raise at(key, problem)
    try:
        return cls.from_dict(fields)
    except SpecError as err:
        raise at(err.field, str(err)) from None


def memory_problems(config, runs):
    """A run that cannot fit in the memory a training job asks for (execution.mem_mb), named
    with its first study and the key that asks the most."""
    budget = config["execution"]["mem_mb"]
    for run in runs.values():
        problem = memory_problem(run.spec, budget, "execution.mem_mb")
        if problem:
            return f"config studies.{run.studies[0]}: {problem}"
    return None


def outside_problem(config):
    """A path where the workflow writes that lies outside its checkout (the working
    directory), unless the config says write_outside_checkout: true. Read as written (a
    link inside the checkout that points elsewhere was put there by its user)."""
    if config.get("write_outside_checkout"):
        return None
    here = Path.cwd()
    for key, value in (("corpus.path", config["corpus"]["path"]),
                       ("execution.tensorboard", config["execution"].get("tensorboard", ""))):
        if not value:
            continue
        full = Path(os.path.normpath(here / value))
        if not full.is_relative_to(here):
            section, name = key.split(".")
            return (f"config {section}: {name} must lie in the workflow's folder {here} (the "
                    "workflow writes there only, unless the config says write_outside_checkout: "
                    f"true), got {value!r}")
    return None


def check_config_file(*paths, schema_path=SCHEMA):
    """check_config on YAML files, each read with its line numbers named (load_config_file)
    and merged in order as Snakemake merges several --configfile (a later file's keys over
    an earlier one's, mapping by mapping). Returns (config with defaults, runs, study runs)."""
    config = {}
    for path in paths:
        _merge(config, load_config_file(path))
    try:
        runs, study_runs, _ = check_config(config, schema_path)
    except SpecError as err:
        raise SpecError(f"{' + '.join(map(str, paths))}: {err}") from None
    return config, runs, study_runs


def _merge(config, more):
    """`more` into `config`, mapping by mapping (Snakemake's update_config)."""
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _merge(config[key], value)
        else:
            config[key] = value


def cli_args(spec, skip=()):
    """A spec (or an Execution) as `rnnrepro train` arguments (a list: shlex.join it for a
    shell), in field order; each value joined to its flag (`--tensorboard=-x`), so that no
    value is ever read as a flag of its own."""
    args, defaults = [], spec.defaults()
    for key, value in spec.to_dict().items():
        if key in skip:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, (list, tuple)):  # numbers > 0 or words: none looks like a flag
            words = [v if isinstance(v, str) else repr(v) for v in value]
            # an empty list is given only where it is not the default
            args += [flag, *words] if value or defaults[key] else []
        else:
            args.append(f"{flag}={repr(value) if isinstance(value, float) else value}")
    return args


def shell_prefix(src, python):
    """The bash the workflow puts before every rule's command: `rnnrepro` is the package in
    `src` (a checkout's src/, whatever is installed) run by `python` (a path, or "python" for
    the one on PATH: the rule's conda environment)."""
    import shlex

    # both paths as data: a checkout path holding $(...), `...` or $VAR runs nothing and
    # names no other folder (single quotes: bash expands nothing in them)
    return ("set -euo pipefail; "
            f'export PYTHONPATH={shlex.quote(str(src))}${{PYTHONPATH:+:$PYTHONPATH}}; '
            f'rnnrepro() {{ {shlex.quote(str(python))} -m rnnrepro "$@"; }}; ')


def cuda_visible():
    """Whether a CUDA device is visible here, without importing torch."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def uses_gpu(device):
    return device == "cuda" or (device == "auto" and cuda_visible())
