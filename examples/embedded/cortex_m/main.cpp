// examples/embedded/cortex_m/main.cpp — the digits trainer on an MPS2 AN386 (Cortex-M4F): output
// through semihosting, step cost from SysTick. Under `qemu-system-arm -icount shift=0` every
// instruction takes 1 ns of virtual time and SysTick ticks at 25 MHz, so one tick is 40
// instructions; on silicon a tick is one core clock cycle.
#include "../train_digits.hpp"
#include "semihosting.hpp"

std::uint32_t stack_peak_bytes();

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
  out << "stack peak: " << stack_peak_bytes() << " B\n";
  return rc;
}
