#!/usr/bin/env bash
# The CPU kernels measured on another machine without Java (e.g. the GPU machine's host CPU):
# builds the native kernels, tests and benchmarks (no JNI), checks the float64-reference tests on
# every ISA variant the CPU has, then times on two physical cores (as the 2-core development machine):
# instruction peaks, attention against ONNX Runtime's MultiHeadAttention (Python,
# peers/ort_attention_bench.py) and the encoder GEMM grid. Output: machine-readable lines on stdout.
#
# Usage (from the repository root): bash native/bench/cpu_device.sh [build-dir]
set -euo pipefail
build=${1:-/tmp/tilewise-native}
root=$(cd "$(dirname "$0")/../.." && pwd)

echo "# cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "# flags: $(grep -o -w -E 'avx2|fma|f16c|avx512f|avx512_vnni|avx512_bf16|avx_vnni|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"

cmake -S "$root/native" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTILEWISE_JNI=OFF \
  -DTILEWISE_CUDA=OFF >/dev/null
make -C "$build" -j"$(nproc)" >/dev/null

# Two CPUs on different physical cores (SMT siblings would share one core's FMA units).
cpus=$(lscpu -p=CPU,CORE | grep -v '^#' | sort -t, -k2,2n -u | head -2 | cut -d, -f1 | paste -sd,)
echo "# pinned to CPUs $cpus"

run() { taskset -c "$cpus" env TILEWISE_THREADS=2 "$@"; }
run "$build/peak_bench" 2
for d in 64 128; do run "$build/attention_bench" --bshd "$d" 512 2048 8192; done
# The AVX2 kernels on the same cores (what an AVX2-only CPU runs).
for d in 64 128; do TILEWISE_ISA=avx2 run "$build/attention_bench" --bshd "$d" 512 2048 8192; done
taskset -c "$cpus" python3 "$root/native/bench/peers/ort_attention_bench.py" --threads 2
run "$build/gemm_bench" 10 4096 2 fp32,int8,int8_prequantized,int8_reduced_range \
  384x384,1152x384,1536x384,384x1536,768x768,2304x768,3072x768,768x3072,1152x768,768x1152

# The float64-reference tests, each over every ISA variant this CPU offers.
if ctest --test-dir "$build" -j"$(nproc)" >/tmp/tilewise-ctest.log 2>&1; then
  echo "native-tests passed: $(grep -E 'tests passed' /tmp/tilewise-ctest.log)"
else
  echo "native-tests FAILED:"; tail -20 /tmp/tilewise-ctest.log
fi
