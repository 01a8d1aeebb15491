# Driver for the consumer.* CTest tests:
#   cmake -DFG_MODE=package|subdirectory -DFG_SOURCE_DIR=<fusegrad src> -DFG_BINARY_DIR=<build>
#         -DFG_CONSUMER_DIR=<tests/consumer> -DFG_WORK_DIR=<scratch> -DFG_CXX=<compiler>
#         -DFG_GENERATOR=<generator> [-DFG_CONFIG=<build type>] -P run_consumer.cmake
# package:      cmake --install FG_BINARY_DIR into a fresh prefix, then configure the consumer with
#               CMAKE_PREFIX_PATH=<prefix> (find_package), build it, run it.
# subdirectory: configure the consumer with add_subdirectory(FG_SOURCE_DIR), build it, run it.
cmake_minimum_required(VERSION 3.21)

foreach(var FG_MODE FG_SOURCE_DIR FG_BINARY_DIR FG_CONSUMER_DIR FG_WORK_DIR FG_CXX FG_GENERATOR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT FG_CONFIG)
  set(FG_CONFIG Release)
endif()

function(fg_step what)
  string(REPLACE ";" " " _pretty "${ARGN}")
  message(STATUS "[consumer/${FG_MODE}] ${what}: ${_pretty}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "[consumer/${FG_MODE}] ${what} FAILED (exit ${rc}):\n${out}")
  endif()
  message("${out}")
endfunction()

set(_build "${FG_WORK_DIR}/build")
file(REMOVE_RECURSE "${FG_WORK_DIR}")
file(MAKE_DIRECTORY "${FG_WORK_DIR}")

set(_configure "${CMAKE_COMMAND}" -S "${FG_CONSUMER_DIR}" -B "${_build}" -G "${FG_GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${FG_CXX}" "-DCMAKE_BUILD_TYPE=${FG_CONFIG}")

if(FG_MODE STREQUAL "package")
  set(_prefix "${FG_WORK_DIR}/prefix")
  fg_step("install" "${CMAKE_COMMAND}" --install "${FG_BINARY_DIR}" --prefix "${_prefix}"
          --config "${FG_CONFIG}")
  list(APPEND _configure -DFUSEGRAD_CONSUME=package "-DCMAKE_PREFIX_PATH=${_prefix}"
       "-DFUSEGRAD_EXPECT_PREFIX=${_prefix}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
elseif(FG_MODE STREQUAL "subdirectory")
  list(APPEND _configure -DFUSEGRAD_CONSUME=subdirectory "-DFUSEGRAD_SOURCE_DIR=${FG_SOURCE_DIR}")
else()
  message(FATAL_ERROR "run_consumer.cmake: FG_MODE must be package or subdirectory")
endif()

fg_step("configure" ${_configure})
fg_step("build" "${CMAKE_COMMAND}" --build "${_build}" --config "${FG_CONFIG}")

# Single-config generators put the binary at the top of the build dir, multi-config ones under
# <config>/.
set(_exe "${_build}/consumer${CMAKE_EXECUTABLE_SUFFIX}")
if(NOT EXISTS "${_exe}")
  set(_exe "${_build}/${FG_CONFIG}/consumer${CMAKE_EXECUTABLE_SUFFIX}")
endif()
fg_step("run" "${_exe}")
