# converge_benchmark(<target> SOURCES <file>... LIBRARIES <lib>...): a Google
# Benchmark binary run by bench/run. Benchmarks are only meaningful when
# optimized: a build type without optimization (Debug or none) still builds
# them, at -O2 -DNDEBUG, and the binary records its build type and flags in
# its JSON context (bench/bench_common.h) so the report shows what produced
# each figure. Needs find_package(benchmark).
function(converge_benchmark target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;LIBRARIES")
  add_executable(${target} ${arg_SOURCES})
  target_link_libraries(${target} PRIVATE ${arg_LIBRARIES} benchmark::benchmark)
  converge_target_warnings(${target})
  string(TOUPPER "${CMAKE_BUILD_TYPE}" build_type)
  if(NOT build_type MATCHES "^(RELEASE|RELWITHDEBINFO|MINSIZEREL)$")
    target_compile_options(${target} PRIVATE -O2)
    target_compile_definitions(${target} PRIVATE NDEBUG)
  endif()
  target_compile_definitions(
    ${target} PRIVATE CONVERGE_BENCH_BUILD_TYPE="${CMAKE_BUILD_TYPE}"
                      CONVERGE_BENCH_CXX_FLAGS="${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${build_type}}")
endfunction()
