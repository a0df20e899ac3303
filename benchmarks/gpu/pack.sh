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
size=$(du -sk .device | cut -f1)
tree=$(du -sk --exclude=.device --exclude=target --exclude=.git . | cut -f1)
echo "pack: .device ${size} KiB + working tree ${tree} KiB (limit 65536 KiB)"
if [ $((size + tree)) -gt 65536 ]; then
  echo "pack: over the 64 MiB a device call carries" >&2
  exit 1
fi
