#!/usr/bin/env bash
# Wheels for the GPU machine, made here (where PyPI is reachable) into .whl/ (kept out of git
# through .git/info/exclude): Snakemake and what it needs that the H200 image lacks (the
# image has torch, pandas, seaborn, matplotlib, jinja2, pyyaml, tqdm, ...: the device tool's
# KINDS.md lists it). benchmarks/gpu.sh installs them there with pip --no-index when
# snakemake is missing. The versions are those of this checkout's .venv.
#   bash benchmarks/gpu_wheels.sh            # then name .whl in the device call's carry
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir .whl
.venv/bin/python - <<'PY'
import re, subprocess, sys
from importlib import metadata

from packaging.requirements import Requirement

HAVE = {"numpy", "pandas", "jinja2", "markupsafe", "pyyaml", "packaging", "requests", "urllib3",
        "idna", "certifi", "charset-normalizer", "psutil", "attrs", "wrapt", "platformdirs",
        "tabulate", "six", "python-dateutil", "pytz", "tzdata", "typing-extensions", "pydantic",
        "pydantic-core", "annotated-types", "typing-inspection", "rich", "pygments",
        "markdown-it-py", "mdurl", "click", "filelock", "fsspec", "tqdm", "greenlet"}
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
todo, seen = ["snakemake", "snakemake-executor-plugin-slurm"], {}
while todo:
    name = norm(todo.pop())
    if name in seen or name in HAVE:
        continue
    dist = metadata.distribution(name)
    seen[name] = dist.version
    for line in dist.requires or []:
        req = Requirement(line)
        if not req.marker or req.marker.evaluate({"python_version": "3.12", "extra": ""}):
            todo.append(req.name)
plat = [f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
                                     "manylinux2014_x86_64", "manylinux1_x86_64", "any")]
for name, version in sorted(seen.items()):
    spec = f"{name}=={version}"
    got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                          "--only-binary=:all:", "--python-version", "3.12", "--implementation",
                          "cp", *plat, "-d", ".whl", spec], capture_output=True, text=True)
    if got.returncode:  # no wheel on PyPI (an sdist only): build it here, pure Python
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", ".whl", spec],
                       check=True, capture_output=True)
    print(spec)
PY
du -sh .whl
