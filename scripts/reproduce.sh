#!/usr/bin/env bash
# One command from a fresh checkout to the full report: set up, then run the whole workflow
# on config/config.yaml. Extra arguments go to snakemake (e.g. --cores 16, -n, --keep-going).
# The PDF lands in results/report/report.pdf.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
cores=$(nproc 2>/dev/null || echo 2)
# one GPU job per GPU slot: visible GPUs x execution.jobs_per_gpu (rnnrepro.gpus.workflow_slots)
slots=$(rnnrepro gpu-slots --config config/config.yaml)
exec snakemake --cores "$cores" --resources gpu="$slots" "$@"
