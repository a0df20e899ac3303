#!/usr/bin/env bash
# Builds a configured CMake folder with a bounded number of parallel jobs: MK_BUILD_JOBS, else
# the processors this process may use (nproc). A bare `cmake --build --parallel` lets make start
# every compile at once (tens of nvcc/cicc processes of 1-2 GB each on a 2-core machine).
#   cmake/build.sh BUILD_DIR [more cmake --build arguments]
set -euo pipefail
dir=$1
shift
exec cmake --build "$dir" --parallel "${MK_BUILD_JOBS:-$(nproc)}" "$@"
