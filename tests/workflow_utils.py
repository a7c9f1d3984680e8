"""Helpers for the end-to-end tests: a private copy of the workflow and a Snakemake runner."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPY = ("Snakefile", "workflow", "config", "report", "src", "profiles", "benchmarks")


def config_run_ids():
    """The run ids config/test.yaml trains (its studies expanded as the workflow expands them)."""
    from rnnrepro.config.studies import check_config_file

    return sorted(check_config_file(ROOT / "config" / "test.yaml")[1])


def make_workdir(tmp, corpus_path, edit=None):
    """Copy the workflow into `tmp` and write `test.yaml` pointing at the shared corpus."""
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp / name, ignore=shutil.ignore_patterns("__pycache__", "build"))
        elif src.exists():
            shutil.copy2(src, tmp / name)
    config = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    config["corpus"]["urls"] = [Path(corpus_path).resolve().as_uri()]
    if edit:
        edit(config)
    write_config(tmp / "test.yaml", config)
    return tmp


def write_config(path, config):
    Path(path).write_text(yaml.safe_dump(config, sort_keys=False))


def snakemake(workdir, *args, config="test.yaml", check=True, timeout=1800, env=None):
    cmd = [str(Path(sys.executable).with_name("snakemake")), "--configfile", config,
           "--cores", "2", *args]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if check and res.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({res.returncode}):\n"
                             f"{res.stdout[-6000:]}\n{res.stderr[-6000:]}"
                             f"{failed_job_logs(workdir, res.stdout + res.stderr)}")
    return res


def failed_job_logs(workdir, out, lines=15):
    """The last lines of the logs of the jobs that failed (SLURM job logs included): what a
    failure on a machine whose temporary folders are gone leaves to read."""
    named = re.findall(r"log: (\S+) \(check log file", out)
    named += [str(p.relative_to(workdir)) for p in Path(workdir, ".snakemake", "slurm_logs").rglob("*.log")
              if "Error in rule" in p.read_text(errors="replace")]
    tails = []
    for name in dict.fromkeys(named):
        path = Path(workdir, name)
        if path.is_file():
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"\n--- {name} (last {lines} lines):\n" + "\n".join(tail))
    return "".join(tails)


def planned_jobs(workdir, *args, config="test.yaml"):
    """(rule, wildcards) of every job a dry run plans."""
    res = snakemake(workdir, "--dry-run", *args, config=config)
    out = res.stdout + res.stderr
    jobs, rule = [], None
    for line in out.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line.strip())
        if m:
            rule = m.group(1)
            jobs.append([rule, ""])
        elif rule and line.strip().startswith("wildcards:"):
            jobs[-1][1] = line.split(":", 1)[1].strip()
        elif not line.strip():
            rule = None
    return [tuple(j) for j in jobs], out
