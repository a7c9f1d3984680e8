"""Studies (one per figure or table) expanded into one table of runs.

A study is a kind (palindrome or text), a grid of hyperparameter lists, per-study
overrides and seeds. Each grid point × seed becomes a run spec on top of the config's
defaults; a run's id derives from its spec, so two studies that ask for the same run share
it. Torch-free: the Snakefile imports this to build the DAG.
"""

import itertools
import os
import shutil
import subprocess
from dataclasses import dataclass, field

from .spec import SPECS, Execution, SpecError


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
    base = {**defaults.get(kind, {}), **study.get("set", {})}
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        for seed in study.get("seeds", seeds):
            fields = {**base, **dict(zip(keys, values)), "seed": seed}
            try:
                yield SPECS[kind].from_dict(fields)
            except SpecError as err:
                raise SpecError(f"config studies.{name}: {err}") from None


def execution(config):
    """The config's execution settings that training jobs take (mem_mb is Snakemake's)."""
    settings = {k: v for k, v in config["execution"].items() if k != "mem_mb"}
    try:
        return Execution.from_dict(settings)
    except SpecError as err:
        raise SpecError(f"config execution: {err}") from None


def expand(config):
    """All runs of the config, keyed by run id, each knowing the studies that use it."""
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


def cli_args(spec, skip=()):
    """A spec (or an Execution) as `rnnrepro train` flags, in field order."""
    args = []
    for key, value in spec.to_dict().items():
        if key in skip:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, (list, tuple)):
            args += [flag, *map(repr, value)] if value else []
        else:
            args += [flag, repr(value) if isinstance(value, float) else str(value)]
    return args


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
