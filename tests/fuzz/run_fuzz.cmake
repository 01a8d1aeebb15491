# One bounded libFuzzer run (CTest fuzz.<name>): a fresh working corpus seeded from
# tests/fuzz/corpus/<name>, the format's dictionary, FG_SECONDS of fuzzing. A crash fails the
# test and leaves its input as crash-* (or leak-*, timeout-*) in FG_WORK.
#   cmake -DFG_FUZZER=<binary> -DFG_NAME=<name> -DFG_SRC=<tests/fuzz> -DFG_WORK=<dir>
#         -DFG_SECONDS=<s> -P run_fuzz.cmake
cmake_minimum_required(VERSION 3.21)
file(REMOVE_RECURSE "${FG_WORK}/corpus")
file(MAKE_DIRECTORY "${FG_WORK}/corpus")
file(GLOB _seeds "${FG_SRC}/corpus/${FG_NAME}/*")
file(COPY ${_seeds} DESTINATION "${FG_WORK}/corpus")
execute_process(
  COMMAND "${FG_FUZZER}" -max_total_time=${FG_SECONDS} -timeout=10 -rss_limit_mb=2048
          -dict=${FG_SRC}/${FG_NAME}.dict -artifact_prefix=${FG_WORK}/ -print_final_stats=1
          "${FG_WORK}/corpus"
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "fuzz.${FG_NAME}: the fuzzer stopped with ${_rc}; its input is in ${FG_WORK}")
endif()
