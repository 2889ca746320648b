#!/bin/sh
# Runs the native tests for Maven (native/pom.xml, exec-maven-plugin with useMavenLogger): when
# every test passes, ctest's report goes to standard output, which Maven logs at INFO (shown by a
# normal build, hidden by `mvn -q`); when one fails, the report with the failing tests' output goes
# to standard error, which Maven logs at ERROR, so even a quiet build shows why.
# Usage: run_ctest.sh <cmake build dir> [ctest options]
build_dir=${1:?cmake build directory}
shift
log="$build_dir/ctest-output.txt"
if ctest --test-dir "$build_dir" --output-on-failure "$@" >"$log" 2>&1; then
  cat "$log"
else
  status=$?
  cat "$log" >&2
  exit "$status"
fi
