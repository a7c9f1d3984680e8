#!/usr/bin/env bash
# One command from a fresh checkout to the full report: set up, then run the whole workflow
# on config/config.yaml. Extra arguments go to snakemake (e.g. --cores 16, -n, --keep-going).
# The PDF lands in results/report/report.pdf.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# the config, checked first with messages that name the file and line (Snakemake's own say
# only "not valid JSON or YAML"): config/config.yaml, or the --configfile arguments given
configs=() want=0
for arg in "$@"; do
    case "$arg" in
        --configfile=*|--configfiles=*) configs+=("${arg#*=}"); want=0 ;;
        --configfile|--configfiles) want=1 ;;
        -*) want=0 ;;
        *) if [ "$want" = 1 ]; then configs+=("$arg"); fi ;;
    esac
done
rnnrepro check-config "${configs[@]:-config/config.yaml}"
cores=$(nproc 2>/dev/null || echo 2)
# one GPU job per GPU slot: visible GPUs x execution.jobs_per_gpu (rnnrepro.run.gpus.workflow_slots)
slots=$(rnnrepro gpu-slots --config config/config.yaml)
exec snakemake --cores "$cores" --resources gpu="$slots" "$@"
