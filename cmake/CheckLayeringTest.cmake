# Proves that cmake/CheckLayering.cmake refuses each kind of wrong-way include
# and accepts a tree that keeps the rules.
#
#   cmake -DCHECKER=<path to CheckLayering.cmake> -DWORK_DIR=<scratch dir> -P CheckLayeringTest.cmake
#
# Each case writes a small tree under WORK_DIR, runs the checker on it and
# checks its exit status and that the message names the file, the line and
# the rule that was broken.
cmake_minimum_required(VERSION 3.25)

foreach(var CHECKER WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "CheckLayeringTest: -D${var}=... is required")
  endif()
endforeach()

set(failures 0)

# Writes files given as pairs "relative/path" "content" under dir. Contents
# travel in a CMake list, so they spell ';', '[' and ']' as @SEMICOLON@,
# @OPEN@ and @CLOSE@.
function(write_tree dir)
  file(REMOVE_RECURSE "${dir}")
  file(MAKE_DIRECTORY "${dir}")
  set(args ${ARGN})
  list(LENGTH args n)
  math(EXPR last "${n} - 1")
  foreach(i RANGE 0 ${last} 2)
    math(EXPR j "${i} + 1")
    list(GET args ${i} path)
    list(GET args ${j} text)
    string(REPLACE "@SEMICOLON@" ";" text "${text}")
    string(REPLACE "@OPEN@" "[" text "${text}")
    string(REPLACE "@CLOSE@" "]" text "${text}")
    file(WRITE "${dir}/${path}" "${text}")
  endforeach()
endfunction()

function(run_checker dir out_status out_output)
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -DROOT=${dir} -P "${CHECKER}"
    RESULT_VARIABLE status
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)
  set(${out_status} "${status}" PARENT_SCOPE)
  set(${out_output} "${output}" PARENT_SCOPE)
endfunction()

# expect_rejected(name "file:line:" "rule text" path content [path content...])
function(expect_rejected name location rule)
  set(dir "${WORK_DIR}/${name}")
  write_tree("${dir}" ${ARGN})
  run_checker("${dir}" status output)
  if(status EQUAL 0)
    message(NOTICE "FAIL ${name}: the checker accepted a wrong-way include:\n${output}")
    math(EXPR failures "${failures} + 1")
  elseif(NOT output MATCHES "${dir}/${location} error: wrong-way include")
    message(NOTICE "FAIL ${name}: expected a message at ${location}, got:\n${output}")
    math(EXPR failures "${failures} + 1")
  else()
    string(FIND "${output}" "${rule}" at)
    if(at LESS 0)
      message(NOTICE "FAIL ${name}: expected the rule '${rule}', got:\n${output}")
      math(EXPR failures "${failures} + 1")
    else()
      message(NOTICE "ok   ${name}: rejected at ${location}")
    endif()
  endif()
  set(failures ${failures} PARENT_SCOPE)
endfunction()

set(crdt_rule "crdt/ may include only the standard library and crdt/ headers")
set(header_start "#pragma once\n\n#include <vector>\n\n")

expect_rejected(crdt_boost "crdt/or_set.h:5:" "${crdt_rule} (boost is a third-party library)"
  crdt/or_set.h "${header_start}#include <boost/container/flat_map.hpp>\n")
expect_rejected(crdt_asio "crdt/x.h:5:" "(asio is a third-party library)"
  crdt/x.h "${header_start}#include <asio.hpp>\n")
expect_rejected(crdt_rocksdb "crdt/x.h:5:" "(rocksdb is a third-party library)"
  crdt/x.h "${header_start}#include <rocksdb/db.h>\n")
expect_rejected(crdt_capnp "crdt/x.h:5:" "(capnp is a third-party library)"
  crdt/x.h "${header_start}#include <capnp/message.h>\n")
expect_rejected(crdt_kj "crdt/internal/x.h:5:" "(kj is a third-party library)"
  crdt/internal/x.h "${header_start}#include <kj/string.h>\n")
expect_rejected(crdt_gtest_outside_test "crdt/testing.h:5:" "(gtest is a third-party library)"
  crdt/testing.h "${header_start}#include <gtest/gtest.h>\n")
expect_rejected(crdt_posix "crdt/x.h:5:" "(<unistd.h> is not a standard library header)"
  crdt/x.h "${header_start}#include <unistd.h>\n")
expect_rejected(crdt_unrooted "crdt/x.h:5:" "(\"dot.h\" is not rooted at the repository root)"
  crdt/x.h "${header_start}#include \"dot.h\"\n")
expect_rejected(crdt_storage "crdt/x.h:6:" "${crdt_rule}"
  crdt/x.h "${header_start}// A comment@SEMICOLON@ with @OPEN@ an open bracket and a semicolon \\\n#include \"storage/store.h\"\n")
expect_rejected(crdt_codec "crdt/x.h:5:" "${crdt_rule}"
  crdt/x.h "${header_start}#include \"crdt/codec/codec.h\"\n")
expect_rejected(crdt_test_folder_rule "crdt/or_set_test.cc:2:" "${crdt_rule}"
  crdt/or_set_test.cc "#include <gtest/gtest.h>\n#include \"replication/node.h\"\n")
expect_rejected(codec_storage "crdt/codec/codec.h:5:" "crdt/codec/ may include only"
  crdt/codec/codec.h "${header_start}#include \"storage/store.h\"\n")
expect_rejected(codec_rocksdb "crdt/codec/codec.h:5:" "(rocksdb is a third-party library)"
  crdt/codec/codec.h "${header_start}#include <rocksdb/db.h>\n")
expect_rejected(storage_replication "storage/store.cc:3:" "storage/ may include crdt/"
  storage/store.cc "#include \"storage/store.h\"\n\n#include \"replication/node.h\"\n")
expect_rejected(storage_examples "storage/store.h:5:" "never replication/ or examples/"
  storage/store.h "${header_start}#include \"examples/cart/cart.h\"\n")
expect_rejected(storage_relative "storage/store.h:5:" "includes are rooted at the repository root"
  storage/store.h "${header_start}#include \"../replication/node.h\"\n")
expect_rejected(replication_examples "replication/node.cc:2:" "replication/ may include crdt/"
  replication/node.cc "#include <boost/asio.hpp>\n#include \"examples/cart/cart.h\"\n")
expect_rejected(property_tests_examples "property-tests/laws.h:1:" "never examples/"
  property-tests/laws.h "#include \"examples/cart/cart.h\"\n")
expect_rejected(bench_examples "bench/or_set_benchmark.cc:1:" "never examples/"
  bench/or_set_benchmark.cc "#include \"examples/cart/cart.h\"\n")
expect_rejected(other_examples "fuzz/decode_fuzz.cc:1:" "nothing outside examples/ includes examples/"
  fuzz/decode_fuzz.cc "#include <examples/cart/cart.h>\n")

# A tree that keeps every rule, with the exemptions it relies on.
set(dir "${WORK_DIR}/good_tree")
write_tree("${dir}"
  crdt/or_set.h "${header_start}#include <cstdint>\n#include \"crdt/dot.h\"\n#include \"crdt/internal/dot_store.h\"\n// #include <boost/no.hpp> is only a comment\nint a@OPEN@2@CLOSE@@SEMICOLON@\n"
  crdt/dot.h "#pragma once\n#include <compare>\n#include <stdint.h>\n"
  crdt/internal/dot_store.h "#pragma once\n#include <map>\n"
  crdt/or_set_test.cc "#include \"crdt/or_set.h\"\n\n#include <gmock/gmock.h>\n#include <gtest/gtest.h>\n#include <rapidcheck.h>\n"
  crdt/codec/codec.h "${header_start}#include <capnp/message.h>\n#include <kj/array.h>\n#include \"crdt/or_set.h\"\n#include \"crdt/codec/converge.capnp.h\"\n"
  storage/store.h "${header_start}#include <rocksdb/db.h>\n#include \"rocksdb/merge_operator.h\"\n#include \"crdt/codec/codec.h\"\n"
  replication/node.h "${header_start}#include <boost/asio.hpp>\n#include \"storage/store.h\"\n#include \"crdt/or_set.h\"\n"
  examples/cart/server.cc "#include \"examples/cart/cart.h\"\n#include \"replication/node.h\"\n#include <nlohmann/json.hpp>\n"
  property-tests/laws.h "#include <rapidcheck.h>\n#include \"crdt/or_set.h\"\n"
  bench/or_set_benchmark.cc "#include <benchmark/benchmark.h>\n#include \"property-tests/laws.h\"\n"
  build/CMakeCache.txt "# a build tree inside the source tree is not scanned\n"
  build/generated.h "#include \"examples/cart/cart.h\"\n"
  out/CMakeCache.txt "# another build tree\n"
  out/generated.h "#include \"examples/cart/cart.h\"\n"
  .hidden/x.h "#include \"examples/cart/cart.h\"\n")
run_checker("${dir}" status output)
if(NOT status EQUAL 0)
  message(NOTICE "FAIL good_tree: the checker refused a tree that keeps the rules:\n${output}")
  math(EXPR failures "${failures} + 1")
else()
  message(NOTICE "ok   good_tree: accepted")
endif()

if(failures GREATER 0)
  message(FATAL_ERROR "CheckLayeringTest: ${failures} case(s) failed")
endif()
message(NOTICE "CheckLayeringTest: all cases passed")
