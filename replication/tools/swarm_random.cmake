# TESTPLAN R23: the time-boxed random-seed swarm, as ctest runs it
# (converge.simulation.swarm_random, and the slow swarm_random_long):
#   cmake -DSIM=<converge-sim> -DBUDGET_S=60 -P replication/tools/swarm_random.cmake
# The environment overrides: CONVERGE_SWARM_BUDGET_S (seconds),
# CONVERGE_SWARM_SEED_BASE (replay a run's seeds), CONVERGE_SWARM_THREADS
# (default 1: ctest runs other tests beside it). The seed base and the
# summary go to stdout and to swarm_random.txt in the working directory, so a
# passing run is on record too (.ci/run prints it); a failing run prints the
# converge-sim line of every failing seed.
cmake_minimum_required(VERSION 3.25)
if(NOT SIM)
  message(FATAL_ERROR "swarm_random: -DSIM=<converge-sim> is required")
endif()
if(DEFINED ENV{CONVERGE_SWARM_BUDGET_S})
  set(BUDGET_S "$ENV{CONVERGE_SWARM_BUDGET_S}")
endif()
if(NOT BUDGET_S)
  set(BUDGET_S 60)
endif()
set(threads 1)
if(DEFINED ENV{CONVERGE_SWARM_THREADS})
  set(threads "$ENV{CONVERGE_SWARM_THREADS}")
endif()
set(args --swarm --budget-s ${BUDGET_S} --threads ${threads})
if(DEFINED ENV{CONVERGE_SWARM_SEED_BASE})
  list(APPEND args --seed-base "$ENV{CONVERGE_SWARM_SEED_BASE}")
endif()
execute_process(COMMAND "${SIM}" ${args} OUTPUT_VARIABLE output ERROR_VARIABLE errors
                RESULT_VARIABLE status)
list(JOIN args " " command)
file(WRITE swarm_random.txt "converge-sim ${command}\n${output}${errors}exit ${status}\n")
message(NOTICE "${output}${errors}")
if(NOT status EQUAL 0)
  message(FATAL_ERROR "the random-seed swarm failed (exit ${status}): keep each failing seed's "
                      "converge-sim line in replication/sim/regression_seeds.txt once it is fixed")
endif()
string(REGEX MATCH "([0-9]+) runs in" runs "${output}")
if(NOT runs OR CMAKE_MATCH_1 EQUAL 0)
  message(FATAL_ERROR "the random-seed swarm ran nothing")
endif()
