# Runs one README snippet (CTest docs.*): it must exit 0 and, when FG_EXPECT is given, print
# something that matches it.
#   cmake -DFG_PROGRAM=<binary> -DFG_EXPECT=<regex or empty> -P run_snippet.cmake
cmake_minimum_required(VERSION 3.21)
execute_process(COMMAND "${FG_PROGRAM}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the snippet exited with ${rc}")
endif()
if(NOT "${FG_EXPECT}" STREQUAL "" AND NOT "${out}" MATCHES "${FG_EXPECT}")
  message(FATAL_ERROR "the snippet's output does not match '${FG_EXPECT}'")
endif()
