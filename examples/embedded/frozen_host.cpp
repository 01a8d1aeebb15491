// examples/embedded/frozen_host.cpp — the frozen model's check on the host, with every heap
// allocation trapped (the firmware build runs the same check: cortex_m/frozen_main.cpp).
#include "frozen_check.hpp"
#include "heap_trap.hpp"

#include <cstdio>

int main() {
  heap_trap::armed = true;
  const int rc = frozen_check::run([](const char* s) { std::fputs(s, stdout); });
  heap_trap::armed = false;
  return rc;
}
