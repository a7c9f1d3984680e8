#!/usr/bin/env bash
# Set up a fresh machine for rnnrepro: a virtual environment in .venv with pinned torch and
# the package (editable, with test extras), and TeX Live + poppler from apt when missing.
# Safe to run again: it only installs what is not there. Python >= 3.11 must be on PATH.
#
#   RNNREPRO_TORCH=2.13.0   torch version to install when none is importable (default)
#   RNNREPRO_SKIP_APT=1     never call apt-get (install TeX yourself)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH=${RNNREPRO_TORCH:-2.13.0}

log() { printf '[setup] %s\n' "$*" >&2; }

"$PYTHON" - <<'PY' || { log "Python >= 3.11 is needed (found $("$PYTHON" --version 2>&1))"; exit 1; }
import sys
sys.exit(sys.version_info < (3, 11))
PY

if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)

# torch first, pinned: an unpinned install would pull whatever build the index offers.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    log "installing torch==$TORCH"
    "${PIP[@]}" install "torch==$TORCH"
fi
log "installing rnnrepro and its dependencies"
"${PIP[@]}" install -e ".[test]"

need_apt=()
# TeX: latexmk + TeX Live, unless tectonic is here (rnnrepro uses either)
{ command -v latexmk >/dev/null || command -v tectonic >/dev/null; } ||
    need_apt+=(latexmk texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended lmodern)
command -v pdftotext >/dev/null || need_apt+=(poppler-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    if [ "${RNNREPRO_SKIP_APT:-0}" = 1 ]; then
        log "missing (install them yourself): ${need_apt[*]}"
    elif ! command -v apt-get >/dev/null || { [ -n "$SUDO" ] && ! sudo -n true 2>/dev/null; }; then
        # no apt, or no root and no password-less sudo (most clusters): go on without TeX
        log "cannot install with apt here (no apt-get, or no root): missing ${need_apt[*]};"
        log "without TeX the workflow makes every result but the PDF (README: Software without root)"
    else
        log "installing from apt: ${need_apt[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
    fi
fi
log "ready: $(.venv/bin/python -c 'import torch, snakemake; print("torch", torch.__version__, "| snakemake", snakemake.__version__, "| cuda", torch.cuda.is_available())')"
