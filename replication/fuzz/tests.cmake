# The frame fuzzer (replication/fuzz/frame_fuzzer.cc; TESTPLAN S2, S3),
# included from replication/CMakeLists.txt inside CONVERGE_BUILD_TESTS.
#
# Built with clang in a project of its own (replication/fuzz/CMakeLists.txt)
# by crdt/codec/fuzz/run_fuzzer.sh, which then runs it over the seed corpus
# replication/fuzz/corpus/ (recorded by make_corpus.cc). Skipped (exit 77)
# without clang-14 and its libFuzzer runtime. Not in sanitizer builds: the
# fuzzer always runs under AddressSanitizer and UBSan itself. The bounded run
# takes about 1-2 minutes on a 2-core machine once the fuzzer is built
# (a few minutes the first time); the soak is 25 times as many executions.
if(NOT CONVERGE_SANITIZE)
  set(frame_fuzz_command
      bash ${PROJECT_SOURCE_DIR}/crdt/codec/fuzz/run_fuzzer.sh
      --project replication/fuzz --target converge_frame_fuzzer
      --corpus replication/fuzz/corpus --max-len 8192)
  set(frame_fuzz_dir ${CMAKE_CURRENT_BINARY_DIR}/fuzz-frames)
  add_test(NAME converge.replication.fuzz_frames
           COMMAND ${frame_fuzz_command} ${PROJECT_SOURCE_DIR} ${frame_fuzz_dir} 20000)
  add_test(NAME converge.replication.fuzz_frames_soak
           COMMAND ${frame_fuzz_command} ${PROJECT_SOURCE_DIR} ${frame_fuzz_dir} 500000)
  set_tests_properties(converge.replication.fuzz_frames PROPERTIES LABELS fuzz TIMEOUT 900)
  set_tests_properties(converge.replication.fuzz_frames_soak PROPERTIES LABELS "fuzz;slow"
                                                                        TIMEOUT 7200)
  set_tests_properties(converge.replication.fuzz_frames converge.replication.fuzz_frames_soak
                       PROPERTIES SKIP_RETURN_CODE 77 RESOURCE_LOCK converge_frame_fuzzer)
endif()
