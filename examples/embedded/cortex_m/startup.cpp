// examples/embedded/cortex_m/startup.cpp — the whole runtime the firmware needs: a vector table,
// .data/.bss set-up, the FPU switched on, static constructors, a painted stack (to measure its
// peak), then main() and a semihosting exit with main's status.
#include "semihosting.hpp"

#include <cstdint>

extern "C" {
extern std::uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern std::uint32_t __stack_top[], __free_start[];
extern void (*__init_array_start[])();
extern void (*__init_array_end[])();
int main();
[[noreturn]] void reset_handler();
[[noreturn]] void fault_handler();
}

namespace {
constexpr std::uint32_t stack_paint = 0xDEADBEEFu;
}

// The lowest address the stack has reached since reset, found by the paint it left.
std::uint32_t stack_peak_bytes() {
  const std::uint32_t* p = __free_start;
  while (p < __stack_top && *p == stack_paint)
    ++p;
  return std::uint32_t(reinterpret_cast<std::uintptr_t>(__stack_top) -
                       reinterpret_cast<std::uintptr_t>(p));
}

extern "C" [[noreturn]] void reset_handler() {
  for (std::uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;)
    *dst++ = *src++;
  for (std::uint32_t* dst = __bss_start; dst < __bss_end;)
    *dst++ = 0;
  // CPACR: full access to coprocessors 10 and 11 (the FPU) before any float instruction.
  *reinterpret_cast<volatile std::uint32_t*>(0xE000ED88) |= 0xFu << 20;
  asm volatile("dsb\n isb" ::: "memory");
  // Paint the free RAM between the last section and this frame (a 256-byte margin below sp stays unpainted).
  std::uint32_t* sp;
  asm volatile("mov %0, sp" : "=r"(sp));
  for (std::uint32_t* p = __free_start; p < sp - 64; ++p)
    *p = stack_paint;
  for (auto* f = __init_array_start; f < __init_array_end; ++f)
    (*f)();
  semihosting::exit(main());
}

extern "C" [[noreturn]] void fault_handler() {
  semihosting::write("FAIL: hard fault\n");
  semihosting::exit(2);
}

// Initial stack pointer, reset, NMI, HardFault, MemManage, BusFault, UsageFault.
__attribute__((section(".isr_vector"), used)) void (*const vector_table[7])() = {
    reinterpret_cast<void (*)()>(__stack_top),
    reset_handler,
    fault_handler,
    fault_handler,
    fault_handler,
    fault_handler,
    fault_handler};
