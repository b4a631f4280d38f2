# cmake -P script behind the `find_package_consumer` ctest test:
# install the tessera build tree into a scratch prefix, then configure, build and run
# tests/consumer against that prefix. Inputs (all -D): TESSERA_BINARY_DIR, CONSUMER_SOURCE_DIR,
# CONSUMER_WORK_DIR; optional TESSERA_CONFIG, CONSUMER_CXX_COMPILER.
cmake_minimum_required(VERSION 3.25)

foreach(var TESSERA_BINARY_DIR CONSUMER_SOURCE_DIR CONSUMER_WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()

set(prefix ${CONSUMER_WORK_DIR}/prefix)
set(build ${CONSUMER_WORK_DIR}/build)
# Start clean so a stale install or cache can never make the test pass.
file(REMOVE_RECURSE ${prefix} ${build})

function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc COMMAND_ECHO STDOUT)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "find_package consumer: ${step} failed (${rc})")
  endif()
endfunction()

set(config_args)
if(TESSERA_CONFIG)
  set(config_args --config ${TESSERA_CONFIG})
endif()
run(install ${CMAKE_COMMAND} --install ${TESSERA_BINARY_DIR} --prefix ${prefix} ${config_args})

set(configure_args -S ${CONSUMER_SOURCE_DIR} -B ${build}
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix})
find_program(NINJA NAMES ninja ninja-build)
if(NINJA)
  list(APPEND configure_args -G Ninja -DCMAKE_MAKE_PROGRAM=${NINJA})
endif()
if(CONSUMER_CXX_COMPILER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER=${CONSUMER_CXX_COMPILER})
endif()
run(configure ${CMAKE_COMMAND} ${configure_args})

# Guard against picking up some other tessera installed on the machine.
file(STRINGS ${build}/CMakeCache.txt found_dir REGEX "^tessera_DIR:")
string(FIND "${found_dir}" "${prefix}/" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "find_package consumer: tessera was not found in ${prefix} (${found_dir})")
endif()

run(build ${CMAKE_COMMAND} --build ${build} --config Release)

find_program(APP NAMES app PATHS ${build} ${build}/Release NO_DEFAULT_PATH NO_CACHE REQUIRED)
run(run ${APP})
message(STATUS "find_package consumer: OK")
