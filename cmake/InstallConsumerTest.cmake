# Installs the current build tree into a scratch prefix, then configures,
# builds and runs examples/consumer against that prefix only. Fails at the
# first step that fails. Run by ctest as converge.install.consumer:
#
#   cmake -DBUILD_DIR=<converge build tree> -DWORK_DIR=<scratch dir>
#         -DCONSUMER_SOURCE_DIR=<examples/consumer> -DGENERATOR=<generator>
#         -DCXX_COMPILER=<compiler> [-DMAKE_PROGRAM=<ninja/make>] [-DCONFIG=<config>]
#         [-DCXX_FLAGS=<flags>] -P cmake/InstallConsumerTest.cmake
#
# CXX_FLAGS reach the consumer's compile and link lines: a sanitizer build of
# converge installs instrumented static libraries, which only link into a
# program built with the same -fsanitize flags.
cmake_minimum_required(VERSION 3.25)

foreach(var BUILD_DIR WORK_DIR CONSUMER_SOURCE_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "InstallConsumerTest: -D${var}=... is required")
  endif()
endforeach()

set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/consumer-build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(config_args "")
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()

# run_step(<description> COMMAND <command...>): runs, fails the test if it fails.
function(run_step description)
  message(NOTICE "==> ${description}")
  execute_process(${ARGN} RESULT_VARIABLE status COMMAND_ECHO STDOUT)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "InstallConsumerTest: '${description}' failed (${status})")
  endif()
endfunction()

# 1. Install the build tree into the scratch prefix.
run_step("install converge into ${prefix}"
         COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}" ${config_args})

# The package and headers are where a consumer expects them, and nothing but
# headers went into include/ (no tests, no sources).
file(GLOB_RECURSE package_config "${prefix}/*/convergeConfig.cmake")
file(GLOB_RECURSE package_version "${prefix}/*/convergeConfigVersion.cmake")
if(NOT package_config OR NOT package_version)
  message(FATAL_ERROR "InstallConsumerTest: convergeConfig.cmake or its version file "
                      "was not installed under ${prefix}")
endif()
if(NOT EXISTS "${prefix}/include/crdt/crdt.h")
  message(FATAL_ERROR "InstallConsumerTest: ${prefix}/include/crdt/crdt.h was not installed")
endif()
file(GLOB_RECURSE installed_includes RELATIVE "${prefix}/include" "${prefix}/include/*")
foreach(file IN LISTS installed_includes)
  if(NOT file MATCHES "\\.h$")
    message(FATAL_ERROR "InstallConsumerTest: include/${file} is not a header and must not be "
                        "installed")
  endif()
endforeach()
list(LENGTH installed_includes header_count)
message(NOTICE "installed ${header_count} headers and ${package_config}")

# 2. Configure the consumer with the same generator and compiler, finding
# converge only in the prefix (no package registry, no system copy first).
set(configure_command
    "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${consumer_build}" -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_PREFIX_PATH=${prefix}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if(MAKE_PROGRAM)
  list(APPEND configure_command "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(CONFIG)
  list(APPEND configure_command "-DCMAKE_BUILD_TYPE=${CONFIG}")
endif()
if(CXX_FLAGS)
  list(APPEND configure_command "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
       "-DCMAKE_EXE_LINKER_FLAGS=${CXX_FLAGS}")
endif()
run_step("configure examples/consumer against ${prefix}" COMMAND ${configure_command})

file(STRINGS "${consumer_build}/CMakeCache.txt" converge_dir REGEX "^converge_DIR:")
string(REGEX REPLACE "^converge_DIR:[A-Z]+=" "" converge_dir "${converge_dir}")
string(FIND "${converge_dir}" "${prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "InstallConsumerTest: the consumer found converge in '${converge_dir}', "
                      "not in the test prefix ${prefix}")
endif()

# 3. Build and run it.
run_step("build examples/consumer" COMMAND "${CMAKE_COMMAND}" --build "${consumer_build}"
                                           ${config_args})

file(GLOB_RECURSE consumer_exe "${consumer_build}/converge_consumer"
     "${consumer_build}/converge_consumer.exe")
list(FILTER consumer_exe EXCLUDE REGEX "/CMakeFiles/")
if(NOT consumer_exe)
  message(FATAL_ERROR "InstallConsumerTest: converge_consumer was not built in ${consumer_build}")
endif()
list(GET consumer_exe 0 consumer_exe)
run_step("run converge_consumer" COMMAND "${consumer_exe}")
message(NOTICE "InstallConsumerTest: passed")

# The law suite, installed as converge::testing, checks a consumer's own type.
file(GLOB_RECURSE laws_exe "${consumer_build}/converge_consumer_laws")
if(NOT laws_exe)
  message(FATAL_ERROR "InstallConsumerTest: converge_consumer_laws was not built in ${consumer_build}")
endif()
list(GET laws_exe 0 laws_exe)
run_step("run converge_consumer_laws" COMMAND "${laws_exe}")

# The codec and storage layers (Cap'n Proto, RocksDB) through the package.
file(GLOB_RECURSE storage_exe "${consumer_build}/converge_consumer_storage")
if(NOT storage_exe)
  message(FATAL_ERROR "InstallConsumerTest: converge_consumer_storage was not built in ${consumer_build}")
endif()
list(GET storage_exe 0 storage_exe)
run_step("run converge_consumer_storage" COMMAND "${storage_exe}")
