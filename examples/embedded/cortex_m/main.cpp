// examples/embedded/cortex_m/main.cpp — the digits trainer on an MPS2 AN386 (Cortex-M4F): output
// through semihosting, step cost from SysTick. Under `qemu-system-arm -icount shift=0` every
// instruction takes 1 ns of virtual time and SysTick ticks at 25 MHz, so one tick is 40
// instructions; on silicon a tick is one core clock cycle.
// The model and trainer go to the .training section (see mps2_an386.ld).
#define TRAIN_DIGITS_SECTION __attribute__((section(".training")))
#include "../train_digits.hpp"
#include "semihosting.hpp"

std::uint32_t stack_peak_bytes();
extern "C" char __training_start[], __training_end[];

namespace {
struct mps2_platform {
  static constexpr int tick_bits = 24;  // SysTick's current-value register
  static constexpr bool counts_down = true;
  volatile std::uint32_t* const systick = reinterpret_cast<volatile std::uint32_t*>(0xE000E010);
  mps2_platform() {
    systick[1] = 0xFFFFFF;  // reload
    systick[2] = 0;         // current value
    systick[0] = 0x5;       // enable, clocked by the core
  }
  void operator()(const char* s) const { semihosting::write(s); }
  std::uint32_t ticks() const { return systick[2]; }
};
}  // namespace

int main() {
  mps2_platform platform;
  const int rc = train_digits::run(platform);
  console<mps2_platform&> out{platform};
  out << ".training section: " << std::uint32_t(__training_end - __training_start)
      << " B; stack peak: " << stack_peak_bytes() << " B\n";
  return rc;
}
