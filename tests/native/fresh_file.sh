#!/usr/bin/env bash
# Compiler launcher (cmake/tests.cmake): fresh_file.sh FILE COMPILER ARGS... removes FILE, then
# runs the compiler. GCC appends its -fopt-info-...=FILE report, and the vectorisation check
# must read only the last compile's.
rm -f "$1"
shift
exec "$@"
