# Compile-fail driver, run by CTest as:
#   cmake -DFG_CXX=<compiler> -DFG_INCLUDES=<dir|dir...> -DFG_FLAGS=<flag|flag...>
#         -DFG_SOURCE=<file.cpp> -P run.cmake
# The test passes only if compiling FG_SOURCE with -fsyntax-only FAILS and the compiler's output
# matches the regex on the source's first line: "// expect: <regex>" (CMake regex syntax).
cmake_minimum_required(VERSION 3.21)

foreach(var FG_CXX FG_SOURCE)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()

file(READ "${FG_SOURCE}" _head LIMIT 4096)
string(REGEX MATCH "^[^\r\n]*" _first_line "${_head}")
if(NOT _first_line MATCHES "^[ \t]*//[ \t]*expect:[ \t]*(.*[^ \t])[ \t]*$")
  message(FATAL_ERROR "${FG_SOURCE}: the first line must be '// expect: <regex>', "
                      "found: '${_first_line}'")
endif()
set(_expect "${CMAKE_MATCH_1}")

set(_args "")
if(FG_FLAGS)
  string(REPLACE "|" ";" _flags "${FG_FLAGS}")
  list(APPEND _args ${_flags})
endif()
if(FG_INCLUDES)
  string(REPLACE "|" ";" _incs "${FG_INCLUDES}")
  foreach(dir IN LISTS _incs)
    list(APPEND _args "-I${dir}")
  endforeach()
endif()

execute_process(
  COMMAND "${FG_CXX}" ${_args} -fsyntax-only "${FG_SOURCE}"
  RESULT_VARIABLE _rc
  OUTPUT_VARIABLE _out
  ERROR_VARIABLE _out) # same variable for both: the diagnostics, in order

list(JOIN _args " " _cmdline)
if(_rc EQUAL 0)
  message(FATAL_ERROR "compile_fail: ${FG_SOURCE} COMPILED, but it must not.\n"
                      "command: ${FG_CXX} ${_cmdline} -fsyntax-only ${FG_SOURCE}\n"
                      "output:\n${_out}")
endif()
# The message must be the FIRST error the user sees, not buried in instantiation notes.
string(REGEX MATCH "[^\r\n]*error[^\r\n]*" _first_error "${_out}")
if(NOT _first_error MATCHES "${_expect}")
  message(FATAL_ERROR "compile_fail: ${FG_SOURCE} failed to compile as required, but the "
                      "first error line does not match the expected regex\n"
                      "  first error: ${_first_error}\n"
                      "  expect: ${_expect}\n"
                      "command: ${FG_CXX} ${_cmdline} -fsyntax-only ${FG_SOURCE}\n"
                      "--- compiler output ---\n${_out}")
endif()
message(STATUS "compile_fail: ${FG_SOURCE} rejected as expected (matched '${_expect}')")
