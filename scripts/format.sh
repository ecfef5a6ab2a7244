#!/usr/bin/env bash
# Formats the C++ sources with clang-format and the project's .clang-format.
#   scripts/format.sh [FILE...]          rewrite the files (default: every
#                                        tracked .cpp/.hpp/.h file)
#   scripts/format.sh --check [FILE...]  rewrite nothing; list the files whose
#                                        formatting differs and exit 1 if any
# Uses Debian 12's clang-format (14): another version may format differently.
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
command -v clang-format >/dev/null || {
  echo "format: clang-format is missing (scripts/install-deps.sh --tests installs it)" >&2; exit 2; }
files=("$@")
[ ${#files[@]} -eq 0 ] && mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h')

if [ $check = 0 ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
differ=()
for file in "${files[@]}"; do
  clang-format "$file" | cmp -s - "$file" || differ+=("$file")
done
if [ ${#differ[@]} -gt 0 ]; then
  echo "format: ${#differ[@]} file(s) differ from .clang-format (fix with scripts/format.sh FILE...):" >&2
  printf '  %s\n' "${differ[@]}" >&2
  exit 1
fi
echo "format: ${#files[@]} files match .clang-format"
