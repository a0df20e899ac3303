#!/usr/bin/env bash
# Applies the project's one formatter configuration (.clang-format: C++, CUDA and Java) to files.
#   tools/format.sh [--check] FILE...          the files given
#   tools/format.sh [--check] --since REV      the C++/CUDA/Java files changed since REV
#   tools/format.sh [--check] --all            every source file (kernels/, native/, java/, app/,
#                                              benchmarks/, tests/)
# --check changes nothing and exits 1 listing the files that are not formatted.
# Needs clang-format (Debian: apt-get install clang-format; tested with 14).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
command -v clang-format >/dev/null || { echo "format.sh: clang-format not found (apt-get install clang-format)" >&2; exit 2; }
check=0
[ "${1:-}" = --check ] && { check=1; shift; }
pattern='\.(cpp|h|cu|cuh|java)$'
case "${1:-}" in
  --since) files=$(git diff --name-only --diff-filter=d "$2" -- | grep -E "$pattern" || true) ;;
  --all) files=$(git ls-files kernels native java app benchmarks tests | grep -E "$pattern" || true) ;;
  "") sed -n '2,9p' "$0"; exit 2 ;;
  *) files=$*;;
esac
bad=()
for f in $files; do
  if [ $check = 1 ]; then
    clang-format "$f" | cmp -s - "$f" || bad+=("$f")
  else
    clang-format -i "$f"
  fi
done
if [ ${#bad[@]} -gt 0 ]; then
  printf 'not formatted: %s\n' "${bad[@]}"
  exit 1
fi
