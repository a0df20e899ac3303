#!/usr/bin/env bash
# The gpu-tagged JUnit tests (tests/org/metakernels/gpu) on an emulated CUDA device, no GPU needed:
# the whole Java -> JNI -> C ABI -> kernel table path, with libmetakernels_cuda.so built from
# kernels/cuda as host C++ on the emulator (tests/cuda-emu) and fake CUDA runtime and driver
# libraries (tests/gpu-emu/README.md). From the repository root:
#   tests/gpu-emu/run.sh                       build what is missing, run every gpu-tagged class
#   tests/gpu-emu/run.sh -Dtest=CudaTwinTest   one class (any further arguments go to Maven)
# Environment:
#   JOBS=2           build parallelism (the nvcc / g++ builds and the emulated library)
#   SKIP_BUILD=1     use the build outputs as they are (java/target, the CMake build folder)
#   GPUEMU_CUBLAS=1  also the fake cuBLAS (tests/native/fake_cublas.cpp: long-double GEMMs); by
#                    default matmul runs on the emulated built-in CUDA kernel, as without cuBLAS
#   GPUEMU_BUILD     the CMake build folder (default java/target/native, the one mvn uses)
# Prints one line per test class (run, passed, failed, errors, skipped, seconds) and the wall time;
# the exit status is Maven's. Reports: java/target/gpu-emu-reports, log: java/target/gpu-emu.log.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${GPUEMU_BUILD:-$root/java/target/native}
jobs=${JOBS:-2}
start=$(date +%s)

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  # The libraries first, at $jobs (mvn's own build step runs cmake/build.sh: MK_BUILD_JOBS, else
  # nproc): configured with mvn's arguments, so mvn then finds them built.
  mkdir -p "$build"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root/cmake" -B "$build" -DCMAKE_BUILD_TYPE=Release -DMK_DISABLE_CUDA=OFF >"$build/configure.log"
  fi
  echo "[gpu-emu] building the native libraries (JOBS=$jobs)"
  cmake --build "$build" --parallel "$jobs" >"$build/gpu-emu-native.log" 2>&1 || { tail -30 "$build/gpu-emu-native.log"; exit 1; }
  echo "[gpu-emu] building the Java classes, the JNI glue and the tests (mvn test-compile)"
  (cd "$root" && mvn -B -q -Dstyle.color=never -o -pl java test-compile)
  echo "[gpu-emu] building the emulated device (mk_gpuemu_libs)"
  cmake --build "$build" --target mk_gpuemu_libs --parallel "$jobs" >"$build/gpu-emu-build.log" 2>&1 ||
    { grep -E "error|Error" "$build/gpu-emu-build.log" | head -30; exit 1; }
fi
built=$(date +%s)

lib="$build/gpu-emu/lib"
[ -f "$lib/libmetakernels_cuda.so" ] || { echo "no $lib/libmetakernels_cuda.so: run without SKIP_BUILD=1" >&2; exit 1; }
preload="$lib/libcudart.so.13:$lib/libcuda.so.1"
if [ "${GPUEMU_CUBLAS:-0}" = 1 ]; then
  lib="$lib:$build/gpu-emu/cublas"
  preload="$preload:$build/gpu-emu/cublas/libcublas.so.13:$build/gpu-emu/cublas/libcublasLt.so.13"
fi
reports="$root/java/target/gpu-emu-reports"
rm -rf "$reports"
echo "[gpu-emu] running the gpu-tagged tests on the emulated device"
set +e
(cd "$root" && OMP_NUM_THREADS=${OMP_NUM_THREADS:-$jobs} mvn -B -o -pl java surefire:test -Dgpuemu.lib="$lib" -Dgpuemu.preload="$preload" \
  -DtrimStackTrace=false "$@") >"$root/java/target/gpu-emu.log" 2>&1
status=$?
set -e
end=$(date +%s)
grep -E "Tests run:|FAIL|ERROR" "$root/java/target/gpu-emu.log" | grep -v "^\[INFO\] *$" | tail -60 || true

python3 - "$reports" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
rows = []
for f in sorted(glob.glob(sys.argv[1] + "/TEST-*.xml")):
    r = ET.parse(f).getroot()
    t, fl, er, sk = (int(r.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    rows.append((r.get("name").rsplit(".", 1)[-1], t, t - fl - er - sk, fl, er, sk, float(r.get("time", 0))))
print("\n%-40s %5s %6s %6s %6s %7s %8s" % ("class", "run", "passed", "failed", "errors", "skipped", "seconds"))
for row in rows: print("%-40s %5d %6d %6d %6d %7d %8.1f" % row)
if rows:
    tot = [sum(r[i] for r in rows) for i in range(1, 7)]
    print("%-40s %5d %6d %6d %6d %7d %8.1f" % ("total", *tot))
cases = []
for f in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    for c in ET.parse(f).getroot().iter("testcase"):
        cases.append((float(c.get("time", 0)), c.get("classname").rsplit(".", 1)[-1] + "." + c.get("name")))
if cases:
    print("slowest tests:")
    for t, n in sorted(cases, reverse=True)[:8]: print("  %7.1f s  %s" % (t, n))
PY
echo "[gpu-emu] build $((built - start)) s, tests $((end - built)) s (wall, Maven included); log: java/target/gpu-emu.log"
exit $status
