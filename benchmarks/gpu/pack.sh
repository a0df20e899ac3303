#!/usr/bin/env bash
# Packs .device/ for the GPU check (../shared/device/README.md) within the 64 MiB a device call
# carries. Run from the project root after `mvn -B -q install -DskipTests`, then call the device
# tool with carry [".device"] and `source .device/env.sh && bash benchmarks/gpu/check.sh`.
#
# The modules: java (the core library and its tests), app (cli.Main, which check.sh runs for
# `info`, and the recipes) and benchmarks. The plain `../shared/device/bundle.sh java app benchmarks`
# packs every jar in target/, which here includes the shaded jars (benchmarks.jar with libtorch:
# 132 MB; app/target/metakernels-all.jar: 37 MB), far over the limit. They are not needed there:
# the GPU benchmarks and tests run from the modules' plain jars and their dependencies. The PDF
# back-end of XChart goes too (plots are PNG).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
exclude='pytorch|-platform|windows|macosx|android|ios|arm64|ppc64le|benchmarks\.jar$|-all\.jar$|pdfbox|fontbox|graphics2d|VectorGraphics2D'
../shared/device/bundle.sh -x "$exclude" java app benchmarks
# Measured 2026-12-05: that bundle was 84.7 MB (+ 9.9 MB of working tree), over the 64 MiB, with
# nothing prebuilt: the CUDA flavour jar is 26.5 MB (libmetakernels_cuda.so, 112 MB of fatbin,
# deflated), the OpenBLAS jar 19.2 MB (three 24-38 MB libraries, two of them JNI builds the
# nolapack preset never loads) and the jlink runtime 16.3 MB (jlink's zip compression under xz).
# So: the two jars travel stored (no deflate) inside one xz archive that env.sh unpacks to
# /tmp/mk-device-jars and appends to CP (the CUDA jar 26.5 -> 13.3 MB; OpenBLAS keeps only
# libopenblas.so.0, its runtime libraries and the nolapack JNI library: 19.2 -> 5.5 MB), and the
# runtime is linked again without jlink's compression, then xz -9 (16.3 -> 10.9 MB).
# Since the CUDA library ships zstd-compressed without line information (9.2 MB, its jar 7.7 MB),
# the two jars take 13.1 MB in the archive and the pack with both harnesses 50.1 MB + 10.1 MB of
# working tree (measured 2026-12-05 on a clean clone of 8079f86).
slim=$(mktemp -d)
big=()
# Since 2026-12-06 the other jars over 1 MB travel the same way (the CUDA presets' two jars, the app
# with its datasets, commons-math3, metakernels' CPU flavour: 13.1 MB as jars, 7.8 MB stored under
# xz): the pack had come within 2.3 MB of the limit as the working tree grows. junit-console stays a
# jar (env.sh runs it with java -jar).
for jar in .device/lib/metakernels-*-linux-x86_64-cuda.jar .device/lib/openblas-*-linux-x86_64.jar \
           .device/lib/metakernels-*-linux-x86_64.jar .device/lib/metakernels-app-*.jar \
           .device/lib/cuda-*-linux-x86_64.jar .device/lib/cuda-[0-9]*[0-9].jar .device/lib/commons-math3-*.jar; do
  [ -f "$jar" ] && big+=("$jar")
done
python3 - "$slim" "${big[@]}" <<'EOF'
import os, sys, zipfile
out = sys.argv[1]
for path in sys.argv[2:]:
    name = os.path.basename(path)
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(os.path.join(out, name), "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            base = info.filename.rsplit("/", 1)[-1]
            # OpenBLAS: the JNI libraries of the full and lapack presets and the C headers stay behind
            if name.startswith("openblas") and (base in ("libjniopenblas.so", "libjniopenblas_full.so")
                                                or "/include/" in info.filename):
                continue
            zout.writestr(info.filename, zin.read(info.filename), zipfile.ZIP_STORED)
EOF
if [ ${#big[@]} -gt 0 ]; then
  tar -C "$slim" -cf - $(cd "$slim" && ls) | xz -9 -T2 > .device/device-jars.tar.xz
  rm -f "${big[@]}"
  cat >> .device/env.sh <<'EOF'
# (benchmarks/gpu/pack.sh) the jars over 1 MB (the CUDA flavour, OpenBLAS, ...) travel stored inside an xz archive
if [ -f "$_d/device-jars.tar.xz" ]; then
  _s=$(cksum < "$_d/device-jars.tar.xz")  # a warm machine may hold an older pack's jars
  if [ "$(cat /tmp/mk-device-jars/.unpacked 2>/dev/null)" != "$_s" ]; then
    rm -rf /tmp/mk-device-jars && mkdir -p /tmp/mk-device-jars \
      && tar -C /tmp/mk-device-jars -xJf "$_d/device-jars.tar.xz" && echo "$_s" > /tmp/mk-device-jars/.unpacked
  fi
  CP=$CP$(ls /tmp/mk-device-jars/*.jar | tr '\n' ':'); export CP
fi
EOF
fi
rm -rf "$slim"
jdk=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
jre=$(mktemp -d)
"$jdk/bin/jlink" --add-modules java.base,jdk.unsupported,java.management,jdk.management,java.logging \
  --strip-debug --no-man-pages --no-header-files --compress=0 --output "$jre/jre"
tar -C "$jre" -cf - jre | xz -9 -T2 > .device/jre.tar.xz
rm -rf "$jre"
echo "pack: CUDA and OpenBLAS jars $(du -k .device/device-jars.tar.xz 2>/dev/null | cut -f1) KiB (xz), runtime $(du -k .device/jre.tar.xz | cut -f1) KiB"
# The standalone harnesses, built here (nvcc 13, as on the GPU machine) so the device's minutes
# go to running them: building the attention harness there took 2-4 of a call's 10 minutes.
# ~3.4 MB as .device/harnesses.tar.xz; check.sh unpacks it and builds with nvcc only without it.
# PREBUILD=0 skips this (then check.sh builds them there, as before). About 5-9 min on 2 cores.
rm -f .device/harnesses.tar.xz
if [ "${PREBUILD:-1}" = 1 ] && command -v nvcc >/dev/null; then
  hb=$(mktemp -d)
  flags=(-std=c++17 -O3 --expt-relaxed-constexpr -Ikernels/include -Inative/include -Ikernels/cuda)
  nvcc "${flags[@]}" -gencode arch=compute_90a,code=sm_90a -DMK_CUDA_SM90A=1 benchmarks/gpu/attention_harness.cu \
    -o "$hb/mk-attn-harness" > "$hb/attn.log" 2>&1 &
  attn=$!
  nvcc "${flags[@]}" -arch=sm_90 benchmarks/gpu/linear_attention_harness.cu -o "$hb/mk-la-harness" > "$hb/la.log" 2>&1 \
    || { cat "$hb/la.log" >&2; exit 1; }
  wait $attn || { cat "$hb/attn.log" >&2; exit 1; }
  { git rev-parse HEAD; git status --porcelain -- kernels native benchmarks/gpu | head -20; nvcc --version | tail -1; } \
    > "$hb/BUILT-FROM.txt"
  # within the 64 MiB: both (~3.4 MB), else the attention one alone (its build is the long one),
  # else none (check.sh then builds them there)
  tree=$(du -sk --exclude=.device --exclude=target --exclude=.git . | cut -f1)
  for set in "mk-attn-harness mk-la-harness" "mk-attn-harness" ""; do
    rm -f .device/harnesses.tar.xz
    [ -n "$set" ] || { echo "pack: no room for prebuilt harnesses: check.sh will build them with nvcc there"; break; }
    # shellcheck disable=SC2086
    tar -C "$hb" -cJf .device/harnesses.tar.xz $set BUILT-FROM.txt
    [ $(($(du -sk .device | cut -f1) + tree)) -le 65536 ] && { echo "pack: prebuilt $set ($(du -k .device/harnesses.tar.xz | cut -f1) KiB)"; break; }
  done
  rm -rf "$hb"
fi
size=$(du -sk .device | cut -f1)
tree=$(du -sk --exclude=.device --exclude=target --exclude=.git . | cut -f1)
echo "pack: .device ${size} KiB + working tree ${tree} KiB (limit 65536 KiB)"
if [ $((size + tree)) -gt 65536 ]; then
  echo "pack: over the 64 MiB a device call carries" >&2
  exit 1
fi
