#!/usr/bin/env bash
# The GPU run, ready to go: on a machine with a CUDA GPU and DeepDA installed over a CUDA
# build of torch (python3 -m pip install -e .), the paper-grid generator step in bfloat16
# and a one-year paper-grid reanalysis end to end, as JSON on stdout (kept in $OUT when
# set). A few minutes on one card. DEEPDA_BENCH_GPU_PRESET=coarse for a quick look.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu_run: no CUDA device here; run it on a GPU machine')"
out="${OUT:-$(mktemp -d)}/gpu_bench.json"
python3 -m engine bench gpu --out "$out"
cat "$out"
