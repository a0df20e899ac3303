#!/usr/bin/env bash
# Fails when a function of libmetakernels.so outside the AVX-512 build (namespace avx512 or the
# inline namespace isa_avx512, see kernels/include/mk/isa_ns.h) uses zmm registers: the AVX2
# path would call it and die with an illegal instruction on a CPU without AVX-512.
set -euo pipefail
lib=$1
command -v objdump >/dev/null || { echo "check_isa: objdump not found, skipped"; exit 0; }
bad=$(objdump -d --no-show-raw-insn -C "$lib" | awk '
  /^[0-9a-f]+ <.*>:$/ { name = $0; next }
  /%zmm/ { if (name !~ /avx512/) hit[name] = 1 }
  END { for (n in hit) print n }')
if [ -n "$bad" ]; then
  echo "check_isa: AVX-512 instructions outside the AVX-512 build of $lib:" >&2
  echo "$bad" | head -20 >&2
  exit 1
fi
echo "check_isa: $lib keeps AVX-512 code inside the AVX-512 build"
