# The native tests, run by ctest (and by `mvn verify`: java/pom.xml runs ctest in this build
# folder during the test phase). Included by CMakeLists.txt when MK_BUILD_TESTS is ON.
#   vec_math.avx2, vec_math.avx512    tests/native/vec_math_test.cpp: mk/vec_math.h against long
#                                     double libm (the AVX-512 one skips on a CPU without it)
#   vec_math.vectorised.avx2|avx512   GCC's -fopt-info report of those very builds: the 12 loops
#                                     over vec_math vectorise at full width (32 / 64 bytes)
#   emu.*                             tests/cuda-emu: the CUDA attention, optimizer-step (emu.meta.*),
#                                     graph (emu.graph), linear attention (emu.linear_attention) and
#                                     dense (emu.dense: reductions, softmax,
#                                     elementwise) kernels run on the host by the emulator,
#                                     against the CPU twin (the library's own objects)
#   emu.harness.*                     the standalone GPU harnesses (benchmarks/gpu/*_harness.cu) on
#                                     the emulator, their own checks deciding (label long: run them
#                                     before a GPU session, tests/cuda-emu/run.sh harness)
#   (no test) mk_gpuemu_libs          tests/gpu-emu: the emulated CUDA device the gpu-tagged Java tests
#                                     run on without a GPU (tests/gpu-emu/run.sh; about 15 minutes on
#                                     2 cores, so not part of mvn verify)
#   native.runtime                    tests/native/runtime_test.cpp: the device and host caching
#                                     allocators, CUDA streams and events (the stream-aware device
#                                     cache) and cuBLAS behind the C ABI, on a fake CUDA table
#                                     and a fake libcublas (no GPU)
#   native.random                     tests/native/random_test.cpp: Tensor.rand / randn's generator
#                                     (mk/random.h) and CPU kernel, bitwise against the scalar code
# Every test executable is built with the library's flag lists (MK_BASE_FLAGS, MK_AVX512_FLAGS)
# and is left out of the default target, so `cmake --build` (mvn package) does not build them:
# the fixture tests native.build.vec_math, native.build.emu and native.build.harness build them
# (targets mk_vec_math_tests, mk_emu_tests, mk_harness_tests; mk_native_tests is all of them) before
# the tests that need them. Labels: native (all), vec_math, emu, harness, and long: emulator runs
# left out of mvn verify for time (`ctest -LE long` is what mvn runs; `ctest -L long` runs the rest
# by hand, building what they need). What is long, and why: the CI run of 2026-12-07 took 1016 s
# on the 2-core VM, 375 s of it ctest, close to the 20-minute guideline; the harnesses' emulator
# runs (110 s of CPU plus their build) check the GPU-session tools rather than the library, whose
# kernels the other emu.* tests check, and three of the six thread orders of the attention run
# repeat what the other three cover (forward, shuffled with A100 and with 48 KB limits).
enable_testing()

set(MK_TESTS "${MK_ROOT}/tests")
add_custom_target(mk_vec_math_tests)
add_custom_target(mk_emu_tests)
add_custom_target(mk_runtime_tests)
add_custom_target(mk_harness_tests)
add_custom_target(mk_native_tests DEPENDS mk_vec_math_tests mk_emu_tests mk_runtime_tests mk_harness_tests)

# ---- vec_math: accuracy and vectorisation, per ISA ------------------------------------------
foreach(isa avx2 avx512)
  set(exe vec_math_test_${isa})
  set(report "${CMAKE_CURRENT_BINARY_DIR}/${exe}.opt-info.txt")
  add_executable(${exe} EXCLUDE_FROM_ALL "${MK_TESTS}/native/vec_math_test.cpp")
  target_include_directories(${exe} PRIVATE "${MK_ROOT}/kernels/include" "${MK_ROOT}/native/include")
  target_compile_options(${exe} PRIVATE ${MK_BASE_FLAGS})
  if(isa STREQUAL avx512)
    target_compile_options(${exe} PRIVATE ${MK_AVX512_FLAGS})
    target_compile_definitions(${exe} PRIVATE MK_ISA_AVX512=1)
  endif()
  target_link_libraries(${exe} PRIVATE OpenMP::OpenMP_CXX)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # the vectorisation report of this very compile; GCC appends to the file, so a launcher
    # removes it before each compile
    target_compile_options(${exe} PRIVATE "-fopt-info-vec-optimized=${report}")
    set_target_properties(${exe} PROPERTIES CXX_COMPILER_LAUNCHER "bash;${MK_TESTS}/native/fresh_file.sh;${report}")
  endif()
  add_dependencies(mk_vec_math_tests ${exe})

  if(isa STREQUAL avx512)
    add_test(NAME vec_math.${isa} COMMAND bash "${MK_TESTS}/native/cpu_has.sh" avx512f $<TARGET_FILE:${exe}>)
    set_tests_properties(vec_math.${isa} PROPERTIES SKIP_RETURN_CODE 77)
    set(width 64)
  else()
    add_test(NAME vec_math.${isa} COMMAND $<TARGET_FILE:${exe}>)
    set(width 32)
  endif()
  add_test(NAME vec_math.vectorised.${isa}
    COMMAND ${CMAKE_COMMAND} -DREPORT=${report} -DSOURCE=vec_math_test.cpp -DWIDTH=${width} -DLOOPS=12
            -P "${MK_TESTS}/native/check_vectorised.cmake")
  set_tests_properties(vec_math.${isa} vec_math.vectorised.${isa} PROPERTIES LABELS "native;vec_math" TIMEOUT 120
    FIXTURES_REQUIRED mk_build_vec_math ENVIRONMENT OMP_NUM_THREADS=1)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")  # -fopt-info is GCC's
    set_tests_properties(vec_math.vectorised.${isa} PROPERTIES DISABLED ON)
  endif()
endforeach()

# ---- the CUDA emulator -----------------------------------------------------------------------
# attention_emu_test.cpp includes kernels/cuda/attention/*.cu as host C++ (cuda_runtime.h is the
# emulator) and links the CPU twin: the library's own mk_cpu and mk_cpu_avx512 objects, through
# a static archive so that only the attention and ISA objects are pulled in (AVX2 first).
add_library(mk_cpu_twin STATIC EXCLUDE_FROM_ALL $<TARGET_OBJECTS:mk_cpu> ${MK_AVX512_OBJECTS})
set_target_properties(mk_cpu_twin PROPERTIES LINKER_LANGUAGE CXX)
# The emulator test's own flags: it compiles the CUDA sources as host code, not shipped CPU code,
# so it takes none of MK_BASE_FLAGS' ISA flags beyond F16C, and FMA where the building machine has
# it (std::fma, the emulated MMAs' every product, becomes one instruction instead of a libm call:
# 20 -> 16.5 s for emu.shuffled.H100), with -ffp-contract=off so that the emulated kernels' a * b + c
# stay two roundings as without it. No -g (it doubled the compile time, 21 -> 41 s for
# attention_emu_test): configure with -DMK_EMU_EXTRA_FLAGS=-g to debug a failure.
set(MK_EMU_FLAGS -O1 -mf16c -ffp-contract=off -Wall -Wno-unknown-pragmas -Wno-unused-function)
if(EXISTS /proc/cpuinfo)
  file(STRINGS /proc/cpuinfo mk_cpu_flags REGEX "^flags" LIMIT_COUNT 1)
  if(mk_cpu_flags MATCHES " fma( |$)")
    list(APPEND MK_EMU_FLAGS -mfma)
  endif()
endif()
set(MK_EMU_EXTRA_FLAGS "" CACHE STRING "extra compile flags of the CUDA emulator tests (e.g. -g)")
list(APPEND MK_EMU_FLAGS ${MK_EMU_EXTRA_FLAGS})
# mk_emu_executable(NAME [COMPILE_OPTIONS...]): tests/cuda-emu/NAME.cpp, which includes a
# kernels/cuda file as host C++, built with the emulator's flags and linked to the CPU twin; left
# out of the default target (the fixture native.build.emu builds it; native.build.harness where
# mk_emu_group is set to mk_harness_tests around the call).
function(mk_emu_executable name)
  add_executable(${name} EXCLUDE_FROM_ALL "${MK_TESTS}/cuda-emu/${name}.cpp")
  target_include_directories(${name} PRIVATE "${MK_TESTS}/cuda-emu" "${MK_ROOT}/kernels/cuda"
    "${MK_ROOT}/kernels/include" "${MK_ROOT}/native/include")
  target_compile_options(${name} PRIVATE ${MK_EMU_FLAGS} ${ARGN})
  target_link_libraries(${name} PRIVATE mk_cpu_twin OpenMP::OpenMP_CXX)
  if(mk_emu_group)
    add_dependencies(${mk_emu_group} ${name})
  else()
    add_dependencies(mk_emu_tests ${name})
  endif()
endfunction()
# mk_emu_test(TEST EXE [ARGS...]): a ctest run of an emulator executable, one OpenMP thread,
# labels native and emu, 300 s at most (a lost barrier can hang the fibers).
function(mk_emu_test test exe)
  add_test(NAME ${test} COMMAND ${exe} ${ARGN})
  set_tests_properties(${test} PROPERTIES LABELS "native;emu" TIMEOUT 300 FIXTURES_REQUIRED mk_build_emu
    ENVIRONMENT OMP_NUM_THREADS=1)
endfunction()
mk_emu_executable(attention_emu_test)
# tests/cuda-emu/graph_emu_test.cpp: kernels/cuda/graph.cu against the CPU twin (bitwise for spmm)
mk_emu_executable(graph_emu_test)

# The fused optimizer steps (kernels/cuda/meta.cu) against their CPU twin, the same way, in forward
# and shuffled thread order (each run also replays the backward in forward order and wants the same
# bits). Measured 2026-12-04 on the 2-core VM: 15 s per run alone, 56-61 s inside ctest -j2 beside
# the attention runs and another developer's builds.
mk_emu_executable(meta_emu_test)
foreach(order 0 2)
  mk_emu_test(emu.meta.order${order} meta_emu_test ${order})
endforeach()

# The emulator runs: name | arguments (order: 0 forward, 1 reverse, 2 shuffled threads; limits:
# 0 H100, 1 A100, 2 sm_86, 3 48 KB) | extra labels ("long": left out of mvn verify; since
# 2026-12-07 reverse.H100, shuffled.H100 and shuffled.sm86, about 40 s of CPU: see the top).
# Measured 2026-12-04 on the 2-core development VM, shared with another developer's builds
# (hence the spread), one thread per run: tiles 0.0 s, forward.H100 21-45 s, reverse.H100
# 21-49 s, shuffled.H100 22-42 s, shuffled.A100 23-43 s, shuffled.sm86 23-45 s, shuffled.48K
# 33-54 s; the test build 8-16 s, vec_math 2-5 s per ISA. The whole `ctest -j2`: 85-136 s, of
# full `mvn -B verify` runs of 3 min 12 s to 6 min 27 s (nvcc build included). That fits CI's
# budget (2 cores, the whole of .ci/run well under 20 minutes), so every run is in mvn verify
# and none is labelled long. 2026-12-05: the v2 / v2k32 forward runs and two shapes for them add
# about a third (forward.H100 alone 47-50 s -> 63-69 s on the loaded VM, A/B interleaved).
# 2026-12-05: the v2 backward checks (three runs per 16-bit case) and one more shape add about
# half again (forward.H100 alone 32 -> 50 s of CPU, user + sys, A/B interleaved; inside a full
# `mvn verify` on the VM loaded by other builds 124-158 s per attention run, under the 300 s limit).
# 2026-12-05, later: the fibers switch without swapcontext (cuda_runtime.h) and std::fma is one
# instruction: shuffled.H100 alone 78 -> 16.5 s wall; every emu.* run of `ctest -L emu -j2`
# together 257 s of CPU (131 s wall), which had been about 1,300 s; the times above are the old ones.
set(MK_EMU_RUNS
  "tiles|tiles|"
  "forward.H100|0 0|"
  "reverse.H100|1 0|long"
  "shuffled.H100|2 0|long"
  "shuffled.A100|2 1|"
  "shuffled.sm86|2 2|long"
  "shuffled.48K|2 3|")
foreach(run ${MK_EMU_RUNS})
  string(REPLACE "|" ";" run "${run}")
  list(GET run 0 name)
  list(GET run 1 args)
  list(GET run 2 labels)
  separate_arguments(args)
  add_test(NAME emu.${name} COMMAND attention_emu_test ${args})
  # a lost barrier can hang the fibers: stop long before CI's limit
  set(labels native emu ${labels})
  set_tests_properties(emu.${name} PROPERTIES LABELS "${labels}" TIMEOUT 300
    FIXTURES_REQUIRED mk_build_emu ENVIRONMENT OMP_NUM_THREADS=1)
endforeach()

# tests/cuda-emu/attention_simt2_emu_test.cpp: the SIMT v2 attention (kernels/cuda/attention/simt2.cu)
# against the CPU twin, F32 and F64, forward and backward, bitwise reruns and the one-place
# dispatch; every thread order once: forward with H100 limits, reverse with 48 KB (v2 tiles that do
# not fit: unsupported, v1 runs), shuffled with A100. Measured 2026-12-05 on the 2-core VM loaded by
# two other helpers' builds: 20-40 s per run, one thread.
mk_emu_executable(attention_simt2_emu_test)
foreach(run "H100|0 0" "48K|1 3" "A100|2 1")
  string(REPLACE "|" ";" run "${run}")
  list(GET run 0 name)
  list(GET run 1 args)
  separate_arguments(args)
  mk_emu_test(emu.attention_simt2.${name} attention_simt2_emu_test ${args})
endforeach()

# The graph kernels in the emulator: every lane order in one run (6-12 s on the 2-core VM).
mk_emu_test(emu.graph graph_emu_test)

# The dense kernels (kernels/cuda/dense.cu: reductions, softmax, elementwise) in the emulator,
# with lowered plan thresholds so small inputs take the split and multi-block paths; each run
# checks every thread order for the same bits.
mk_emu_executable(dense_emu_test)
mk_emu_test(emu.dense dense_emu_test)

# tests/cuda-emu/gat_emu_test.cpp: kernels/cuda/gat.cu (edge softmax, fused GAT aggregation) against
# the CPU twin (bitwise) and a float64 loop, every lane order in one run.
mk_emu_executable(gat_emu_test)
mk_emu_test(emu.gat gat_emu_test)

# tests/cuda-emu/gat_backward_emu_test.cpp: the fused GAT backward (kernels/cuda/gat.cu) against the
# CPU twin (bitwise) and a float64 loop, every lane order in one run; the twin across thread counts.
mk_emu_executable(gat_backward_emu_test)
mk_emu_test(emu.gat_backward gat_backward_emu_test)

# ---- the native runtime's policies without a GPU ------------------------------------------------
# tests/native/runtime_test.cpp: the device caching allocator on a fake CUDA table (host memory),
# the host allocator, and cuBLAS behind the C ABI through tests/native/fake_cublas.cpp (a stand-in
# libcublas with cuBLAS's column-major semantics). Links the library's own objects.
add_library(mk_native_twin STATIC EXCLUDE_FROM_ALL $<TARGET_OBJECTS:mk_native>)
set_target_properties(mk_native_twin PROPERTIES LINKER_LANGUAGE CXX)
add_library(fake_cublas SHARED EXCLUDE_FROM_ALL "${MK_TESTS}/native/fake_cublas.cpp")
add_executable(runtime_test EXCLUDE_FROM_ALL "${MK_TESTS}/native/runtime_test.cpp")
target_include_directories(runtime_test PRIVATE "${MK_ROOT}/kernels/include" "${MK_ROOT}/native/include")
target_compile_options(runtime_test PRIVATE -O1 -g -Wall)
target_link_libraries(runtime_test PRIVATE mk_native_twin mk_cpu_twin OpenMP::OpenMP_CXX ${CMAKE_DL_LIBS})
add_dependencies(mk_runtime_tests runtime_test fake_cublas)
add_test(NAME native.runtime COMMAND runtime_test $<TARGET_FILE:fake_cublas>)
set_tests_properties(native.runtime PROPERTIES LABELS "native;runtime" TIMEOUT 120 FIXTURES_REQUIRED mk_build_runtime)

# tests/native/random_test.cpp: the random numbers of Tensor.rand / randn (mk/random.h, kernels/cpu/
# random.cpp): ln and cos against long double libm, the kernel at each ISA level and thread count
# against the scalar code bitwise. Without FMA contraction, as the library builds random.cpp.
add_executable(random_test EXCLUDE_FROM_ALL "${MK_TESTS}/native/random_test.cpp")
target_include_directories(random_test PRIVATE "${MK_ROOT}/kernels/include" "${MK_ROOT}/native/include")
target_compile_options(random_test PRIVATE ${MK_BASE_FLAGS} -ffp-contract=off)
target_link_libraries(random_test PRIVATE mk_cpu_twin OpenMP::OpenMP_CXX)
add_dependencies(mk_runtime_tests random_test)
add_test(NAME native.random COMMAND random_test)
set_tests_properties(native.random PROPERTIES LABELS "native;runtime" TIMEOUT 120 FIXTURES_REQUIRED mk_build_runtime)

# ---- building them: the fixtures the tests above require -------------------------------------
# One build at a time in this tree (RESOURCE_LOCK); a test starts as soon as its own is done.
# PROCESSORS: vec_math compiles two files at once, the emulator test one (its CPU twin objects
# are the library's, already built by mvn).
foreach(part vec_math emu runtime harness)
  add_test(NAME native.build.${part}
    COMMAND ${CMAKE_COMMAND} --build "${CMAKE_BINARY_DIR}" --target mk_${part}_tests --parallel 2)
  set_tests_properties(native.build.${part} PROPERTIES FIXTURES_SETUP mk_build_${part}
    RESOURCE_LOCK mk_build LABELS "native;${part}" TIMEOUT 900)
endforeach()
set_tests_properties(native.build.vec_math PROPERTIES PROCESSORS 2)
set_tests_properties(native.build.harness PROPERTIES LABELS "native;emu;harness;long")

# ---- meta, batched: per-example norms and ES (kernels/cuda/meta_per_example.cu, meta_es.cu) ---
# Against the CPU twins in forward and shuffled thread order; the ES noise and update bitwise
# (both sides without FMA contraction, as the library builds them).
mk_emu_executable(meta_batched_emu_test -ffp-contract=off)
foreach(order 0 2)
  mk_emu_test(emu.meta_batched.order${order} meta_batched_emu_test ${order})
endforeach()

# ---- linear attention (kernels/cuda/linear_attention.cu): the chunk-parallel form (state chunks
# of 64 rows, and longer ones under a lowered scratch budget) and the sequential form, against a
# float64 loop and the CPU twin, bitwise across thread orders; momentum bitwise. BF16 / F16: the
# tensor-core form, the SIMT forms on 16-bit data and the CPU twin within twice a naive 16-bit
# composition's error; TF32 (F32 with MK_LINEAR_MASK_TF32) within twice a naive TF32 composition's;
# the unmasked plan's long state chunks (23-30 s per run on the 2-core VM, 2026-12-05; 45-50 s with
# the TF32 cases, 90 s under the load of a full verify).
mk_emu_executable(linear_attention_emu_test)
mk_emu_test(emu.linear_attention linear_attention_emu_test)

# tests/cuda-emu/linear_emu_test.cpp: kernels/cuda/linear.cu (the fused linear layer's epilogue and
# activation gradient) against the CPU twin and a long-double loop, every thread order in one run.
mk_emu_executable(linear_emu_test)
mk_emu_test(emu.linear linear_emu_test)

# tests/cuda-emu/infonce_emu_test.cpp: kernels/cuda/infonce.cu (the fused InfoNCE rows, forward and
# backward) against the CPU twin and a long-double loop, with and without mask and log-weights, the
# edge rows (no positive, NaN), each call twice for the same bits, every thread order in one run.
mk_emu_executable(infonce_emu_test)
mk_emu_test(emu.infonce infonce_emu_test)

# tests/cuda-emu/copy_async_emu_test.cpp: the emulated ldmatrix (x1/x2/x4, .trans, through a
# swizzled layout) and cp.async (commit groups, wait_group, zero fill) of kernels/cuda/copy_async.cuh
# against the MMA fragment layout of kernels/cuda/mma.cuh, every thread order in one run.
mk_emu_executable(copy_async_emu_test)
mk_emu_test(emu.copy_async copy_async_emu_test)

# tests/cuda-emu/attention_dd_emu_test.cpp: the 16-bit tensor-core double backward
# (kernels/cuda/attention/tensor_core_dd.cu) in BF16 and F16 against a float64 composition (itself
# checked against the CPU twin in F64), within twice a naive 16-bit composition's error, bitwise
# the same on a second run; shuffled threads with H100 limits, forward order with sm_86 limits
# (where the 128-wide tiles do not fit and the call must answer unsupported). 2026-12-05: every case
# in TF32 too (F32 inputs on m16n8k8 MMAs; the F32 entries on the smaller cases): shuffled.H100
# alone 34 -> 58 s of CPU without the entry checks, 61 s with them (user + sys, A/B
# interleaved, two rounds, on the 2-core VM loaded by other builds; 62-82 s wall), 118 s inside a
# full `mvn verify`.
mk_emu_executable(attention_dd_emu_test)
mk_emu_test(emu.attention_dd.shuffled.H100 attention_dd_emu_test 2 0)
mk_emu_test(emu.attention_dd.forward.sm86 attention_dd_emu_test 0 2)

# ---- Hopper (sm_90a) forward in the emulator (kernels/cuda/attention/tensor_core_sm90.cu) ---------
# wgmma_emu_test: the emulated wgmma (descriptors, 128-byte swizzle, register A, the accumulator
# layout), TMA and mbarriers of tests/cuda-emu/sm90_emu.h against plain products in double.
# emu.sm90.*: the Hopper forward against the float64 reference and the naive 16-bit composition
# (attention_emu_test's criterion), bitwise reruns and guard words, in forward and shuffled order.
# Measured 2026-12-05 on the 2-core VM: emu.wgmma 0.1-0.3 s; emu.sm90.order0/2 53-69 s alone, about
# 150 s each inside a full `mvn verify` beside other builds (each case also runs the v1/v2 checks).
mk_emu_executable(wgmma_emu_test)
mk_emu_test(emu.wgmma wgmma_emu_test 2)
foreach(order 0 2)
  mk_emu_test(emu.sm90.order${order} attention_emu_test sm90 ${order})
endforeach()
# emu.sm90.bwd: the Hopper backward (kernels/cuda/attention/tensor_core_sm90_backward.cu) on four
# shapes (causal, GQA, -inf bias, key lengths with NaN padding keys, D = 64 and 128) in BF16 and
# F16, shuffled threads: the same criterion on dQ, dK, dV, dS, bitwise reruns through partial
# requests, guard words. Measured 2026-12-05 on the 2-core VM (loaded by other builds): 16-19 s of
# CPU, 27-52 s wall (forward and shuffled order; each case also runs the v1 forward and backward).
mk_emu_test(emu.sm90.bwd attention_emu_test sm90bwd 2)
# emu.sm90.dd: the Hopper double backward (kernels/cuda/attention/tensor_core_sm90_dd.cu) selected, on
# eight shapes for it (GQA, causal with Nq < Nk and Nq > Nk, key lengths straddling tiles, rows and a
# batch without keys, absent cotangents, a broadcast bias with ĝb and b', −inf bias entries, D = 64
# and 128) in BF16 (three in F16 too) and one it refuses (D != Dv), shuffled threads: attention_dd_emu_test's
# criterion on q', k', v', dO', b' and the JVP's tO,
# tlse, bitwise reruns, guard words, the kernels called alone equal to the dispatcher's bits.
# Measured 2026-12-06 on the 2-core VM: about 50 s (each case also runs the CPU twins).
mk_emu_test(emu.sm90.dd attention_dd_emu_test sm90 2)
# emu.sm90.f32: the F32 forward on Hopper tensor cores, 3xTF32 (kernels/cuda/attention/
# tensor_core_sm90_f32.cu; TF32 wgmmas from descriptors and registers, 32-bit TMA), on five shapes
# (Nq not a multiple of 64, causal with GQA, a bias with key lengths over NaN padding keys, rows and
# a batch without keys, -inf bias entries; D = 64 and 128), shuffled threads: out and lse within 1e-5
# of float64 (one TF32 product per MMA is near 1e-3: a dropped small term fails it), the kernel's own
# status, the dispatcher's x3 selection giving the same bits, bitwise reruns, guard words; the SIMT
# v2 and TF32 errors printed beside it. Measured 2026-12-06 on the 2-core VM: about 3 s.
mk_emu_test(emu.sm90.f32 attention_emu_test sm90f32 2)
# emu.sm90.f32.bwd: its backward (kernels/cuda/attention/tensor_core_sm90_f32_backward.cu: D
# preprocess, dQ pass, dK/dV pass; TF32 wgmmas from shared memory and from register fragments
# gathered from the split tiles) on seven shapes (GQA, causal with Nq < Nk and Nq > Nk, a bias with
# its full dS, a per-batch bias, key lengths over NaN padding keys, rows and a batch without keys,
# -inf bias entries; D = 64 and 128), shuffled threads: dQ, dK, dV, dS within 1e-5 of float64 (a
# dropped small term fails it), the entry's status, the dispatcher's x3 selection, reruns and each
# pass (and the bias gradient) requested alone giving the same bits, guard words; the one-term TF32
# kernels within 2x the m16n8k8 TF32 backward's error, the dispatcher's bits. Measured 2026-12-06 on
# the 2-core VM: about 25 s.
mk_emu_test(emu.sm90.f32.bwd attention_emu_test sm90f32bwd 2)

# ---- the standalone GPU harnesses (benchmarks/gpu/*_harness.cu) still compile ---------------------
# They run only on a lent GPU (benchmarks/gpu/check.sh), where a compile error costs device time, and
# they include the kernel files whole, so a merge can break them without breaking the library (two
# helpers' identical fill32 did, 2026-12-05). The nvcc front end only (-cuda: no ptxas), with the
# flags check.sh builds them with, and cicc at -O0: parsing, template instantiation and device
# code generation, which is where a harness breaks (a planted type error in the harness still fails),
# without the optimiser (12.7 s against 123 s for the attention harness, 4.5 s for the linear
# attention one, 2026-12-05; at -O3 it had hit 300 s inside a loaded ctest -j2).
if(CMAKE_CUDA_COMPILER AND NOT MK_DISABLE_CUDA)
  set(mk_harness_flags -std=c++17 --expt-relaxed-constexpr -I${MK_ROOT}/kernels/include -I${MK_ROOT}/native/include
                       -I${MK_ROOT}/kernels/cuda -Xcicc -O0)
  add_test(NAME harness.compile.attention
    COMMAND ${CMAKE_CUDA_COMPILER} ${mk_harness_flags} -gencode arch=compute_90a,code=compute_90a -DMK_CUDA_SM90A=1
            ${MK_ROOT}/benchmarks/gpu/attention_harness.cu -cuda -o ${CMAKE_BINARY_DIR}/attention_harness.ii)
  add_test(NAME harness.compile.linear_attention
    COMMAND ${CMAKE_CUDA_COMPILER} ${mk_harness_flags} -gencode arch=compute_90,code=compute_90
            ${MK_ROOT}/benchmarks/gpu/linear_attention_harness.cu -cuda -o ${CMAKE_BINARY_DIR}/linear_attention_harness.ii)
  set_tests_properties(harness.compile.attention harness.compile.linear_attention PROPERTIES LABELS "cuda;harness" TIMEOUT 300)
endif()

# ---- the standalone GPU harnesses on the emulator -------------------------------------------------
# tests/cuda-emu/*_harness_emu.cpp: benchmarks/gpu/attention_harness.cu and linear_attention_harness.cu
# as host C++ on the emulator, so that their references, checks and tables are known to work before
# a GPU session runs them (benchmarks/gpu/check.sh step 1b); each exits 1 when one of its checks fails.
# (-Wno-comment: the nvcc command lines in the harness headers end in a backslash; MK_CUDA_SM90A as
# in the attention harness's nvcc command, though the emulator builds the Hopper kernels regardless)
set(mk_emu_group mk_harness_tests)
mk_emu_executable(attention_harness_emu -Wno-comment -DMK_CUDA_SM90A=1)
mk_emu_executable(linear_attention_harness_emu -Wno-comment)
unset(mk_emu_group)
# Their tiny modes: every row of their tables, on smaller shapes than small (the attention harness's
# F16 rows at one shape and mask). Measured 2026-12-06 on the quiet 2-core VM, one thread:
# emu.harness.attention 82 s (95 s with F16 at both shapes and masks; 50 s on 2026-12-05, before the
# x3, TF32-on-Hopper and Hopper double-backward rows), emu.harness.linear_attention 26 s in ctest -j2.
# The attention harness's small mode is emu.harness.attention.small,
# label long (~2-4 min); the linear one's --small (64 heads of 4096 rows) would take hours here.
mk_emu_test(emu.harness.attention attention_harness_emu tiny)
mk_emu_test(emu.harness.linear_attention linear_attention_harness_emu --tiny)
mk_emu_test(emu.harness.attention.small attention_harness_emu small)
# All three labelled long since 2026-12-07 (see the top): 91 s and 19 s of the CI run's ctest that
# day, plus ~40 s of building them. tests/cuda-emu/run.sh harness runs them.
set_tests_properties(emu.harness.attention emu.harness.linear_attention emu.harness.attention.small PROPERTIES
  LABELS "native;emu;harness;long" FIXTURES_REQUIRED mk_build_harness)
set_tests_properties(emu.harness.attention.small PROPERTIES TIMEOUT 900)

# tests/cuda-emu/attention_simt2_dd_emu_test.cpp: the SIMT v2 stats, query and key passes of the
# double backward (kernels/cuda/attention/simt2_dd.cu) through the dispatch against the CPU twin,
# F32 and F64, the v2 stats against v1's, partial requests, bitwise reruns; H100 limits forward
# order, A100 limits shuffled threads.
mk_emu_executable(attention_simt2_dd_emu_test)
mk_emu_test(emu.attention_simt2_dd.H100 attention_simt2_dd_emu_test 0 0)
mk_emu_test(emu.attention_simt2_dd.A100 attention_simt2_dd_emu_test 2 1)

# ---- the emulated CUDA device under the Java stack (tests/gpu-emu, run by tests/gpu-emu/run.sh) ---
# Three libraries in gpu-emu/lib of this build folder, none in the default target: the library
# libmetakernels_cuda.so built from kernels/cuda as host C++ on the emulator (one generated unit per
# .cu file: tests/gpu-emu/emu_cuda.h, then the file; plus tests/gpu-emu/emu_library.cpp with the
# kernel table), a fake libcudart.so.13 (host memory, checked copies) that it and the bytedeco
# presets share, and an empty libcuda.so.1. gpu-emu/cublas holds the optional fake cuBLAS
# (tests/native/fake_cublas.cpp as libcublas.so.13, and an empty libcublasLt.so.13). They live in a
# subfolder: the javacpp plugin copies libraries from this folder's top only, so none can reach
# target/classes or a jar.
find_path(MK_CUDART_INCLUDE cuda_runtime_api.h HINTS ${CMAKE_CUDA_TOOLKIT_INCLUDE_DIRECTORIES} /usr/local/cuda/include)
if(MK_CUDART_INCLUDE)
  set(mk_gpuemu "${MK_TESTS}/gpu-emu")
  set(mk_gpuemu_lib "${CMAKE_BINARY_DIR}/gpu-emu/lib")
  set(mk_gpuemu_blas "${CMAKE_BINARY_DIR}/gpu-emu/cublas")
  # mk_gpuemu_fake(TARGET FILE_NAME OUT_DIR MAP SOURCE): a shared library named FILE_NAME (its soname
  # too) with the version node of MAP, which the presets' JNI libraries require of the real one
  function(mk_gpuemu_fake target file dir map src)
    add_library(${target} SHARED EXCLUDE_FROM_ALL "${src}")
    string(REGEX REPLACE "^lib([^.]+)\\.so\\..*$" "\\1" base "${file}")
    string(REGEX REPLACE "^lib[^.]+(\\.so\\..*)$" "\\1" suffix "${file}")
    set_target_properties(${target} PROPERTIES OUTPUT_NAME "${base}" SUFFIX "${suffix}" LIBRARY_OUTPUT_DIRECTORY "${dir}")
    target_compile_options(${target} PRIVATE -O1 -Wall)
    target_link_options(${target} PRIVATE "-Wl,--version-script=${mk_gpuemu}/${map}")
  endfunction()
  mk_gpuemu_fake(mk_gpuemu_cudart libcudart.so.13 "${mk_gpuemu_lib}" cudart.map "${mk_gpuemu}/fake_cudart.cpp")
  target_include_directories(mk_gpuemu_cudart PRIVATE "${MK_CUDART_INCLUDE}")
  mk_gpuemu_fake(mk_gpuemu_driver libcuda.so.1 "${mk_gpuemu_lib}" cuda.map "${mk_gpuemu}/fake_cuda_driver.cpp")
  mk_gpuemu_fake(mk_gpuemu_cublas libcublas.so.13 "${mk_gpuemu_blas}" cublas.map "${MK_TESTS}/native/fake_cublas.cpp")
  mk_gpuemu_fake(mk_gpuemu_cublaslt libcublasLt.so.13 "${mk_gpuemu_blas}" cublaslt.map "${mk_gpuemu}/fake_cublaslt.cpp")

  file(GLOB mk_gpuemu_cu CONFIGURE_DEPENDS "${MK_ROOT}/kernels/cuda/*.cu" "${MK_ROOT}/kernels/cuda/*/*.cu")
  list(REMOVE_ITEM mk_gpuemu_cu "${MK_ROOT}/kernels/cuda/table.cu")  # (in emu_library.cpp)
  set(mk_gpuemu_units "${mk_gpuemu}/emu_library.cpp")
  foreach(cu ${mk_gpuemu_cu})
    file(RELATIVE_PATH rel "${MK_ROOT}/kernels/cuda" "${cu}")
    string(REPLACE "/" "_" unit "${rel}")
    set(unit "${CMAKE_BINARY_DIR}/gpu-emu/src/${unit}.cpp")
    file(GENERATE OUTPUT "${unit}" CONTENT "// generated by cmake/tests.cmake: ${rel} on the host emulator\n#include \"emu_cuda.h\"\n#include \"${cu}\"\n")
    list(APPEND mk_gpuemu_units "${unit}")
  endforeach()
  add_library(mk_gpuemu_cuda SHARED EXCLUDE_FROM_ALL ${mk_gpuemu_units})
  set_target_properties(mk_gpuemu_cuda PROPERTIES OUTPUT_NAME metakernels_cuda LIBRARY_OUTPUT_DIRECTORY "${mk_gpuemu_lib}")
  target_include_directories(mk_gpuemu_cuda PRIVATE "${mk_gpuemu}" "${MK_TESTS}/cuda-emu" "${MK_ROOT}/kernels/cuda"
    "${MK_ROOT}/kernels/include" "${MK_ROOT}/native/include")
  # the real library's definitions (CMakeLists.txt): the dispatch may take the sm_90a paths
  target_compile_definitions(mk_gpuemu_cuda PRIVATE MK_HAVE_CUDA=1 MK_CUDA_SM90A=1)
  target_compile_options(mk_gpuemu_cuda PRIVATE ${MK_EMU_FLAGS})
  target_link_libraries(mk_gpuemu_cuda PRIVATE mk_gpuemu_cudart)
  target_link_options(mk_gpuemu_cuda PRIVATE -static-libstdc++ -static-libgcc -Wl,--exclude-libs,ALL -Wl,--no-undefined
    "-Wl,--version-script=${mk_gpuemu}/emulated_cuda.map")
  add_custom_target(mk_gpuemu_libs DEPENDS mk_gpuemu_cuda mk_gpuemu_cudart mk_gpuemu_driver mk_gpuemu_cublas mk_gpuemu_cublaslt)
endif()

# ---- scheduling: the longest tests first ------------------------------------------------------------
# ctest -j2 starts ready tests by COST, highest first, until a build folder has its own timings
# (Testing/Temporary/CTestCostData.txt, written by each run). A clean clone (CI) has none, so the
# declaration order ruled and long emulator runs started last, one core idle at the end. Seconds
# each took in the CI run of 2026-12-06 (ctest -j2 on the 2-core VM, 698 s of tests in ~7 min).
foreach(mk_cost IN ITEMS emu.harness.attention:124 emu.sm90.dd:70 emu.linear_attention:39
        harness.compile.attention:28 emu.harness.linear_attention:27 emu.sm90.f32.bwd:27 emu.sm90.order2:24
        emu.sm90.order0:20 emu.shuffled.A100:17 emu.shuffled.H100:17 emu.attention_dd.shuffled.H100:17
        emu.forward.H100:16 emu.reverse.H100:15 emu.sm90.bwd:15 emu.shuffled.sm86:15 emu.shuffled.48K:11)
  string(REPLACE ":" ";" mk_cost "${mk_cost}")
  list(GET mk_cost 0 mk_cost_test)
  list(GET mk_cost 1 mk_cost_seconds)
  if(TEST ${mk_cost_test})
    set_tests_properties(${mk_cost_test} PROPERTIES COST ${mk_cost_seconds})
  endif()
endforeach()
