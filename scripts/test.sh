#!/usr/bin/env bash
# One command from a fresh checkout to a passing test suite: set up, then run pytest
# (unit tests, the end-to-end Snakemake + LaTeX run of config/test.yaml, and the
# single-node SLURM test, which installs and starts SLURM when run as root), then the
# end-to-end module once more under ATen's baseline kernels (ATEN_CPU_CAPABILITY=default,
# which every x86-64 CPU has): its runs then round differently, and its tests must hold
# whatever a CPU's float rounding makes of a run. That second pass leaves out the tests
# marked `plan` (what Snakemake would rerun or refuse), which read no run's numbers.
# Extra arguments go to pytest (e.g. -k workflow, -m "not slow"), for one run only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
if [ $# -gt 0 ]; then
    exec .venv/bin/python -m pytest "$@"
fi
.venv/bin/python -m pytest
echo "[test] the end-to-end module again, under ATEN_CPU_CAPABILITY=default (its tests that read the runs)" >&2
ATEN_CPU_CAPABILITY=default exec .venv/bin/python -m pytest tests/test_workflow.py -q -m "not plan"
