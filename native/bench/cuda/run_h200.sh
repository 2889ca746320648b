#!/usr/bin/env bash
# One device run on the H200 machine: build libtilewise_cuda with that machine's nvcc, run the C
# ABI test (numerics vs float64), dump the kernels' resource usage and instruction mix, check and
# time against PyTorch's SDPA (flash, cuDNN), and, if a Java runtime was carried, run
# CudaAttentionBenchmark (integration-tests) on it. Everything lands in $OUT (default ./out).
#
# Usage (from the repository root): native/bench/cuda/run_h200.sh [stage dir] [--quick]
#   (TW_BENCH_CONFIGS=0,2,... picks the Tilewise configs timed; TW_SKIP_JAVA=1 skips the Java run)
#   stage dir: optional folder with jre/ (jlink image with include/) and java/ (classes, stage.sh).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
STAGE=${1:-}
if [[ -n "$STAGE" ]]; then STAGE=$(cd "$STAGE" && pwd); fi
OUT=${OUT:-$ROOT/out}
mkdir -p "$OUT"
BUILD=/tmp/tilewise-cuda-build
export PYTHONUNBUFFERED=1
exec > >(tee "$OUT/run.log") 2>&1

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv | tee "$OUT/gpu.txt"
nvcc --version | tail -2

# Java headers for the JNI part: from the carried runtime when there is one.
JAVA_ARGS=()
if [[ -n "$STAGE" && -f "$STAGE/jre/include/jni.h" ]]; then JAVA_ARGS=(-DJAVA_HOME="$STAGE/jre"); fi
t0=$(date +%s)
cmake -S "$ROOT/native" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTILEWISE_CUDA=ON \
  -DTILEWISE_CUDA_WARN_SPILLS=ON "${JAVA_ARGS[@]}" > "$OUT/build.log" 2>&1 && cmake --build "$BUILD" --parallel 16 >> "$OUT/build.log" 2>&1 \
  || { tail -40 "$OUT/build.log"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
grep -E "spill|warning" "$OUT/build.log" | sort -u | head
LIB=$(find "$BUILD" -name libtilewise_cuda.so | head -1)

echo "== resource usage / instruction mix"
cuobjdump --dump-resource-usage "$LIB" 2>&1 | grep -E "Function|REG" | sed 's/_ZN6twcuda20attention_fwd_kernel//' | cut -c1-200
cuobjdump --dump-sass "$LIB" > "$OUT/sass.txt" 2>&1
for op in HGMMA HMMA LDSM LDGSTS UTMALDG SYNCS USETMAXREG MUFU.EX2 LDL STL; do echo "$op $(grep -c "$op" "$OUT/sass.txt")"; done

echo "== C ABI test (float64 reference)"
CONFIGS=--configs=${TW_BENCH_CONFIGS:-0,2}
# (timeout: a kernel that deadlocks must not eat the whole device call)
if ! timeout 240 "$BUILD/src/cuda/cuda_attention_test" > "$OUT/ctest.txt" 2>&1; then
  # A failing (or faulting) kernel would poison the benchmark's CUDA context: time the rest only.
  echo "C ABI test FAILED: benchmarking the sm80 kernel only"; CONFIGS=--configs=2
fi
grep -E "FAIL|passed|device|failure" "$OUT/ctest.txt" | head -30

echo "== benchmark"
python3 "$ROOT/native/bench/cuda/bench_attention.py" "$LIB" "$CONFIGS" "${@:2}" 2>&1 | tee "$OUT/bench.txt" | grep -E "^(check.*FAIL|device|skip|correctness)" 

if [[ -z "${TW_SKIP_JAVA:-}" && -n "$STAGE" && -x "$STAGE/jre/bin/java" && -d "$STAGE/java" ]]; then
  echo "== Java on the GPU"
  # libtilewise (the CPU operator) where LibUtils looks for it: native/<platform>/ on the class path.
  mkdir -p "$STAGE/java/native/linux-x86_64"
  cp "$(find "$BUILD" -maxdepth 1 -name libtilewise.so | head -1)" "$STAGE/java/native/linux-x86_64/"
  "$STAGE/jre/bin/java" -cp "$STAGE/java:$STAGE/slf4j-api.jar:$STAGE/djl-api.jar" -Dtilewise.cuda.library="$LIB" \
    -Dtilewise.cache.dir=/tmp/tilewise-cache io.github.tilewise.it.bench.CudaAttentionBenchmark \
    --require-gpu 2>&1 \
    | tee "$OUT/java.txt"
fi
echo "== summary"
grep -E "^cuda-attention" "$OUT/bench.txt"
