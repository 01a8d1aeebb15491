// examples/embedded/heap_trap.hpp — replaces the global operator new so that, while
// `heap_trap::armed` is set, any heap allocation aborts the program with a message. Include it
// in exactly one .cpp of a host program (it defines the replacement functions).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <new>

namespace heap_trap {
inline bool armed = false;
[[noreturn]] inline void fire() {
  std::fputs("FAIL: heap allocation where none may happen\n", stderr);
  std::abort();
}
}  // namespace heap_trap

void* operator new(std::size_t n) {
  if (heap_trap::armed)
    heap_trap::fire();
  if (void* p = std::malloc(n ? n : 1))
    return p;
  std::abort();
}
void* operator new(std::size_t n, std::align_val_t a) {
  if (heap_trap::armed)
    heap_trap::fire();
  const auto al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al))
    return p;
  std::abort();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
