#!/bin/bash
# BENCHMARKS.md section 5's runbook as one command for a lent GPU machine, in two parts that
# each fit one device call (10 minutes): every step under its own time limit, most important
# first, its output in $OUT/<step>.log and one line per step in $OUT/summary.txt.
#
# Here, once: `make gpu-carry` (Fashion-MNIST's four .gz files and pyinform's wheel, 31 MB, into
# the ignored folder .gpu-carry). Then, through the device tool:
#   run(command="bash bench/gpu_checks.sh 1", carry=[".gpu-carry"], timeout_s=600)
#   run(command="bash bench/gpu_checks.sh 2", carry=[".gpu-carry"], timeout_s=600)
# Part 1: the CUDA tests, the TE step's kernels and time (section 11), the epoch ratio TE on/off
# (section 2). Part 2: trials packed on one GPU (section 5), the data path (section 3), the
# TE estimator against pyinform (section 1). DEVICE=cpu runs the same steps on a CPU, small,
# to check this script's mechanics (its numbers mean nothing).
set -u
PART=${1:-1}
if [ "$PART" != 1 ] && [ "$PART" != 2 ]; then
  echo "bench/gpu_checks.sh: part '$PART' is not 1 or 2; give 1, then 2" >&2
  exit 2
fi
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-/tmp/gpu-checks}
CARRY=.gpu-carry
mkdir -p "$OUT"
SITE=$(mktemp -d)
python3 -m pip install -q --no-deps --no-index --target "$SITE" "$CARRY"/wheels/*.whl \
  >"$OUT/install.log" 2>&1 || echo "pyinform not installed: see install.log" >>"$OUT/summary.txt"
export PYTHONPATH=".:tests:$SITE" TE_SWEEP_FASHION_MNIST="$CARRY/fashion-mnist"
export OMP_WAIT_POLICY=PASSIVE

# step NAME SECONDS COMMAND...: run COMMAND under a time limit, keep its output, say how it went.
step() {
  local name=$1 limit=$2 start=$SECONDS rc
  shift 2
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  {
    echo "$name: exit $rc in $((SECONDS - start)) s (limit $limit s): $*"
    tail -n 4 "$OUT/$name.log" | sed 's/^/    /'
  } | tee -a "$OUT/summary.txt"
}

if [ "$DEVICE" = cpu ]; then  # mechanics only
  SMALL_TE=(--subset 600 --no-compile) SMALL_EPOCH=(--subset 600 --repeats 1)
  SMALL_GPU=(--quick) SMALL_DATA=(--repeats 1) SMALL_EST=(--quick)
else
  SMALL_TE=() SMALL_EPOCH=(--subset 20000 --repeats 2) SMALL_GPU=(--trials 8)
  SMALL_DATA=() SMALL_EST=(--quick)
fi

echo "part $PART on $DEVICE, $(date -u +%FT%TZ)" | tee -a "$OUT/summary.txt"
case "$PART" in
  1)
    step env 30 sh -c 'nvidia-smi -L; python3 -c "import sys, torch; sys.path.insert(0, \"bench\")
from machine import machine_line; print(machine_line()); print(torch.__version__, torch.cuda.is_available())"'
    step cuda-tests 170 python3 -m pytest -q -p no:cacheprovider -k cuda -rs \
      tests/core/test_cuda.py tests/core/test_te.py tests/core/test_te_compile.py
    step te-step 170 python3 bench/te_step.py --device "$DEVICE" "${SMALL_TE[@]}"
    step epoch-overhead 170 python3 bench/epoch_overhead.py --device "$DEVICE" "${SMALL_EPOCH[@]}"
    ;;
  2)
    step gpu 240 python3 bench/gpu.py --device "$DEVICE" "${SMALL_GPU[@]}"
    step data-path 90 python3 bench/data_path.py --device "$DEVICE" "${SMALL_DATA[@]}"
    step te-estimator 150 python3 bench/te_estimator.py --device "$DEVICE" "${SMALL_EST[@]}"
    ;;
esac
