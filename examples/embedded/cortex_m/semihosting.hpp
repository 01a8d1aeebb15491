// examples/embedded/cortex_m/semihosting.hpp — ARM semihosting: text to the debugger's (QEMU's)
// console and an exit status, through `bkpt 0xAB`.
#pragma once

#include <cstdint>

namespace semihosting {

inline int call(int op, const void* arg) {
  register int r0 asm("r0") = op;
  register const void* r1 asm("r1") = arg;
  asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
inline void write(const char* s) {
  call(0x04, s);
}  // SYS_WRITE0
[[noreturn]] inline void exit(int status) {
  // SYS_EXIT_EXTENDED: ADP_Stopped_ApplicationExit and the status.
  const std::uint32_t block[2] = {0x20026, std::uint32_t(status)};
  call(0x20, block);
  for (;;) {
  }
}

}  // namespace semihosting
