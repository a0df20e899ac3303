#!/usr/bin/env bash
# The core library and the CUDA kernels' emulator runs under AddressSanitizer and
# UndefinedBehaviorSanitizer. In a CMake folder configured with -DMK_SANITIZE=address,undefined
# (every C++ object instrumented; the CUDA library as the stub):
#   1. the native C++ tests and the CUDA emulator tests of tests/cuda-emu ($EMU; ctest), whose
#      emulated cudaMalloc poisons the bytes past each request (tests/cuda-emu/cuda_runtime.h), so
#      a kernel reading or writing past a buffer stops with its source line, as compute-sanitizer's
#      memcheck would report it on a GPU;
#   2. the core JUnit suite (not the gpu-tagged tests) with the instrumented libmetakernels.so
#      loaded instead of the one in java/target/classes (the `sanitize` profile of java/pom.xml),
#      the sanitizer runtimes preloaded into the test JVM; the host allocator poisons each block's
#      slack and cached blocks (native/src/memory.cpp), so a kernel reading past a tensor is a
#      report even inside the allocator's size class.
# A finding stops the process that made it: ctest prints it; for the JVM it is in
# java/target/sanitize-asan.PID or sanitize-ubsan.PID (and the surefire report names the test that
# was running). Not part of `mvn verify` (a clean run takes ~25 minutes on 2 cores, most of it the
# instrumented build). Needs GCC's libasan and libubsan (Debian: libgcc-12-dev, which g++ brings).
#   tests/sanitize/run.sh                            # everything
#   TEST=MessagePassingTest tests/sanitize/run.sh    # one test class (surefire -Dtest)
#   NATIVE=0 / JAVA=0                                # skip a part
#   GPU=1                                            # also gpu-tagged tests on the emulated device
#                                                    # (tests/gpu-emu; GPU_TESTS: the classes)
#   NATIVE=0 OMP_NUM_THREADS=16 tests/sanitize/run.sh        # the JVM part with 16 threads
# Environment: BUILD (the CMake folder, default java/target/sanitize-build), SANITIZE (default
# address,undefined), JOBS (default nproc), EMU (emulator tests, default the dense, graph, GAT,
# linear, linear-attention, meta and copy tests; EMU=all adds every attention run: ~1 hour).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/java/target/sanitize-build}
jobs=${JOBS:-$(nproc)}
start=$(date +%s)

cmake -S "$root/cmake" -B "$build" -DMK_DISABLE_CUDA=ON -DMK_SANITIZE="${SANITIZE:-address,undefined}" >/dev/null
MK_BUILD_JOBS=$jobs "$root/cmake/build.sh" "$build" --target metakernels metakernels_ompwait metakernels_cuda
echo "[sanitize] library built in $(( $(date +%s) - start )) s: $build"

preload=""
for lib in libasan.so libubsan.so; do
  f=$(g++ -print-file-name=$lib)
  [ -f "$f" ] || { echo "[sanitize] $lib not found (g++ -print-file-name)" >&2; exit 2; }
  preload=${preload:+$preload:}$(readlink -f "$f")
done

rc=0
# the JVM's sanitizer logs: a report is a finding; warnings alone (an allocation too large,
# refused as malloc would) are not
jvm_findings() {
  for f in "$root"/java/target/sanitize-asan.* "$root"/java/target/sanitize-ubsan.*; do
    [ -e "$f" ] || continue
    if grep -q -E "ERROR: AddressSanitizer|runtime error:" "$f"; then
      echo "[sanitize] finding: $f"; head -60 "$f"; rc=1
    else
      echo "[sanitize] warnings only: $f ($(sort -u "$f" | head -3 | tr '\n' ' '))"
    fi
  done
}
# junit_counts DIR WHAT: the totals of the surefire reports in DIR
junit_counts() {
  python3 - "$1" "$2" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
n = f = e = s = 0
for p in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    r = ET.parse(p).getroot()
    n += int(r.get("tests")); f += int(r.get("failures")); e += int(r.get("errors")); s += int(r.get("skipped"))
print(f"[sanitize] {sys.argv[2]}: {n} tests, {f} failures, {e} errors, {s} skipped")
PY
}
if [ "${NATIVE:-1}" = 1 ]; then
  t=$(date +%s)
  emu=${EMU:-dense graph gat gat_backward linear linear_attention meta meta_batched copy_async}
  if [ "$emu" = all ]; then
    targets=(mk_emu_tests mk_runtime_tests) regex='^(native\.runtime|emu\..*)$'
  else
    targets=(mk_runtime_tests) regex="^(native\.runtime"
    # (no group per name: CMake's regular expressions allow 10 groups at most)
    for e in $emu; do targets+=("${e}_emu_test"); regex+="|emu\.${e}|emu\.${e}\..*"; done
    regex+=")\$"
  fi
  MK_BUILD_JOBS=$jobs "$root/cmake/build.sh" "$build" --target "${targets[@]}"
  # the build fixtures are left out (-FS): the targets above are built
  ASAN_OPTIONS=detect_leaks=0 ctest --test-dir "$build" -R "$regex" -FS '.*' -j"$jobs" --output-on-failure \
    --no-tests=error || rc=1
  echo "[sanitize] native and emulator tests: $(( $(date +%s) - t )) s"
fi
if [ "${JAVA:-1}" = 1 ]; then
  t=$(date +%s)
  rm -f "$root"/java/target/sanitize-asan.* "$root"/java/target/sanitize-ubsan.*
  rm -rf "$root/java/target/sanitize-reports"
  args=(-B -q -o -pl java test -Dsanitize.lib="$build" -Dsanitize.preload="$preload" -Dmany.threads.skip=true
        -Dnative.tests.skip=true -Dstyle.color=never)
  [ -n "${TEST:-}" ] && args+=(-Dtest="$TEST" -Dsurefire.failIfNoSpecifiedTests=false)
  (cd "$root" && mvn "${args[@]}") || rc=1
  jvm_findings
  junit_counts "$root/java/target/sanitize-reports" "JUnit under the sanitizers"
  echo "[sanitize] Java suite: $(( $(date +%s) - t )) s"
fi
if [ "${GPU:-0}" = 1 ]; then
  # the gpu-tagged tests on the emulated device (tests/gpu-emu), its libraries built here too
  t=$(date +%s)
  MK_BUILD_JOBS=$jobs "$root/cmake/build.sh" "$build" --target mk_gpuemu_libs >/dev/null
  rm -f "$root"/java/target/sanitize-asan.* "$root"/java/target/sanitize-ubsan.*
  rm -rf "$root/java/target/gpu-emu-reports"
  lib=$build/gpu-emu/lib
  (cd "$root" && \
    ASAN_OPTIONS="handle_segv=0:allow_user_segv_handler=1:detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:log_path=$root/java/target/sanitize-asan" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$root/java/target/sanitize-ubsan" \
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-$jobs} mvn -B -q -o -pl java surefire:test -Dgpuemu.lib="$lib:$build" \
      -Dgpuemu.preload="$preload:$lib/libcudart.so.13:$lib/libcuda.so.1" -DtrimStackTrace=false -Dstyle.color=never \
      -Dtest="${GPU_TESTS:-CudaCheckpointTest,CudaGraphTwinTest,CudaGatBackwardTwinTest,CudaStreamTest}") || rc=1
  jvm_findings
  junit_counts "$root/java/target/gpu-emu-reports" "gpu-tagged tests on the emulated device"
  echo "[sanitize] emulated-device tests: $(( $(date +%s) - t )) s"
fi
echo "[sanitize] $( [ $rc = 0 ] && echo clean || echo FINDINGS OR FAILURES ) in $(( $(date +%s) - start )) s"
exit $rc
