#!/usr/bin/env bash
# One command from a fresh checkout to a passing test suite: set up, then run pytest
# (unit tests, the end-to-end Snakemake + LaTeX run of config/test.yaml, and the
# single-node SLURM test, which installs and starts SLURM when run as root).
# Extra arguments go to pytest (e.g. -k workflow, -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
