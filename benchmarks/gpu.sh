#!/usr/bin/env bash
# CUDA checks and timings on a GPU machine (see benchmarks/gpu_check.py). Needs torch with
# CUDA; runs from the repository root with the package on PYTHONPATH, nothing installed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 benchmarks/gpu_check.py
