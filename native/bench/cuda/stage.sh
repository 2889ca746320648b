#!/usr/bin/env bash
# Prepares a folder to carry to the GPU machine (which has nvcc, PyTorch and no Java):
#   <stage>/native  the native sources (built there by run_h200.sh with that machine's nvcc)
#   <stage>/jre     a minimal Java runtime made with jlink, plus the JDK's JNI headers
#   <stage>/java    the compiled CUDA Java API, the CPU attention binding and CudaAttentionBenchmark
#                   (integration-tests; it needs no DJL engine, so it runs on a plain jlink runtime)
#   <stage>/slf4j-api.jar  logging API used by LibUtils and CudaLibrary
#   <stage>/djl-api.jar    DJL's API (DataType, and the NDArray types AttentionOptions names)
# Usage (from the repository root): native/bench/cuda/stage.sh <stage dir>
# Then, on the device: bash <stage>/native/bench/cuda/run_h200.sh <stage>
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
STAGE=${1:?stage directory}
mkdir -p "$STAGE"
STAGE=$(cd "$STAGE" && pwd)
rm -rf "$STAGE/native" "$STAGE/java"
cp -r "$ROOT/native" "$STAGE/native"
rm -rf "$STAGE/native/target"
if [[ ! -x "$STAGE/jre/bin/java" ]]; then
  jlink --add-modules java.base,java.logging --strip-debug --no-man-pages --no-header-files \
    --compress=2 --output "$STAGE/jre"
  JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
  cp -r "$JAVA_HOME/include" "$STAGE/jre/include"
fi
# The loader of libtilewise and libtilewise_cuda (jni/NativeLibraryLoader) logs through slf4j.
SLF4J=$(ls ~/.m2/repository/org/slf4j/slf4j-api/2.0.*/slf4j-api-2.0.*.jar | sort -V | tail -1)
cp "$SLF4J" "$STAGE/slf4j-api.jar"
DJL_VERSION=$(sed -n 's:.*<djl.version>\(.*\)</djl.version>.*:\1:p' "$ROOT/pom.xml")
cp ~/.m2/repository/ai/djl/api/"$DJL_VERSION"/api-"$DJL_VERSION".jar "$STAGE/djl-api.jar"
# javac compiles the benchmark and, from the source path, exactly the classes it reaches (the CUDA
# and attention bindings, the loader), so no list here goes stale when those classes change.
javac --release 17 -cp "$STAGE/slf4j-api.jar:$STAGE/djl-api.jar" -sourcepath "$ROOT/djl-extension/src/main/java" \
  -implicit:class -d "$STAGE/java" \
  "$ROOT/integration-tests/src/main/java/io/github/tilewise/it/bench/CudaAttentionBenchmark.java"
du -sh "$STAGE"
