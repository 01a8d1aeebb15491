// examples/embedded/host_main.cpp — the firmware's program on the host, with every heap
// allocation trapped: the same code the Cortex-M build runs allocates nothing.
#include "heap_trap.hpp"
#include "train_digits.hpp"

#include <chrono>
#include <cstdio>

struct host_platform {
  static constexpr int tick_bits = 32;  // nanoseconds, wrapping
  static constexpr bool counts_down = false;
  void operator()(const char* s) const { std::fputs(s, stdout); }
  std::uint32_t ticks() const {
    return std::uint32_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count());
  }
};

int main() {
  host_platform platform;
  heap_trap::armed = true;
  const int rc = train_digits::run(platform);
  heap_trap::armed = false;
  std::fputs("(host build: ticks are nanoseconds; no heap allocation during the run)\n", stdout);
  return rc;
}
