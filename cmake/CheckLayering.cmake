# Refuses wrong-way includes between the layers of DESIGN.md §1.
#
#   cmake -DROOT=<source tree> -P cmake/CheckLayering.cmake
#
# Exits non-zero and prints "file:line: error: ..." for every include that
# breaks a rule. The build runs it as the target converge_check_layering.
#
# Folder rule (every file, tests included). An include is a repository header
# when its path starts with one of the layer folders; includes are rooted at
# the repository root, so "../" never appears in one.
#   crdt/            -> crdt/
#   crdt/codec/      -> crdt/, crdt/codec/
#   storage/         -> crdt/ (incl. codec), storage/
#   replication/     -> crdt/, storage/, replication/
#   examples/        -> anything
#   property-tests/  -> every library layer, property-tests/
#   bench/           -> every library layer, property-tests/, bench/
#   anything else    -> every layer but examples/
# Nothing outside examples/ includes examples/.
#
# Third-party rule (not for *_test.cc, which use GoogleTest). A header that is
# not a repository header must be a standard library header in crdt/, and a
# standard library or Cap'n Proto (capnp/, kj/) header in crdt/codec/.
#
# The scan is textual: an #include inside a block comment or an "#if 0" counts.
cmake_minimum_required(VERSION 3.25)

if(NOT DEFINED ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<source tree> -P CheckLayering.cmake")
endif()
get_filename_component(ROOT "${ROOT}" ABSOLUTE)
if(NOT IS_DIRECTORY "${ROOT}")
  message(FATAL_ERROR "CheckLayering: ROOT '${ROOT}' is not a directory")
endif()

set(source_extensions h hh hpp hxx inc ipp cc cpp cxx c)
set(test_file_regex "_test\\.cc$")

# What each layer may include, and the rule quoted when it does not.
set(allowed_crdt crdt)
set(allowed_codec crdt codec)
set(allowed_storage crdt codec storage)
set(allowed_replication crdt codec storage replication)
set(allowed_examples crdt codec storage replication property-tests bench examples)
set(allowed_property-tests crdt codec storage replication property-tests)
set(allowed_bench crdt codec storage replication property-tests bench)
set(allowed_other crdt codec storage replication property-tests bench)

set(rule_crdt "crdt/ may include only the standard library and crdt/ headers")
set(rule_codec
    "crdt/codec/ may include only the standard library, Cap'n Proto (capnp/, kj/) and crdt/ headers")
set(rule_storage "storage/ may include crdt/ (incl. crdt/codec/) and storage/ headers, never replication/ or examples/")
set(rule_replication
    "replication/ may include crdt/, storage/ and replication/ headers, never examples/")
set(rule_examples "examples/ may include any layer")
set(rule_property-tests "property-tests/ may include the library layers, never examples/ or bench/")
set(rule_bench "bench/ may include the library layers and property-tests/, never examples/")
set(rule_other "nothing outside examples/ includes examples/")

# Third-party libraries named in the message when crdt/ reaches for them.
set(third_party_regex
    "^(boost|asio|rocksdb|capnp|kj|gtest|gmock|benchmark|rapidcheck|fmt|spdlog|nlohmann|openssl|prometheus|CLI|absl|google)([/.]|$)"
)

# The C++ standard library (C++20, the C++23 names, and the C headers that C++ keeps).
set(standard_headers
    algorithm any array atomic barrier bit bitset charconv chrono codecvt compare complex concepts
    condition_variable coroutine deque exception execution expected filesystem flat_map flat_set
    format forward_list fstream functional future generator initializer_list iomanip ios iosfwd
    iostream istream iterator latch limits list locale map mdspan memory memory_resource mutex new
    numbers numeric optional ostream print queue random ranges ratio regex scoped_allocator
    semaphore set shared_mutex source_location span spanstream sstream stack stacktrace stdexcept
    stdfloat stop_token streambuf string string_view strstream syncstream system_error thread tuple
    type_traits typeindex typeinfo unordered_map unordered_set utility valarray variant vector
    version
    cassert cctype cerrno cfenv cfloat cinttypes climits clocale cmath csetjmp csignal cstdarg
    cstddef cstdint cstdio cstdlib cstring ctime cuchar cwchar cwctype
    assert.h ctype.h errno.h fenv.h float.h inttypes.h limits.h locale.h math.h setjmp.h signal.h
    stdarg.h stddef.h stdint.h stdio.h stdlib.h string.h time.h uchar.h wchar.h wctype.h)

# Layer of a path relative to the root (a file, or an include's spelling);
# "" when the path is not in a layer folder.
function(layer_of path out)
  if(path MATCHES "^crdt/codec/")
    set(layer codec)
  elseif(path MATCHES "^crdt/")
    set(layer crdt)
  elseif(path MATCHES "^(storage|replication|examples|property-tests|bench)/")
    set(layer "${CMAKE_MATCH_1}")
  else()
    set(layer "")
  endif()
  set(${out} "${layer}" PARENT_SCOPE)
endfunction()

string(ASCII 1 esc_backslash)
string(ASCII 2 esc_semicolon)
string(ASCII 3 esc_open)
string(ASCII 4 esc_close)

# Top-level folders to scan: everything but hidden folders and build trees.
file(GLOB top_entries LIST_DIRECTORIES true RELATIVE "${ROOT}" "${ROOT}/*")
set(scan_dirs "")
foreach(entry IN LISTS top_entries)
  if(NOT IS_DIRECTORY "${ROOT}/${entry}" OR entry MATCHES "^\\." OR entry MATCHES "^build"
     OR EXISTS "${ROOT}/${entry}/CMakeCache.txt")
    continue()
  endif()
  list(APPEND scan_dirs "${entry}")
endforeach()

set(files "")
foreach(dir IN LISTS scan_dirs)
  set(globs "")
  foreach(ext IN LISTS source_extensions)
    list(APPEND globs "${ROOT}/${dir}/*.${ext}")
  endforeach()
  file(GLOB_RECURSE dir_files RELATIVE "${ROOT}" ${globs})
  # Skip build trees nested deeper (e.g. examples/consumer/build).
  file(GLOB_RECURSE nested_caches RELATIVE "${ROOT}" "${ROOT}/${dir}/*/CMakeCache.txt")
  foreach(cache IN LISTS nested_caches)
    get_filename_component(nested "${cache}" DIRECTORY)
    string(REGEX REPLACE "([][+.*()^$?|\\])" "\\\\\\1" nested_regex "${nested}")
    list(FILTER dir_files EXCLUDE REGEX "^${nested_regex}/")
  endforeach()
  list(APPEND files ${dir_files})
endforeach()
list(SORT files)

set(violations "")
set(violation_count 0)
set(include_count 0)
foreach(file IN LISTS files)
  layer_of("${file}" source_layer)
  if(source_layer STREQUAL "")
    set(source_layer other)
  endif()
  set(is_test FALSE)
  if(file MATCHES "${test_file_regex}")
    set(is_test TRUE)
  endif()

  # Split the file into lines by hand: file(STRINGS) would also split at ';'
  # and glue lines across '[' or a trailing '\', losing line numbers. Those
  # characters are parked in control characters first.
  file(READ "${ROOT}/${file}" content)
  if(NOT content MATCHES "#[ \t]*include")
    continue()
  endif()
  string(REPLACE "\\" "${esc_backslash}" content "${content}")
  string(REPLACE ";" "${esc_semicolon}" content "${content}")
  string(REPLACE "[" "${esc_open}" content "${content}")
  string(REPLACE "]" "${esc_close}" content "${content}")
  string(REPLACE "\n" ";" lines "${content}")
  set(line_no 0)
  foreach(line IN LISTS lines)
    math(EXPR line_no "${line_no} + 1")
    if(NOT line MATCHES "^[ \t]*#[ \t]*include[ \t]*([<\"])([^>\"]*)[>\"]")
      continue()
    endif()
    set(delimiter "${CMAKE_MATCH_1}")
    set(header "${CMAKE_MATCH_2}")
    string(REPLACE "${esc_backslash}" "\\" header "${header}")
    string(REPLACE "${esc_semicolon}" "," header "${header}")
    string(REPLACE "${esc_open}" "(" header "${header}")
    string(REPLACE "${esc_close}" ")" header "${header}")
    if(delimiter STREQUAL "<")
      set(spelled "<${header}>")
    else()
      set(spelled "\"${header}\"")
    endif()
    math(EXPR include_count "${include_count} + 1")

    set(problem "")
    layer_of("${header}" target_layer)
    if(header MATCHES "(^|/)\\.\\.(/|$)")
      set(problem "includes are rooted at the repository root, and '../' could hide a wrong-way include")
    elseif(NOT target_layer STREQUAL "")
      if(NOT target_layer IN_LIST allowed_${source_layer})
        set(problem "${rule_${source_layer}}")
      endif()
    elseif(NOT is_test AND source_layer MATCHES "^(crdt|codec)$")
      if(header IN_LIST standard_headers)
        # The standard library is always allowed.
      elseif(source_layer STREQUAL "codec" AND header MATCHES "^(capnp|kj)/")
        # Cap'n Proto is what the codec is for.
      elseif(header MATCHES "${third_party_regex}")
        set(problem "${rule_${source_layer}} (${CMAKE_MATCH_1} is a third-party library)")
      elseif(delimiter STREQUAL "\"")
        set(problem "${rule_${source_layer}} (\"${header}\" is not rooted at the repository root)")
      else()
        set(problem "${rule_${source_layer}} (<${header}> is not a standard library header)")
      endif()
    endif()

    if(NOT problem STREQUAL "")
      list(APPEND violations "${file}:${line_no}: error: wrong-way include ${spelled}: ${problem}")
      math(EXPR violation_count "${violation_count} + 1")
    endif()
  endforeach()
endforeach()

list(LENGTH files file_count)
if(violation_count GREATER 0)
  foreach(violation IN LISTS violations)
    message(NOTICE "${ROOT}/${violation}")
  endforeach()
  message(
    FATAL_ERROR
      "Layering check failed: ${violation_count} wrong-way include(s) in ${ROOT} "
      "(rules: DESIGN.md §1, cmake/CheckLayering.cmake).")
endif()
message(STATUS "Layering check passed: ${file_count} files, ${include_count} includes.")
