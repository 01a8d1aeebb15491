// fusegrad/static_nn/init.hpp — a seeded generator and the usual weight initialisers, no heap
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/tensor.hpp"

#include <cmath>
#include <cstdint>

namespace fg::static_nn {

// PCG32 (O'Neill): 16 bytes of state, the same stream on every target for the same seed, so a
// run on the host and on a microcontroller start from the same weights.
class generator {
 public:
  explicit constexpr generator(std::uint64_t seed = 0x853c49e6748fea9bULL) { reseed(seed); }
  constexpr void reseed(std::uint64_t seed) {
    state_ = 0;
    next();
    state_ += seed;
    next();
  }
  constexpr std::uint32_t next() {
    const std::uint64_t old = state_;
    state_ = old * 6364136223846793005ULL + inc_;
    const auto xorshifted = std::uint32_t(((old >> 18u) ^ old) >> 27u);
    const auto rot = std::uint32_t(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
  }
  // Uniform in [lo, hi), from the top 24 bits (exact in float).
  template <class T = float> constexpr T uniform(T lo, T hi) {
    return lo + (hi - lo) * T(next() >> 8) * T(1.0 / 16777216.0);
  }
  // Uniform integer in [0, n).
  constexpr std::uint32_t below(std::uint32_t n) {
    return std::uint32_t((std::uint64_t(next()) * n) >> 32);
  }

 private:
  std::uint64_t state_ = 0;
  static constexpr std::uint64_t inc_ = 1442695040888963407ULL;
};

// Every element uniform in [lo, hi).
template <class T, class S> void fill_uniform(tensor<T, S>& t, generator& g, T lo, T hi) {
  for (index_t i = 0; i < t.size(); ++i)
    t[i] = g.uniform(lo, hi);
}
// Kaiming (He) uniform, for layers followed by ReLU: bound sqrt(6 / fan_in).
template <class T, class S> void kaiming_uniform(tensor<T, S>& t, index_t fan_in, generator& g) {
  const T bound = std::sqrt(T(6) / T(fan_in));
  fill_uniform(t, g, -bound, bound);
}
// Xavier (Glorot) uniform, for tanh/sigmoid/linear layers: bound sqrt(6 / (fan_in + fan_out)).
template <class T, class S>
void xavier_uniform(tensor<T, S>& t, index_t fan_in, index_t fan_out, generator& g) {
  const T bound = std::sqrt(T(6) / T(fan_in + fan_out));
  fill_uniform(t, g, -bound, bound);
}

}  // namespace fg::static_nn
