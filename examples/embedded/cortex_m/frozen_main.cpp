// examples/embedded/cortex_m/frozen_main.cpp — the frozen digit classifiers (fg::freeze) as firmware
// for the MPS2 AN386: its logits checked against the host's, through semihosting.
#include "../frozen_check.hpp"
#include "semihosting.hpp"

int main() {
  return frozen_check::run([](const char* s) { semihosting::write(s); });
}
