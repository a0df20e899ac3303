#!/usr/bin/env bash
# Runs a build command with its chatter kept in a log: silent when it succeeds (compiler
# warnings still print), the whole log when it fails. The java module runs CMake through it so
# that `mvn -q` is quiet (issue 14); the full output stays in LOG_FILE (target/native/*.log).
#   cmake/quietly.sh LOG_FILE COMMAND [ARGS...]
set -uo pipefail
log=$1
shift
mkdir -p "$(dirname "$log")"
"$@" >"$log" 2>&1
status=$?
if [ $status -ne 0 ]; then
  cat "$log"
  echo "failed ($status): $* (log: $log)" >&2
  exit $status
fi
grep -E '(warning|Warning|WARNING)[: ]' "$log" | grep -v 'Wno-' || true
exit 0
