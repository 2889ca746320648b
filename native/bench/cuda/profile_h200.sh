#!/usr/bin/env bash
# Profiles Tilewise's attention kernel and PyTorch's cuDNN backend on one case with Nsight Compute
# (hardware counters: tensor-pipe activity, warp stall reasons, issue slots), on the H200 machine.
# Usage (from the repository root): native/bench/cuda/profile_h200.sh <stage dir> <config> \
#   <dtype> <N> <D> <causal> ...  (several cases: repeat the last five arguments)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
STAGE=$(cd "$1" && pwd)
shift
OUT=${OUT:-$ROOT/out}
mkdir -p "$OUT"
BUILD=/tmp/tilewise-cuda-build
if [[ ! -f "$BUILD/src/cuda/libtilewise_cuda.so" ]]; then
  cmake -S "$ROOT/native" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTILEWISE_CUDA=ON \
    -DJAVA_HOME="$STAGE/jre" > "$OUT/build.log" 2>&1 && cmake --build "$BUILD" --parallel 16 \
    --target tilewise_cuda >> "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
fi
LIB=$(find "$BUILD" -name libtilewise_cuda.so | head -1)
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)
while [[ $# -ge 5 ]]; do
  name="cfg$1-$2-N$3-D$4-c$5"
  # Second launch of each kernel (the first two calls warm up); the attention kernels only.
  "$NCU" --clock-control none -k 'regex:attention_fwd|cudnn|fmha|sdpa' --launch-skip 2 \
    --launch-count 2 --section SpeedOfLight --section ComputeWorkloadAnalysis \
    --section WarpStateStats --section SchedulerStats --section LaunchStats \
    --section InstructionStats \
    --metrics sm__pipe_tensor_op_hgmma_cycles_active.avg.pct_of_peak_sustained_active,smsp__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active \
    python3 "$ROOT/native/bench/cuda/profile_attention.py" "$LIB" "$@" > "$OUT/ncu-$name.txt" 2>&1
  grep -E "attention_fwd|cudnn|fmha|sdpa|Duration|Compute \(SM\) Thr|hgmma|pipe_xu|Registers Per|Block Size|Grid Size|Shared Memory Config|Dynamic Shared|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Stall" "$OUT/ncu-$name.txt" | grep -v "^==PROF==" | cut -c1-150 | head -70
  shift 5
done
