# Counts the loops of SOURCE that GCC's -fopt-info-vec-optimized report (REPORT, written while
# the test executable compiled, see cmake/tests.cmake) vectorised at WIDTH-byte vectors; fails
# below LOOPS. For vec_math_test.cpp: the six run_vec loops, float and double, at full width.
#   cmake -DREPORT=FILE -DSOURCE=vec_math_test.cpp -DWIDTH=32 -DLOOPS=12 -P check_vectorised.cmake
if(NOT EXISTS "${REPORT}")
  message(FATAL_ERROR "no vectorisation report ${REPORT}: rebuild the test executable (touch its source)")
endif()
file(STRINGS "${REPORT}" full REGEX "${SOURCE}:.*loop vectorized using ${WIDTH} byte vectors")
list(LENGTH full n)
if(n LESS LOOPS)
  message("the report's lines for ${SOURCE}:")
  file(STRINGS "${REPORT}" all REGEX "${SOURCE}:")
  foreach(line ${all})
    message("  ${line}")
  endforeach()
  message(FATAL_ERROR "FAIL: ${n} of ${LOOPS} loops vectorised at ${WIDTH} bytes")
endif()
message(STATUS "all ${LOOPS} loops vectorised at ${WIDTH} bytes (${n} such loops in ${SOURCE})")
