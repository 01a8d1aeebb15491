// fusegrad/core/float16.hpp — fg::float16_t (IEEE binary16) and fg::bfloat16_t (bfloat16):
// storage types, converted to and from float with round-to-nearest-even
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/config.hpp"

#include <bit>
#include <cstdint>

FG_DIAGNOSTICS_BEGIN

namespace fg {

// Half-precision values are stored, never computed on: arithmetic reads them as float (as
// PyTorch does on the CPU), so these types hold bits and convert, nothing more. (C++23's
// std::float16_t is not in C++20 compilers' portable subset; these are the same formats.)
struct float16_t {
  std::uint16_t bits = 0;

  float16_t() = default;
  constexpr explicit float16_t(float f) : bits(from_float(f)) {}
  constexpr explicit operator float() const { return to_float(bits); }
  static constexpr float16_t from_bits(std::uint16_t b) {
    float16_t h;
    h.bits = b;
    return h;
  }

 private:
  static constexpr std::uint16_t from_float(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const auto sign = std::uint16_t(x >> 16 & 0x8000u);
    const std::uint32_t abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u)  // Inf, or NaN (kept quiet and non-zero)
      return std::uint16_t(sign | 0x7c00u |
                           (abs > 0x7f800000u ? 0x200u | (abs >> 13 & 0x3ffu) : 0u));
    if (abs >= 0x477ff000u)  // rounds to 65520 or more: Inf
      return std::uint16_t(sign | 0x7c00u);
    if (abs < 0x38800000u) {  // below 2^-14: a subnormal half (or zero), rounded to nearest even
      const int shift = 126 - int(abs >> 23);  // m * 2^(e - 150) in units of 2^-24 is m >> shift
      if (shift > 24)                          // below 2^-25: rounds to zero
        return sign;
      const std::uint32_t m = (abs & 0x7fffffu) | 0x800000u;
      const std::uint32_t q = m >> shift, rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
      return std::uint16_t(sign | (q + (rest > half || (rest == half && (q & 1u)))));
    }
    // Normal: rebias the exponent, round the 13 dropped mantissa bits to nearest even (a carry
    // into the exponent is the right result).
    const std::uint32_t r = abs - 0x38000000u;
    return std::uint16_t(sign | ((r + 0xfffu + (r >> 13 & 1u)) >> 13));
  }
  static constexpr float to_float(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    const std::uint32_t e = h >> 10 & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f)
      return std::bit_cast<float>(sign | 0x7f800000u | m << 13);
    if (e != 0)
      return std::bit_cast<float>(sign | (e + 112) << 23 | m << 13);
    // Zero or subnormal: m * 2^-24, exact in float.
    const float v = float(m) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
};

// bfloat16: float's sign and exponent, 7 mantissa bits (the top half of a float).
struct bfloat16_t {
  std::uint16_t bits = 0;

  bfloat16_t() = default;
  constexpr explicit bfloat16_t(float f) : bits(from_float(f)) {}
  constexpr explicit operator float() const {
    return std::bit_cast<float>(std::uint32_t(bits) << 16);
  }
  static constexpr bfloat16_t from_bits(std::uint16_t b) {
    bfloat16_t h;
    h.bits = b;
    return h;
  }

 private:
  static constexpr std::uint16_t from_float(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)  // NaN: stays a (quiet) NaN
      return std::uint16_t(x >> 16 | 0x40u);
    return std::uint16_t((x + 0x7fffu + (x >> 16 & 1u)) >> 16);  // nearest, ties to even
  }
};

}  // namespace fg

FG_DIAGNOSTICS_END
