#!/usr/bin/env bash
# Whether a CPU run's metrics.csv depends on the CPU's instruction sets, natively and under
# execution.numerics: portable. One machine stands in for others through the settings that
# choose a kernel by CPU (ATen's kernel set, MKL's code path and instruction set, oneDNN's
# instruction set, the C library's CPU features). For each setting it trains three tiny runs
# (RNN, LSTM, text) in each mode and prints the first 12 hex digits of each metrics.csv's
# sha256: one column of equal values is a mode that this setting cannot change. About 3
# minutes on 2 cores.
#
#   bash benchmarks/numerics.sh [OUT_DIR]      # default: a temporary folder
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
CORPUS=${RNNREPRO_CORPUS:-data/grimms_fairy_tales.txt}
out=${1:-$(mktemp -d)}
mkdir -p "$out"
PAL=(--optimizer adam --input-length 6 --steps 150 --hidden 24 --batch 64 --lr 0.003
     --eval-every 50 --eval-size 500)
case_args() {  # the arguments of one tiny run
    case $1 in
        rnn|lstm) echo palindrome --model "$1" "${PAL[@]}" ;;
        text) echo text --steps 60 --hidden 32 --batch 32 --eval-every 30 --sample-every 30 ;;
    esac
}
SETTINGS=(
    ""
    "ATEN_CPU_CAPABILITY=default" "ATEN_CPU_CAPABILITY=avx2" "ATEN_CPU_CAPABILITY=avx512"
    "MKL_CBWR=COMPATIBLE" "MKL_CBWR=AVX2" "MKL_ENABLE_INSTRUCTIONS=SSE4_2"
    "DNNL_MAX_CPU_ISA=SSE41" "DNNL_MAX_CPU_ISA=AVX2"
    "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX,-AVX2,-FMA,-FMA4,-AVX512F"
)
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date +%F), $("$PY" -c 'import torch; print("torch", torch.__version__)')"
printf '%-58s %-8s %-12s %-12s %-12s\n' setting mode rnn lstm text
for setting in "${SETTINGS[@]}"; do
    for mode in native portable; do
        row=()
        for case in rnn lstm text; do
            dir="$out/$(echo "${setting:-plain}-$mode-$case" | tr -c 'A-Za-z0-9_.-' _)"
            # the setting alone: none of the portable mode's variables comes from outside
            corpus=()
            [ "$case" = text ] && corpus=(--corpus "$CORPUS")
            # shellcheck disable=SC2046 # case_args's words are flags and numbers
            env -u ATEN_CPU_CAPABILITY -u MKL_CBWR ${setting:+"$setting"} "$PY" -m rnnrepro train \
                $(case_args "$case") "${corpus[@]}" --device cpu --threads 1 --numerics "$mode" \
                --out "$dir" >"$dir.log" 2>&1 || { echo "failed: see $dir.log" >&2; exit 1; }
            row+=("$(sha256sum "$dir/metrics.csv" | cut -c1-12)")
        done
        printf '%-58s %-8s %-12s %-12s %-12s\n' "${setting:-(none)}" "$mode" "${row[@]}"
    done
done
