# converge-sim's command line contract (docs/simulation.md), as ctest
# converge.simulation.cli runs it:
#   cmake -DSIM=<path to converge-sim> -P replication/tools/converge_sim_test.cmake
# --json prints one object with the contract's fields; the same seed and
# arguments give the same trace_hash; exit 0 when converged with no
# violation; bad flags exit 2 with a message.
cmake_minimum_required(VERSION 3.25)
if(NOT SIM)
  message(FATAL_ERROR "converge_sim_test: -DSIM=<converge-sim> is required")
endif()

function(run_sim out_json out_status)
  execute_process(COMMAND "${SIM}" ${ARGN} --json OUTPUT_VARIABLE output ERROR_VARIABLE errors
                  RESULT_VARIABLE status)
  set(${out_json} "${output}" PARENT_SCOPE)
  set(${out_status} "${status}" PARENT_SCOPE)
  if(errors)
    message(NOTICE "converge-sim stderr: ${errors}")
  endif()
endfunction()

set(args --nodes 5 --fanout 2 --seed 11 --loss 0.2 --dup 0.3 --reorder --partitions 2 --crashes 1
         --writes 80)
run_sim(first status ${args})
message(NOTICE "converge-sim ${args}: ${first}")
if(NOT status EQUAL 0)
  message(FATAL_ERROR "converge-sim exited ${status}: ${first}")
endif()
foreach(field converged rounds violations acked_writes_lost bytes_per_node trace_hash)
  string(JSON value ERROR_VARIABLE missing GET "${first}" ${field})
  if(missing)
    message(FATAL_ERROR "converge-sim --json lacks '${field}': ${first}")
  endif()
endforeach()
string(JSON converged GET "${first}" converged)
string(JSON violations GET "${first}" violations)
string(JSON lost GET "${first}" acked_writes_lost)
string(JSON faults GET "${first}" faults_injected)
if(NOT converged OR NOT violations EQUAL 0 OR NOT lost EQUAL 0)
  message(FATAL_ERROR "converge-sim reported a failed run with exit 0: ${first}")
endif()
if(faults EQUAL 0)
  message(FATAL_ERROR "converge-sim injected no fault for ${args}: ${first}")
endif()

run_sim(second status ${args})
string(JSON hash1 GET "${first}" trace_hash)
string(JSON hash2 GET "${second}" trace_hash)
if(NOT hash1 STREQUAL hash2)
  message(FATAL_ERROR "same seed and arguments, different traces: ${hash1} / ${hash2}")
endif()
run_sim(third status --nodes 5 --fanout 2 --seed 12 --loss 0.2 --dup 0.3 --reorder --partitions 2
        --crashes 1 --writes 80)
string(JSON hash3 GET "${third}" trace_hash)
if(hash3 STREQUAL hash1)
  message(FATAL_ERROR "seeds 11 and 12 gave the same trace ${hash1}")
endif()

# A run that cannot converge within its bound exits 1 (one round, lossy).
run_sim(hopeless status --nodes 7 --fanout 1 --seed 3 --loss 0.5 --partitions 3 --max-rounds 1)
if(NOT status EQUAL 1)
  message(FATAL_ERROR "an unconverged run exited ${status}, not 1: ${hopeless}")
endif()

foreach(bad "--nodes;0" "--loss;1.5" "--workload;nonsense" "--frobnicate")
  execute_process(COMMAND "${SIM}" ${bad} OUTPUT_VARIABLE output ERROR_VARIABLE errors
                  RESULT_VARIABLE status)
  if(NOT status EQUAL 2 OR errors STREQUAL "")
    message(FATAL_ERROR "converge-sim ${bad}: exit ${status}, stderr '${errors}' (want 2 and a message)")
  endif()
endforeach()
message(NOTICE "converge_sim_test: passed")
