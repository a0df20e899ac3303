#!/usr/bin/env bash
# The GPU check, run on the GPU machine from the project root after `source .device/env.sh`
# (pack .device with `bash benchmarks/gpu/pack.sh`: the plain bundle.sh call is over 64 MiB)
# (see ../shared/device/README.md). Within about nine minutes it:
#   1. prints the GPU and the driver;
#   1b. builds and runs the standalone CUDA harnesses (benchmarks/gpu/*_harness.cu) with nvcc;
#   2. runs the JUnit tests tagged "gpu" (each CUDA kernel against its CPU twin);
#   3. runs the GPU JMH benchmarks (short iterations) and the PyTorch peers on the same shapes;
#   4. prints the softmax-attention TFLOP/s (metakernels and PyTorch SDPA, % of the 989 TFLOP/s
#      BF16 peak) from those two JSON files (tflops.md), and the memory-bound ops of GpuDenseBench
#      (reductions, softmax rows, elementwise, copies) beside PyTorch's and as a fraction of the
#      copy rate PyTorch's y.copy_(x) reaches in the same run (dense.md);
#   5. packs the reports (JUnit, JMH JSON, peers JSON, harness tables, hs_err logs) into
#      $OUT/reports.tgz when OUT is set, with the summary tables beside it (at most 7 files).
# Every step runs even if an earlier one failed; the exit status is the tests'.
# TESTS_ONLY=1 stops after step 2 (a correctness check when device time is short); SKIP_TESTS=1
# skips steps 1b and 2 (harnesses, tests); HARNESSES=0 skips step 1b alone. One device call may run
# 600 s, and the worst cases of the steps add up to more than that, so split the check:
#   TESTS_ONLY=1 HARNESSES=0   the gpu-tagged tests (~5 min at most)
#   TESTS_ONLY=1 TESTS=0       the two harnesses (runs <= 3 and <= 4 min; prebuilt by pack.sh into
#                              .device/harnesses.tar.xz, else built here first: ~2-4 min of nvcc)
#   SKIP_TESTS=1               the JMH classes and the PyTorch peers (~9.5 min at most; JMH_CLASSES
#                              ="Name:seconds ..." runs a subset, PEERS=0 skips the peers;
#                              GPU_ATTN_DTYPES=F32,TF32 adds GpuAttentionBench's TF32 sets;
#                              GPU_BF16_SECOND=DEFAULT,SM90 times the BF16 double backward's Hopper
#                              passes beside the default ones; GPU_ATTN_SIMT=default,x3 the F32
#                              sets with the 3xTF32 Hopper kernels beside the default;
#                              GPU_LA_FORM=default,recurrent the linear-attention sets with the
#                              recurrent form and its unmasked state form (x3 for F32) beside the default)
# The opt-in kernel choices are environment variables read per call, so they pass through to every
# step: e.g. MK_LINEAR_TC=recurrent MK_LINEAR_F32=x3 TESTS_ONLY=1 HARNESSES=0 runs the gpu-tagged
# tests with the recurrent linear-attention form (the harness times it beside the others anyway).
# GPU_GRAPH=1 runs the graph step alone (issue 15; one device call, expected ~4-5 min, bounded by its
# timeouts at ~9 min: give the call timeout_s 600), after the device and backend lines:
#   a. GraphEdgeDump writes the R-MAT edge lists (100k nodes, 1M and 10M edges, and the GCN graph's
#      weights) to /tmp/mk-graphs as .npy (~220 MB; ~15-25 s, limit 90 s);
#   b. GpuGraphShapesBench (the CPU GraphBench shapes on CUDA, reading those edges) in three JVMs,
#      -f 0, one 0.5 s warm-up and two 0.5 s iterations per set: copy + SpMM sum/mean forward and
#      forward+backward (25 sets, limit 120 s), GAT attention part and GATConv layer (8 sets, 70 s),
#      SDDMM forward and forward+backward and the GCN second-order step (16 sets, 110 s); each set-up
#      notes the bytes its op moves (graph-notes.txt);
#   c. graph_peers.py: PyTorch (index_add / CSR, index_select / sampled_addmm, composed GAT, GCN with
#      create_graph) and PyG's GATConv on the same edges, and the copy rate (limit 150 s);
#   d. ratios.md (each JMH row beside its peers) and graph.md (SpMM / SDDMM GB/s and % of the copy
#      rate; SpMM >= 70 %, GATConv >= PyG).
#   GRAPH_EDGES=1000000 keeps the 1M-edge graph alone (about half the time); GRAPH_JMH="copy|spmm:120 ..."
#   picks the JMH groups (regex on the method names : seconds); GRAPH_PEERS=0 skips step c.
set -uo pipefail
# At most 8 files come back from the device's $OUT (../shared/device/README.md): everything is
# written to a work folder, then packed into $OUT/reports.tgz with a few summaries beside it.
final=${OUT:-}
if [ -n "$final" ]; then out=/tmp/mk-check-out; else out=benchmarks/gpu/out; fi
rm -rf /tmp/mk-check-out
mkdir -p "$out"
finish() {
  [ -n "$final" ] || return 0
  mkdir -p "$final"
  tar czf "$final/reports.tgz" -C "$out" . 2>/dev/null
  for f in ratios.md tflops.md dense.md graph.md attention_harness.md linear_attention_harness.md; do
    [ -f "$out/$f" ] && cp "$out/$f" "$final/"
  done
  [ -f "$out/junit.txt" ] && tail -60 "$out/junit.txt" > "$final/junit-tail.txt"
  return 0
}
trap finish EXIT
log() { printf '\n== %s\n' "$*"; }

log "device"
nvidia-smi -L 2>&1 | tee "$out/nvidia-smi.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$out/nvidia-smi.txt"
java -version 2>&1 | head -1

# cuBLAS may live only inside PyTorch's wheels: add their library folders as a fallback
pylibs=$(python3 - <<'PY' 2>/dev/null
import importlib, os
dirs = []
for mod in ("nvidia.cublas", "nvidia.cuda_runtime", "nvidia.cu13", "torch"):
    try:
        m = importlib.import_module(mod)
        for p in getattr(m, "__path__", []):
            for sub in ("lib", ""):
                d = os.path.join(p, sub)
                if os.path.isdir(d) and any(f.startswith("libcublas") for f in os.listdir(d)):
                    dirs.append(d)
    except Exception:
        pass
print(":".join(dirs))
PY
)
[ -n "$pylibs" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$pylibs"

log "backend"
java -cp "$CP" org.metakernels.cli.Main info 2>&1 | tee "$out/info.txt"

# the JMH JSON files of this run (one per class or group: a run cut by its timeout loses its own)
# merged into jmh-gpu.json
merge_jmh() {
  python3 - "$out" <<'PY'
import glob, json, os, sys
rows = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "jmh-Gpu*.json"))):
    try:
        rows += json.load(open(f))
    except Exception as e:  # a run cut by its timeout leaves no (or a partial) file
        print(f"skipped {f}: {e}")
json.dump(rows, open(os.path.join(sys.argv[1], "jmh-gpu.json"), "w"), indent=1)
print(f"jmh-gpu.json: {len(rows)} results")
PY
}

if [ "${GPU_GRAPH:-0}" = 1 ]; then
  gdir=/tmp/mk-graphs edges=${GRAPH_EDGES:-1000000,10000000}
  log "graph: R-MAT edge lists for the peers (GraphEdgeDump: 100000 nodes, $edges edges)"
  rm -rf "$gdir"
  timeout 90 java -cp "$CP" org.metakernels.bench.GraphEdgeDump "$gdir" 100000 "$edges" 2>&1 | tee "$out/graph-dump.txt"
  cp "$gdir/manifest.json" "$out/graph-manifest.json" 2>/dev/null

  log "graph: GpuGraphShapesBench (JMH)"
  for grp in ${GRAPH_JMH:-copy|spmm:120 gat:70 sddmm|gcn:110}; do
    name=${grp%:*} tag=${grp%:*}
    tag=${tag//|/-}
    params=(-p "edges=$edges")
    [ "$name" = copy ] && params=()
    timeout "${grp##*:}" java -Dbench.notes="$out/graph-notes.txt" -Dbench.graphs="$gdir" -cp "$CP" org.openjdk.jmh.Main \
      "GpuGraphShapesBench\.($name)" -f 0 -wi 1 -i 2 -w 500ms -r 500ms ${params[@]+"${params[@]}"} -rf json \
      -rff "$out/jmh-GpuGraphShapesBench-$tag.json" > "$out/jmh-GpuGraphShapesBench-$tag.txt" 2>&1
    echo "JMH $name: exit $? (log: jmh-GpuGraphShapesBench-$tag.txt)"
    grep -E 'Exception|MISMATCH' "$out/jmh-GpuGraphShapesBench-$tag.txt" | sort | uniq -c | head -5
    sed -n '/^Benchmark .*Mode/,$p' "$out/jmh-GpuGraphShapesBench-$tag.txt" | head -40
  done
  merge_jmh

  log "graph: PyTorch / PyG peers on the same edges"
  if [ "${GRAPH_PEERS:-1}" = 0 ]; then
    echo "GRAPH_PEERS=0: skipped" | tee "$out/graph_peers.txt"
  else
    PYTHONUNBUFFERED=1 timeout 150 python3 benchmarks/gpu/graph_peers.py --graphs "$gdir" --out "$out/graph_peers.json" \
      2>&1 | tee "$out/graph_peers.txt"
  fi

  log "graph: every GpuGraphShapesBench row beside its peers"
  python3 benchmarks/gpu/ratios.py --jmh "$out/jmh-gpu.json" --peers "$out/peers.json" \
    --graph-peers "$out/graph_peers.json" 2>&1 | tee "$out/ratios.md"
  log "graph: SpMM / SDDMM GB/s and % of the copy rate"
  python3 benchmarks/gpu/graph.py --jmh "$out/jmh-gpu.json" --notes "$out/graph-notes.txt" \
    --graph-peers "$out/graph_peers.json" 2>&1 | tee "$out/graph.md"
  cp hs_err_pid*.log "$out/" 2>/dev/null || true
  log "done (GPU_GRAPH)"
  exit 0
fi

log "standalone harnesses (nvcc on this machine)"
# kernels/cuda/linear_attention.cu alone: every form (F32 sequential / chunked SIMT, BF16 / F16 on
# tensor cores and chunked SIMT, forward+backward), time, error against F32, FLOP and byte figures;
# % of peak against the H100/H200 F32 FMA (67) and dense BF16 (989, wgmma: mma.sync gets less) TFLOP/s
if [ "${SKIP_TESTS:-0}" = 1 ] || [ "${HARNESSES:-1}" = 0 ]; then
  echo "SKIP_TESTS or HARNESSES=0: harnesses skipped"
elif [ -f .device/harnesses.tar.xz ]; then
  # prebuilt by pack.sh on the developer machine (sm_90a / sm_90, nvcc 13): no nvcc minutes here
  rm -f /tmp/mk-attn-harness /tmp/mk-la-harness
  tar -C /tmp -xJf .device/harnesses.tar.xz && cat /tmp/BUILT-FROM.txt
  peaks=()
  nvidia-smi -L 2>/dev/null | grep -Eq 'H100|H200' && peaks=(--peak-tflops 67 989)
  if [ ! -x /tmp/mk-la-harness ] && command -v nvcc >/dev/null; then  # (left out of a full pack)
    timeout 300 nvcc -std=c++17 -O3 -arch=sm_90 -Ikernels/include -Inative/include -Ikernels/cuda \
      benchmarks/gpu/linear_attention_harness.cu -o /tmp/mk-la-harness 2>&1 | tail -5
  fi
  [ -x /tmp/mk-la-harness ] && timeout 180 /tmp/mk-la-harness ${peaks[@]+"${peaks[@]}"} 2>&1 | tee "$out/linear_attention_harness.md"
  [ -x /tmp/mk-attn-harness ] && timeout "${ATTN_HARNESS_TIMEOUT:-240}" /tmp/mk-attn-harness ${ATTN_HARNESS_REPS:-} 2>&1 |
    tee "$out/attention_harness.md"
elif command -v nvcc >/dev/null; then
  # the attention kernels alone (built meanwhile for sm_90a; ~2-4 min of nvcc): 16-bit forward v1 /
  # v2 / v2k32 / sm90, backward v1 / v2 / sm90, the 16-bit and TF32 double backward, the F32 SIMT v1 / v2,
  # causal or not, timed and checked against a float64 reference or v1 (~3 min at 10 repetitions;
  # ATTN_HARNESS_REPS=3 shortens it, ATTN_HARNESS_TIMEOUT (s, default 240) bounds it)
  rm -f /tmp/mk-attn-harness
  timeout 300 nvcc -std=c++17 -O3 --expt-relaxed-constexpr -gencode arch=compute_90a,code=sm_90a -DMK_CUDA_SM90A=1 \
    -Ikernels/include -Inative/include -Ikernels/cuda benchmarks/gpu/attention_harness.cu \
    -o /tmp/mk-attn-harness > /tmp/mk-attn-harness.log 2>&1 &
  attn_build=$!
  timeout 300 nvcc -std=c++17 -O3 -arch=sm_90 -Ikernels/include -Inative/include -Ikernels/cuda \
    benchmarks/gpu/linear_attention_harness.cu -o /tmp/mk-la-harness 2>&1 | tail -5
  peaks=()
  nvidia-smi -L 2>/dev/null | grep -Eq 'H100|H200' && peaks=(--peak-tflops 67 989)
  [ -x /tmp/mk-la-harness ] && timeout 180 /tmp/mk-la-harness ${peaks[@]+"${peaks[@]}"} 2>&1 | tee "$out/linear_attention_harness.md"
  wait $attn_build
  tail -5 /tmp/mk-attn-harness.log
  [ -x /tmp/mk-attn-harness ] && timeout "${ATTN_HARNESS_TIMEOUT:-240}" /tmp/mk-attn-harness ${ATTN_HARNESS_REPS:-} 2>&1 |
    tee "$out/attention_harness.md"
else
  echo "no nvcc: skipped"
fi

log "gpu-tagged tests"
status=0
if [ "${SKIP_TESTS:-0}" = 1 ] || [ "${TESTS:-1}" = 0 ]; then
  echo "SKIP_TESTS or TESTS=0: tests skipped"
else
  console=.device/lib/junit-console.jar
  # every test class of the packed test jar, selected by name: package selection finds no test
  # classes inside the packed jars (seen 2026-12-02 with the console 1.14); the tag picks the GPU ones
  selectors=()
  for jar in .device/lib/*-tests.jar; do
    while read -r cls; do selectors+=(--select-class "$cls"); done < <(python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$jar" \
      | grep -E 'Test\.class$' | grep -v '\$' | sed 's/\.class$//; s#/#.#g')
  done
  timeout "${TEST_TIMEOUT:-300}" java -jar "$console" execute --class-path "$CP" "${selectors[@]}" \
    --include-tag gpu --details=tree 2>&1 | tee "$out/junit.txt"
  # (no --reports-dir: the XML reports need java.xml, which the packed runtime leaves out)
  status=${PIPESTATUS[0]}
fi

if [ "${TESTS_ONLY:-0}" = 1 ]; then
  cp hs_err_pid*.log "$out/" 2>/dev/null || true
  log "done (TESTS_ONLY; tests exit status $status)"
  exit $status
fi

log "GPU benchmarks (JMH)"
if java -cp "$CP" org.openjdk.jmh.Main -l 2>/dev/null | grep -q 'Gpu'; then
  # one JMH run per class, each with its own time limit and JSON, merged below: JMH writes its JSON
  # only at the end, so a run cut by its timeout loses that class alone. One fork per parameter
  # set (JVM start and CUDA context included, ~5 s each): one 1 s warm-up and two 1 s iterations
  # (GPU calls take milliseconds, so a 1 s iteration averages hundreds). BF16 first: 12 sets (the
  # double backward added: its [1,16,16384,128] calls take ~0.1-1 s, hence the longer limit).
  # GpuDenseBench: 18 ops (parameter sets) in this JVM (-f 0: a fork per set would cost ~5 s each),
  # 1 warm-up and 2 iterations of 0.5 s each: ~30-40 s.
  # GpuLaunchBench: 4 methods of microseconds, same settings as GpuDenseBench: ~10 s.
  # GpuGraphBench (R-MAT 1M edges, F = 64, with and without 200k-edge hub rows; sum and max,
  # forward and forward + backward): 8 sets in this JVM, ~30 s.
  # Limits sum to 420 s, the peers' to 150 s: the whole step stays under the device call's 600 s.
  for cls in ${JMH_CLASSES:-GpuAttentionBf16Bench:110 GpuAttentionBench:50 GpuLinearAttentionBench:120 GpuDenseBench:55 \
    GpuLaunchBench:30 GpuGraphBench:55}; do
    name=${cls%%:*}
    it=1s forks=1 params=()
    [ "$name" = GpuDenseBench ] || [ "$name" = GpuLaunchBench ] && it=500ms forks=0
    [ "$name" = GpuGraphBench ] && it=500ms forks=0 params=(-p reduce=sum,max)
    # linear attention in F32, TF32 (F32 data, Backend.setAllowTf32) and BF16 (the tensor-core
    # forms), 6 sets: ~120 s
    # (GPU_LA_FORM=default,recurrent: also the recurrent form (causal) and its state form (no mask), x3 for F32;
    # 12 sets: give it JMH_CLASSES=GpuLinearAttentionBench:240 alone)
    [ "$name" = GpuLinearAttentionBench ] && params=(-p dtype=F32,TF32,BF16 -p "form=${GPU_LA_FORM:-default}")
    # softmax attention in F32 (default) or also TF32 (GPU_ATTN_DTYPES=F32,TF32: 12 sets, ~100 s; give
    # it JMH_CLASSES=GpuAttentionBench:110 alone, the default budget has no room for it)
    # (GPU_ATTN_SIMT=default,x3: the F32 rows with the 3xTF32 Hopper kernels beside the default)
    [ "$name" = GpuAttentionBench ] && params=(-p "dtype=${GPU_ATTN_DTYPES:-F32}" -p "simt=${GPU_ATTN_SIMT:-default}")
    # the BF16 double backward's kernels (GPU_BF16_SECOND=DEFAULT,SM90: the m16n8k16 passes and the
    # Hopper ones side by side, 24 sets: give it JMH_CLASSES=GpuAttentionBf16Bench:220 alone)
    [ "$name" = GpuAttentionBf16Bench ] && params=(-p "tcSecond=${GPU_BF16_SECOND:-DEFAULT}")
    timeout "${cls##*:}" java -cp "$CP" org.openjdk.jmh.Main "$name" -f "$forks" -wi 1 -i 2 -w "$it" -r "$it" \
      ${params[@]+"${params[@]}"} -rf json -rff "$out/jmh-$name.json" 2>&1 | tail -20 | tee "$out/jmh-$name.txt"
  done
  merge_jmh
else
  echo "no GPU JMH benchmarks on the classpath" | tee "$out/jmh-gpu.txt"
fi

log "PyTorch peers"
if [ "${PEERS:-1}" = 0 ]; then
  echo "PEERS=0: skipped" | tee "$out/peers.txt"
else
  PYTHONUNBUFFERED=1 timeout 150 python3 benchmarks/gpu/peers.py --out "$out/peers.json" 2>&1 | tee "$out/peers.txt"
fi

log "softmax attention TFLOP/s"
python3 benchmarks/gpu/tflops.py --jmh "$out/jmh-gpu.json" --peers "$out/peers.json" 2>&1 | tee "$out/tflops.md"

log "every GPU JMH row beside its PyTorch peer (same shape, pass, dtype)"
python3 benchmarks/gpu/ratios.py --jmh "$out/jmh-gpu.json" --peers "$out/peers.json" 2>&1 | tee "$out/ratios.md"

log "memory-bound ops (GpuDenseBench vs PyTorch, % of the copy rate)"
python3 benchmarks/gpu/dense.py --jmh "$out/jmh-gpu.json" --peers "$out/peers.json" 2>&1 | tee "$out/dense.md"

cp hs_err_pid*.log "$out/" 2>/dev/null || true
log "done (tests exit status $status)"
exit $status
