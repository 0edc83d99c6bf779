# converge-sim's command line contract (docs/simulation.md), as ctest
# converge.simulation.cli runs it:
#   cmake -DSIM=<path to converge-sim> -P replication/tools/converge_sim_test.cmake
# --json prints one object with the contract's fields; the same seed and
# arguments give the same trace_hash; exit 0 when converged with no
# violation; bad flags exit 2 with a message; --swarm runs the fault mixes
# over a seed range (or a time budget) and reports each mix.
cmake_minimum_required(VERSION 3.25)
if(NOT SIM)
  message(FATAL_ERROR "converge_sim_test: -DSIM=<converge-sim> is required")
endif()

# Fails unless the JSON object `json` has every field named after it.
function(require_fields what json)
  foreach(field ${ARGN})
    string(JSON value ERROR_VARIABLE missing GET "${json}" ${field})
    if(missing)
      message(FATAL_ERROR "${what} lacks '${field}': ${json}")
    endif()
  endforeach()
endfunction()

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
require_fields("converge-sim --json" "${first}" converged rounds violations acked_writes_lost
               bytes_per_node trace_hash)
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

# Long lives (issue 11): crashes beyond the old cap of 1,000, replacements,
# and the metadata fields.
set(churn --nodes 5 --seed 12 --workload cart --writes 200 --crashes 2000 --replacements 2)
run_sim(churned status ${churn})
if(NOT status EQUAL 0)
  message(FATAL_ERROR "converge-sim ${churn} exited ${status}: ${churned}")
endif()
require_fields("converge-sim --json" "${churned}" replacements max_gossip_frame_bytes
               max_context_replicas members_max)
string(JSON replacements GET "${churned}" replacements)
string(JSON members GET "${churned}" members_max)
string(JSON frame GET "${churned}" max_gossip_frame_bytes)
if(NOT replacements EQUAL 2 OR NOT members EQUAL 5 OR frame EQUAL 0)
  message(FATAL_ERROR "converge-sim ${churn}: replacements ${replacements} (2 asked), members_max "
                      "${members} (5 live, the 2 replaced ones forgotten), max frame ${frame}")
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

# --swarm: the mixes on a seed range; --json names every mix with its figures;
# the same range gives the same figures.
execute_process(COMMAND "${SIM}" --swarm --seed-base 5 --seeds-per-mix 2 --mix clean --mix wiped
                        --threads 2 --json
                OUTPUT_VARIABLE swarm ERROR_VARIABLE errors RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "converge-sim --swarm exited ${status}: ${swarm} ${errors}")
endif()
require_fields("converge-sim --swarm --json" "${swarm}" seed_base runs failures mixes)
string(JSON runs GET "${swarm}" runs)
string(JSON base GET "${swarm}" seed_base)
string(JSON mixes LENGTH "${swarm}" mixes)
string(JSON second_mix GET "${swarm}" mixes 1 mix)
string(JSON wiped_seeds GET "${swarm}" mixes 1 seeds)
if(NOT runs EQUAL 4 OR NOT base EQUAL 5 OR NOT mixes EQUAL 2 OR NOT second_mix STREQUAL "wiped"
   OR NOT wiped_seeds EQUAL 2)
  message(FATAL_ERROR "converge-sim --swarm ran the wrong seeds or mixes: ${swarm}")
endif()
execute_process(COMMAND "${SIM}" --swarm --seed-base 5 --seeds-per-mix 2 --mix clean --mix wiped
                        --threads 1 --json
                OUTPUT_VARIABLE again RESULT_VARIABLE status)
string(JSON a GET "${swarm}" mixes 1 writes_acked)
string(JSON b GET "${again}" mixes 1 writes_acked)
if(NOT a EQUAL b)
  message(FATAL_ERROR "the same seed range gave different figures: ${a} / ${b}")
endif()
# --prune with --swarm: every run prunes (the soak with pruning on).
execute_process(COMMAND "${SIM}" --swarm --prune --seed-base 5 --seeds-per-mix 1 --mix crashes
                OUTPUT_VARIABLE pruned RESULT_VARIABLE status)
if(NOT status EQUAL 0 OR NOT pruned MATCHES "pruning on")
  message(FATAL_ERROR "converge-sim --swarm --prune (exit ${status}): ${pruned}")
endif()
# A budget alone: fresh seeds, the base printed.
execute_process(COMMAND "${SIM}" --swarm --budget-s 1 --mix clean OUTPUT_VARIABLE timed
                RESULT_VARIABLE status)
if(NOT status EQUAL 0 OR NOT timed MATCHES "seed base [0-9]+" OR NOT timed MATCHES "swarm clean: seeds")
  message(FATAL_ERROR "converge-sim --swarm --budget-s 1 (exit ${status}): ${timed}")
endif()

# Bad flags, for one run and for the swarm: exit 2 with a message.
foreach(bad "--nodes;0" "--loss;1.5" "--workload;nonsense" "--frobnicate" "--swarm"
            "--swarm;--budget-s;1;--nodes;3" "--budget-s;5" "--seed-base;3"
            "--swarm;--seeds-per-mix;1;--mix;nonsense" "--swarm;--seeds-per-mix;1;--trace"
            "--swarm;--budget-s;-1")
  execute_process(COMMAND "${SIM}" ${bad} OUTPUT_VARIABLE output ERROR_VARIABLE errors
                  RESULT_VARIABLE status)
  if(NOT status EQUAL 2 OR errors STREQUAL "")
    message(FATAL_ERROR "converge-sim ${bad}: exit ${status}, stderr '${errors}' (want 2 and a message)")
  endif()
endforeach()
message(NOTICE "converge_sim_test: passed")
