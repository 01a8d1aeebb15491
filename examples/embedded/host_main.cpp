// examples/embedded/host_main.cpp — the firmware's program on the host, with every heap
// allocation trapped: the same code the Cortex-M build runs allocates nothing.
#include "train_digits.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>

namespace {
bool armed = false;
[[noreturn]] void trap() {
  std::fputs("FAIL: the training step allocated from the heap\n", stderr);
  std::abort();
}
}  // namespace

void* operator new(std::size_t n) {
  if (armed)
    trap();
  if (void* p = std::malloc(n ? n : 1))
    return p;
  std::abort();
}
void* operator new(std::size_t n, std::align_val_t a) {
  if (armed)
    trap();
  const auto al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al))
    return p;
  std::abort();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

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
  armed = true;
  const int rc = train_digits::run(platform);
  armed = false;
  std::fputs("(host build: ticks are nanoseconds; no heap allocation during the run)\n", stdout);
  return rc;
}
