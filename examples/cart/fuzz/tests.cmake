# The HTTP request-path fuzzer (examples/cart/fuzz/http_fuzzer.cc; TESTPLAN
# S2, S5), included from examples/cart/server/CMakeLists.txt inside
# CONVERGE_BUILD_TESTS.
#
# Built with clang in a project of its own (examples/cart/fuzz/CMakeLists.txt)
# by crdt/codec/fuzz/run_fuzzer.sh, which then runs it over the seed corpus
# examples/cart/fuzz/corpus/ (make_corpus.py) with the dictionary http.dict.
# Skipped (exit 77) without clang-14 and its libFuzzer runtime. Not in
# sanitizer builds: the fuzzer always runs under AddressSanitizer and UBSan
# itself. The bounded run takes about 1-2 minutes on a 2-core machine once
# the fuzzer is built (several minutes the first time); the soak is 25 times
# as many executions.
if(NOT CONVERGE_SANITIZE)
  set(http_fuzz_command
      bash ${PROJECT_SOURCE_DIR}/crdt/codec/fuzz/run_fuzzer.sh
      --project examples/cart/fuzz --target converge_http_fuzzer
      --corpus examples/cart/fuzz/corpus --dict examples/cart/fuzz/http.dict --max-len 20000)
  set(http_fuzz_dir ${CMAKE_CURRENT_BINARY_DIR}/fuzz-http)
  add_test(NAME converge.cart.fuzz_http
           COMMAND ${http_fuzz_command} ${PROJECT_SOURCE_DIR} ${http_fuzz_dir} 400000)
  add_test(NAME converge.cart.fuzz_http_soak
           COMMAND ${http_fuzz_command} ${PROJECT_SOURCE_DIR} ${http_fuzz_dir} 10000000)
  set_tests_properties(converge.cart.fuzz_http PROPERTIES LABELS fuzz TIMEOUT 900)
  set_tests_properties(converge.cart.fuzz_http_soak PROPERTIES LABELS "fuzz;slow" TIMEOUT 7200)
  set_tests_properties(converge.cart.fuzz_http converge.cart.fuzz_http_soak
                       PROPERTIES SKIP_RETURN_CODE 77 RESOURCE_LOCK converge_http_fuzzer)
endif()
