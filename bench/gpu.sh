#!/usr/bin/env bash
# The full benchmark study on one GPU (sized for one H100), in under 8 minutes.
#
#   bash bench/gpu.sh [OUT_DIR]        # or: OUT=OUT_DIR bash bench/gpu.sh
#
# The tables are printed on stdout as well. Needs only the python that already holds torch
# (and, for the outside baseline, CuPy); sqrtlayers need not be installed (PYTHONPATH=.), tqdm
# and matplotlib are optional, torchvision is needed only for the application benchmark.
# Every output goes into OUT_DIR (default: bench_out/gpu):
#   results.md / results.json / *.png   the study: eager for every backend, CUDA graph and
#                                       torch.compile for the iterative ones, accuracy, memory
#   app.md / app.json                   ResNet-18 training-step ratios (ZCABatchNorm, ISqrtCovHead)
#   env.txt, study.log, app.log, workers.log   machine description, progress, subprocess stderr
#
# Time plan (480 s): the study stops starting new points at STUDY_BUDGET seconds and the
# application benchmark at APP_BUDGET; `timeout` is only the backstop for a hung process.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root, wherever the script is called from

out="${1:-${OUT:-bench_out/gpu}}"
python="${PYTHON:-python3}"
device="${DEVICE:-cuda}"  # DEVICE=cpu only to try the script out on a machine without a GPU
study_budget="${STUDY_BUDGET:-350}"
app_budget="${APP_BUDGET:-50}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
start=$SECONDS

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
    "$python" - <<'PY' 2>&1
import importlib, sys, torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| CUDA", torch.version.cuda)
for name in ("cupy", "tqdm", "matplotlib", "torchvision"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as exc:  # optional: the study says what it skipped
        print(name, "unavailable:", type(exc).__name__, exc)
PY
} >"$out/env.txt"
cat "$out/env.txt"

# 1. The study. Eager: batch 1..1024 at n = 64 and n = 16..512 at batch 16, every backend plus
# the baselines. Iterative backends also in a CUDA graph and under torch.compile (one fresh
# process per backend and mode; forward+backward only, dynamic batch: one compile per backend)
# at the key shapes. Slow points (eigh on 1024 matrices) stop repeating after 1 s.
timeout -k 15 $((study_budget + 60)) "$python" -m sqrtlayers.bench \
    --device "$device" --dtype float32 --out "$out" \
    --batches 1,16,64,256,1024 --sweep-size 64 \
    --sizes 16,32,64,128,256,512 --sweep-batch 16 \
    --kappas 1e1,1e2,1e3,1e4,1e5,1e6 --cov-samples 16,128 --cov-eps 1e-5 \
    --accuracy-size 64 --accuracy-batch 8 \
    --repeats 10 --warmup 3 --max-seconds 1 \
    --modes eager,cudagraph,compile --mode-shapes 64x64,256x64,1024x64 \
    --mode-phases forward+backward --compile-dynamic --mode-timeout 90 \
    --time-budget "$study_budget" \
    2> >(tee "$out/study.log" >&2)
echo "study: exit $? after $((SECONDS - start)) s" | tee -a "$out/study.log"

# 2. Application level, with what is left of the 8 minutes (minus a margin for writing).
left=$((440 - (SECONDS - start)))
budget=$((left < app_budget ? left : app_budget))
if ! "$python" -c "import torchvision" 2>/dev/null; then
    echo "app: skipped, torchvision is not installed (the ResNet-18 comes from it)" | tee "$out/app.log"
elif [ "$budget" -ge 10 ]; then
    timeout -k 15 $((budget + 30)) "$python" -m sqrtlayers.bench app \
        --device "$device" --out "$out" --repeats 10 --warmup 3 --max-seconds 1 --time-budget "$budget" \
        2> >(tee "$out/app.log" >&2)
    echo "app: exit $? after $((SECONDS - start)) s" | tee -a "$out/app.log"
else
    echo "app: skipped, only ${left} s of the 8 minutes left" | tee "$out/app.log"
fi

echo "total $((SECONDS - start)) s; files in $out:"
ls -l "$out"
