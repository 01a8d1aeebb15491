// fg::float16_t and fg::bfloat16_t: every half value round-trips, and floats round to the
// nearest (ties to even), overflow to Inf, underflow through the subnormals to zero.
#include "../testing.hpp"

#include <fusegrad/core/float16.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

using fg::bfloat16_t;
using fg::float16_t;

namespace {
// The value of a binary16 bit pattern, from its definition.
double half_value(std::uint16_t b) {
  const int e = b >> 10 & 0x1f, m = b & 0x3ff;
  const double sign = b & 0x8000 ? -1.0 : 1.0;
  if (e == 0x1f)
    return m ? std::numeric_limits<double>::quiet_NaN()
             : sign * std::numeric_limits<double>::infinity();
  return sign * (e ? std::ldexp(1024 + m, e - 25) : std::ldexp(m, -24));
}
}  // namespace

TEST_CASE("float16 / every bit pattern converts to its value and back") {
  for (unsigned b = 0; b < 65536; ++b) {
    const auto h = float16_t::from_bits(std::uint16_t(b));
    const double want = half_value(std::uint16_t(b));
    const float f = float(h);
    INFO("bits " << b);
    if (std::isnan(want)) {
      REQUIRE(std::isnan(f));
      REQUIRE(std::isnan(float(float16_t(f))));
      continue;
    }
    REQUIRE(double(f) == want);
    REQUIRE(float16_t(f).bits == b);
  }
}

TEST_CASE("float16 / rounding to nearest even, overflow and underflow") {
  CHECK(float(float16_t(1.0f + 0x1p-11f)) == 1.0f);  // a tie: to even (1.0)
  CHECK(float(float16_t(1.0f + 0x1p-11f + 0x1p-20f)) == 1.0f + 0x1p-10f);
  CHECK(float(float16_t(1.0f + 3 * 0x1p-11f)) == 1.0f + 0x1p-9f);  // a tie: to even (up)
  CHECK(float(float16_t(65504.0f)) == 65504.0f);
  CHECK(float(float16_t(65519.0f)) == 65504.0f);
  CHECK(std::isinf(float(float16_t(65520.0f))));
  CHECK(float(float16_t(-1e10f)) == -std::numeric_limits<float>::infinity());
  CHECK(float(float16_t(0x1p-24f)) == 0x1p-24f);    // the smallest subnormal
  CHECK(float(float16_t(0x1p-25f)) == 0.0f);        // half of it: a tie, to even (zero)
  CHECK(float(float16_t(0x1.8p-25f)) == 0x1p-24f);  // above the tie
  CHECK(std::signbit(float(float16_t(-1e-30f))));   // -0 keeps its sign
}

TEST_CASE("bfloat16 / the top half of a float, rounded to nearest even") {
  CHECK(float(bfloat16_t(1.0f)) == 1.0f);
  CHECK(float(bfloat16_t(1.0f + 0x1p-8f)) == 1.0f);                // a tie: to even
  CHECK(float(bfloat16_t(1.0f + 3 * 0x1p-8f)) == 1.0f + 0x1p-6f);  // a tie: to even (up)
  CHECK(float(bfloat16_t(3.0e38f)) == 3.00405527047391e+38f);
  CHECK(std::isinf(float(bfloat16_t(3.4e38f))));  // rounds past the largest: Inf
  CHECK(std::isnan(float(bfloat16_t(std::numeric_limits<float>::quiet_NaN()))));
  for (unsigned b = 0; b < 65536; ++b) {  // every pattern that is not NaN round-trips
    const auto h = bfloat16_t::from_bits(std::uint16_t(b));
    if (!std::isnan(float(h)))
      REQUIRE(bfloat16_t(float(h)).bits == b);
  }
}
