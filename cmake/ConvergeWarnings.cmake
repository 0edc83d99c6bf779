# The one place that decides which warnings the project builds with.
# -Wnull-dereference is deliberately absent: with GCC 12 it reports false
# positives inside std::vector::_M_realloc_insert whenever inlining exposes
# it, so whether it fires depends on the optimisation level.
# Every converge target calls converge_target_warnings(); -Werror is added
# when the CI environment variable is set so that local builds stay usable
# while CI refuses any warning.
set(CONVERGE_WARNINGS
    -Wall
    -Wextra
    -Wpedantic
    -Wshadow
    -Wconversion
    -Wsign-conversion
    -Wnon-virtual-dtor
    -Wold-style-cast
    -Woverloaded-virtual
    -Wimplicit-fallthrough)

if(DEFINED ENV{CI})
  list(APPEND CONVERGE_WARNINGS -Werror)
endif()

function(converge_target_warnings target)
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    return()
  endif()
  target_compile_options(${target} PRIVATE ${CONVERGE_WARNINGS})
endfunction()
