#!/usr/bin/env bash
# cpu_has.sh FEATURE COMMAND [ARGS...]: runs COMMAND where /proc/cpuinfo lists FEATURE (e.g.
# avx512f); otherwise says so and exits 77, which ctest reports as skipped (SKIP_RETURN_CODE).
feature=$1
shift
if ! grep -qw "$feature" /proc/cpuinfo 2>/dev/null; then
  echo "this CPU has no $feature: skipped"
  exit 77
fi
exec "$@"
