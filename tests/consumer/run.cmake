# cmake -P script behind the `find_package_consumer` and `pkg_config_consumer` ctest tests:
# install the tessera build tree into a scratch prefix, then build a program against that
# prefix as a downstream user would, with -Wall -Wextra, require that the compiler printed no
# warning, and run it.
#   MODE=find_package (default): configure, build and run tests/consumer (find_package).
#   MODE=pkg-config: g++ -std=c++17 -O2 -Wall -Wextra SOURCE $(pkg-config --cflags --libs tessera).
# Inputs (all -D): TESSERA_BINARY_DIR, CONSUMER_SOURCE_DIR, CONSUMER_WORK_DIR; optional MODE,
# TESSERA_CONFIG, CONSUMER_CXX_COMPILER; for pkg-config PC_SUBDIR (the .pc file's folder under the
# prefix) and SOURCE (the program).
cmake_minimum_required(VERSION 3.25)

foreach(var TESSERA_BINARY_DIR CONSUMER_SOURCE_DIR CONSUMER_WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT MODE)
  set(MODE find_package)
endif()

set(prefix ${CONSUMER_WORK_DIR}/prefix)
set(build ${CONSUMER_WORK_DIR}/build)
# Start clean so a stale install or cache can never make the test pass.
file(REMOVE_RECURSE ${prefix} ${build})
file(MAKE_DIRECTORY ${build})

# run(step command...): the command must succeed; with `QUIET` first, it must also print nothing
# on stderr (a compiler's warnings).
function(run step)
  set(args ${ARGN})
  set(quiet FALSE)
  if(args MATCHES "^QUIET;")
    list(POP_FRONT args)
    set(quiet TRUE)
  endif()
  execute_process(COMMAND ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err COMMAND_ECHO STDOUT)
  message("${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${MODE} consumer: ${step} failed (${rc})")
  endif()
  if(quiet AND (err MATCHES "warning" OR out MATCHES "warning:"))
    message(FATAL_ERROR "${MODE} consumer: ${step} printed warnings")
  endif()
endfunction()

set(config_args)
if(TESSERA_CONFIG)
  set(config_args --config ${TESSERA_CONFIG})
endif()
run(install ${CMAKE_COMMAND} --install ${TESSERA_BINARY_DIR} --prefix ${prefix} ${config_args})

if(NOT CONSUMER_CXX_COMPILER)
  set(CONSUMER_CXX_COMPILER c++)
endif()

if(MODE STREQUAL "pkg-config")
  find_program(PKG_CONFIG NAMES pkg-config pkgconf REQUIRED)
  set(ENV{PKG_CONFIG_PATH} ${prefix}/${PC_SUBDIR})
  execute_process(COMMAND ${PKG_CONFIG} --cflags --libs tessera RESULT_VARIABLE rc OUTPUT_VARIABLE flags
                  OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ECHO STDOUT)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config consumer: pkg-config --cflags --libs tessera failed (${rc})")
  endif()
  message(STATUS "pkg-config --cflags --libs tessera: ${flags}")
  string(FIND "${flags}" "-I${prefix}/" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "pkg-config consumer: the flags do not name ${prefix}/include")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  # the flags after the source, as the README's line has them (libraries after what uses them)
  run(compile QUIET ${CONSUMER_CXX_COMPILER} -std=c++17 -O2 -Wall -Wextra ${SOURCE} ${flags} -o ${build}/app)
  run(run ${build}/app)
  message(STATUS "pkg-config consumer: OK")
  return()
endif()

set(configure_args -S ${CONSUMER_SOURCE_DIR} -B ${build}
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix} "-DCMAKE_CXX_FLAGS=-Wall -Wextra"
  -DCMAKE_CXX_COMPILER=${CONSUMER_CXX_COMPILER})
find_program(NINJA NAMES ninja ninja-build)
if(NINJA)
  list(APPEND configure_args -G Ninja -DCMAKE_MAKE_PROGRAM=${NINJA})
endif()
run(configure ${CMAKE_COMMAND} ${configure_args})

# Guard against picking up some other tessera installed on the machine.
file(STRINGS ${build}/CMakeCache.txt found_dir REGEX "^tessera_DIR:")
string(FIND "${found_dir}" "${prefix}/" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "find_package consumer: tessera was not found in ${prefix} (${found_dir})")
endif()

run(build QUIET ${CMAKE_COMMAND} --build ${build} --config Release)

find_program(APP NAMES app PATHS ${build} ${build}/Release NO_DEFAULT_PATH NO_CACHE REQUIRED)
run(run ${APP})
message(STATUS "find_package consumer: OK")
