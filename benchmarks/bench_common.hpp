// benchmarks/bench_common.hpp — shared helpers for the Google Benchmark suite (not a benchmark)
// SPDX-License-Identifier: MIT
#pragma once

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace fgbench {

// Deterministic uniform values in [lo, hi): the same data for every implementation.
struct rng {
  std::uint64_t s;
  explicit rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  double next() {  // splitmix64 -> [0, 1)
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return double(z >> 11) * 0x1.0p-53;
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * next(); }
};

template <class T>
void fill_uniform(T* p, std::size_t n, double lo, double hi, std::uint64_t seed) {
  rng r(seed);
  for (std::size_t i = 0; i < n; ++i)
    p[i] = T(r.uniform(lo, hi));
}

// |got - want| <= atol + rtol * |want|
inline bool close(double got, double want, double rtol, double atol = 0.0) {
  return std::isfinite(got) && std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

// Checks a gradient array against a reference; on the first mismatch fills `why` and fails.
template <class T, class R>
bool close_all(const T* got, const R* want, std::size_t n, double rtol, double atol,
               const char* what, std::string& why) {
  for (std::size_t i = 0; i < n; ++i) {
    if (!close(double(got[i]), double(want[i]), rtol, atol)) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "%s[%zu] = %.9g, reference %.9g", what, i, double(got[i]),
                    double(want[i]));
      why = buf;
      return false;
    }
  }
  return true;
}

inline bool check_value(double got, double want, double rtol, double atol, const char* what,
                        std::string& why) {
  if (close(got, want, rtol, atol))
    return true;
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s = %.9g, reference %.9g", what, got, want);
  why = buf;
  return false;
}

}  // namespace fgbench
