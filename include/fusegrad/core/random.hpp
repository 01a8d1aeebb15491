// fusegrad/core/random.hpp — fg::generator: a small seeded PCG32 stream, the same on every target
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/config.hpp"

#include <cmath>
#include <cstdint>

FG_DIAGNOSTICS_BEGIN

namespace fg {

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
  // The whole state (the increment is a constant): what a checkpoint saves so that a resumed
  // run continues the same stream.
  constexpr std::uint64_t state() const { return state_; }
  constexpr void set_state(std::uint64_t s) { state_ = s; }
  // Uniform in [lo, hi), from the top 24 bits (exact in float).
  template <class T = float> constexpr T uniform(T lo, T hi) {
    return lo + (hi - lo) * T(next() >> 8) * T(1.0 / 16777216.0);
  }
  // Standard normal (Box-Muller on two uniforms; one value per call, so the stream is simple).
  double normal() {
    constexpr double two_pi = 6.283185307179586;
    const double u1 = (double(next() >> 8) + 1.0) * (1.0 / 16777217.0);  // in (0, 1): log is finite
    const double u2 = double(next() >> 8) * (1.0 / 16777216.0);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2);
  }
  // Uniform integer in [0, n).
  constexpr std::uint32_t below(std::uint32_t n) {
    return std::uint32_t((std::uint64_t(next()) * n) >> 32);
  }

 private:
  std::uint64_t state_ = 0;
  static constexpr std::uint64_t inc_ = 1442695040888963407ULL;
};

// Bounds of the usual uniform weight initialisers: Kaiming (He), for layers followed by ReLU,
// sqrt(6 / fan_in); Xavier (Glorot), for tanh/sigmoid/linear ones, sqrt(6 / (fan_in + fan_out)).
inline double kaiming_uniform_bound(double fan_in) {
  return std::sqrt(6.0 / fan_in);
}
inline double xavier_uniform_bound(double fan_in, double fan_out) {
  return std::sqrt(6.0 / (fan_in + fan_out));
}

}  // namespace fg

FG_DIAGNOSTICS_END
