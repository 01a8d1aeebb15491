# Cortex-M4F firmware checks, run by CTest when gcc-arm-none-eabi and qemu-system-arm are present:
#   -DMODE=build    configure + build examples/embedded/cortex_m with the cross toolchain
#   -DMODE=symbols  the linked firmware holds no heap, no operator new, no printf, no abort;
#                   prints flash and RAM use
#   -DMODE=run      runs it on QEMU's MPS2 AN386 (Cortex-M4F) with semihosting and checks that
#                   the loss falls and the test accuracy is reached
#   -DMODE=frozen   runs the frozen digit classifiers (fg::freeze's headers, from FROZEN) and
#                   checks that their logits are the host's
# Inputs: SRC (fusegrad source tree), BIN (build folder), FROZEN (where freeze_digits wrote its
# headers), QEMU, NM, SIZE.
cmake_minimum_required(VERSION 3.21)
set(elf "${BIN}/digits_mps2.elf")

function(run_checked)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

if(MODE STREQUAL "build")
  # The host's flags (a sanitizer job's CXXFLAGS=-fsanitize=...) must not reach the cross build.
  foreach(var CFLAGS CXXFLAGS LDFLAGS CPPFLAGS)
    unset(ENV{${var}})
  endforeach()
  run_checked("${CMAKE_COMMAND}" -S "${SRC}/examples/embedded/cortex_m" -B "${BIN}"
              "-DCMAKE_TOOLCHAIN_FILE=${SRC}/cmake/toolchains/arm-none-eabi-cortex-m4f.cmake"
              -DCMAKE_BUILD_TYPE=Release "-DFUSEGRAD_FROZEN_DIR=${FROZEN}")
  run_checked("${CMAKE_COMMAND}" --build "${BIN}")
  message(STATUS "built ${elf}")

elseif(MODE STREQUAL "symbols")
  set(forbidden malloc calloc realloc free _sbrk "operator new" "operator delete" printf
                puts abort __cxa_throw __cxa_guard_acquire)
  set(elfs "${elf}")
  if(EXISTS "${BIN}/frozen_mps2.elf")
    list(APPEND elfs "${BIN}/frozen_mps2.elf")
  endif()
  foreach(e IN LISTS elfs)
    run_checked("${NM}" -C "${e}")
    foreach(sym IN LISTS forbidden)
      string(REGEX MATCH "[0-9a-f]+ [TtWw] [^\n]*${sym}[^\n]*" hit "${out}")
      if(hit)
        message(FATAL_ERROR "${e} links '${hit}': firmware must need no heap or stdio")
      endif()
    endforeach()
    run_checked("${SIZE}" -A "${e}")
    message(STATUS "${e}: no heap, operator new, printf, abort or exception support linked\n${out}")
  endforeach()

elseif(MODE STREQUAL "frozen")
  execute_process(
    COMMAND "${QEMU}" -M mps2-an386 -nographic -monitor none -serial none
            -semihosting-config enable=on,target=native -kernel "${BIN}/frozen_mps2.elf"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 300)
  message(STATUS "${out}")
  if(NOT rc EQUAL 0 OR NOT out MATCHES "frozen: PASS")
    message(FATAL_ERROR "the frozen models' firmware failed (status '${rc}')")
  endif()

elseif(MODE STREQUAL "run")
  execute_process(
    COMMAND "${QEMU}" -M mps2-an386 -nographic -monitor none -serial none
            -semihosting-config enable=on,target=native -icount shift=0 -kernel "${elf}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 300)  # semihosting: stderr
  message(STATUS "${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the firmware exited with status '${rc}'")
  endif()
  string(REGEX MATCHALL "step [0-9]+ loss ([0-9.]+)" losses "${out}")
  list(LENGTH losses n)
  if(n LESS 4)
    message(FATAL_ERROR "expected the loss printed at least 4 times, saw ${n}")
  endif()
  list(GET losses 0 first)
  list(GET losses -1 last)
  string(REGEX REPLACE ".* " "" first "${first}")
  string(REGEX REPLACE ".* " "" last "${last}")
  # Compare as fixed-point integers (CMake has no float comparison): last < first / 2.
  string(REPLACE "." "" first_i "${first}")
  string(REPLACE "." "" last_i "${last}")
  math(EXPR twice_last "2 * ${last_i}")
  if(NOT twice_last LESS first_i)
    message(FATAL_ERROR "the loss did not fall by half: ${first} -> ${last}")
  endif()
  if(NOT out MATCHES "test accuracy: [0-9]+/[0-9]+ = ([0-9]+)\\.[0-9]%")
    message(FATAL_ERROR "no accuracy line")
  endif()
  if(CMAKE_MATCH_1 LESS 90)
    message(FATAL_ERROR "test accuracy ${CMAKE_MATCH_1}% is below 90%")
  endif()
  # The training state sits in its own linker section, and is the size the trainer's constexpr
  # memory says (plus the optimiser's hyperparameters and a pointer or two).
  if(NOT out MATCHES "total ([0-9]+) B")
    message(FATAL_ERROR "no compile-time step memory line")
  endif()
  set(total "${CMAKE_MATCH_1}")
  if(NOT out MATCHES "\\.training section: ([0-9]+) B")
    message(FATAL_ERROR "no .training section line")
  endif()
  math(EXPR extra "${CMAKE_MATCH_1} - ${total}")
  if(extra LESS 0 OR extra GREATER 256)
    message(FATAL_ERROR ".training holds ${CMAKE_MATCH_1} B against ${total} B of step memory")
  endif()
  if(out MATCHES "ticks per training step: ([0-9]+)")
    math(EXPR insns "${CMAKE_MATCH_1} * 40")
    message(STATUS "about ${insns} instructions per training step (QEMU -icount shift=0: 40 "
                   "instructions per 25 MHz SysTick tick)")
  endif()
else()
  message(FATAL_ERROR "MODE must be build, symbols or run")
endif()
