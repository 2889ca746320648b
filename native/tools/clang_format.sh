#!/bin/sh
# clang-format over the native sources (native/{include,src,test,bench}: *.h, *.cpp, *.cu, *.cuh)
# with the repository's .clang-format, as spotless does for Java.
#
#   clang_format.sh check   report files that differ; exit 1 if any (Maven runs this at
#                           process-sources: native/pom.xml, execution clang-format-check)
#   clang_format.sh warn    report them, exit 0 (the mode until the sources are formatted)
#   clang_format.sh fix     format the files in place (`mvn -pl native exec:exec@clang-format-fix`)
#   clang_format.sh skip    do nothing (-Dtilewise.clangFormat.mode=skip)
#
# The version is pinned (CLANG_FORMAT_MAJOR): each clang-format release formats some constructs
# differently, so a check against another version would fail on formatted code. Debian 12, the
# developers' and CI's system, ships it as `clang-format` (clang-format-14). The binary is
# $TILEWISE_CLANG_FORMAT (Maven: -Dtilewise.clangFormat=PATH) if set, else clang-format-14, else
# clang-format. Where none of these is version 14, check and warn print one line saying so and exit
# 0: the build needs no clang-format, and a fresh machine without it still builds. fix fails.
#
# Output: a clean check prints nothing; a notice goes to standard output (Maven INFO, hidden by
# -q); differences in check mode go to standard error (Maven ERROR, always shown).
set -u
CLANG_FORMAT_MAJOR=14
mode=${1:?usage: clang_format.sh check|warn|fix|skip}
case "$mode" in
  check | warn | fix) ;;
  skip) exit 0 ;;
  *) echo "clang_format.sh: unknown mode '$mode' (check, warn, fix or skip)" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)

found=""
for candidate in ${TILEWISE_CLANG_FORMAT:-} clang-format-$CLANG_FORMAT_MAJOR clang-format; do
  if command -v "$candidate" >/dev/null 2>&1; then
    version=$("$candidate" --version 2>/dev/null)
    case "$version" in
      *"version $CLANG_FORMAT_MAJOR."*) found=$candidate; break ;;
      *) seen="$candidate ($(echo "$version" | sed -n 's/.*version \([0-9][0-9.]*\).*/\1/p'))" ;;
    esac
  fi
done
if [ -z "$found" ]; then
  message="clang-format $CLANG_FORMAT_MAJOR not found${seen:+ (only $seen)}: native format check skipped"
  if [ "$mode" = fix ]; then
    echo "$message; install clang-format-$CLANG_FORMAT_MAJOR or pass TILEWISE_CLANG_FORMAT" >&2
    exit 1
  fi
  echo "$message"
  exit 0
fi

files=$(find "$root/include" "$root/src" "$root/test" "$root/bench" -type f \
  \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) 2>/dev/null | sort)
if [ "$mode" = fix ]; then
  # shellcheck disable=SC2086
  exec "$found" -i --style=file $files
fi

# One process over every file when all is well (the common case, ~1 s); file by file otherwise.
# shellcheck disable=SC2086
if "$found" --dry-run -Werror --style=file $files >/dev/null 2>&1; then
  exit 0
fi
bad=0
for f in $files; do
  if ! "$found" --style=file "$f" | cmp -s - "$f"; then
    bad=$((bad + 1))
    if [ "$mode" = check ]; then
      echo "native/${f#"$root"/}: not formatted (clang-format $CLANG_FORMAT_MAJOR, .clang-format):" >&2
      "$found" --style=file "$f" | diff -u "$f" - | sed -n '3,24p' >&2
    fi
  fi
done
if [ "$bad" -gt 0 ]; then
  if [ "$mode" = check ]; then
    echo "$bad native source file(s) not formatted: run native/tools/clang_format.sh fix" \
      "(or mvn -pl native exec:exec@clang-format-fix)" >&2
    exit 1
  fi
  echo "$bad native source file(s) not formatted (not enforced yet): native/tools/clang_format.sh fix"
fi
exit 0
