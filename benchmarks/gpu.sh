#!/usr/bin/env bash
# CUDA checks, timings and the full default config's training on a GPU machine, in one
# prepared run of about 6 minutes on an H200 (benchmarks/gpu_check.py says what it does).
# It needs torch with CUDA and runs from the repository root with the package on PYTHONPATH.
# Where snakemake is missing (the lent H200 has no network), it installs the wheels that
# `bash benchmarks/gpu_wheels.sh` put in .whl/; the corpus comes from data/ (or $RNNREPRO_CORPUS).
#
#   bash benchmarks/gpu_wheels.sh; cp ../shared/data/grimms_fairy_tales.txt data/   # here
#   bash benchmarks/gpu.sh           # there (carry .whl and data); results in $OUT
#
# The dry run on a CPU, which the test suite runs (tests/test_gpu_dry_run.py):
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_SCALE=0.02 GPU_CHECK_CONFIG=config/test.yaml \
#       GPU_CHECK_RUNS_PER_JOB=64 bash benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
SITE=${TMPDIR:-/tmp}/rnnrepro-gpu-site

if ! "$PY" -c "import snakemake" 2>/dev/null; then
    if compgen -G ".whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SITE" .whl/*.whl
        export PYTHONPATH="$SITE:$PYTHONPATH" PATH="$SITE/bin:$PATH"
    else
        echo "gpu.sh: snakemake is not installed and .whl/ is empty: the full config is skipped" \
             "(run benchmarks/gpu_wheels.sh where PyPI is reachable, and carry .whl)" >&2
    fi
fi
# The workflow's rules call the `rnnrepro` command: a wrapper where the package is not installed.
if ! command -v rnnrepro >/dev/null; then
    mkdir -p "$SITE/bin"
    printf '#!/bin/sh\nexec %s -m rnnrepro "$@"\n' "$(command -v "$PY")" >"$SITE/bin/rnnrepro"
    chmod +x "$SITE/bin/rnnrepro"
    export PATH="$SITE/bin:$PATH"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
exec "$PY" benchmarks/gpu_check.py
