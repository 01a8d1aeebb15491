// examples/embedded/frozen_check.hpp — runs the frozen digits model (frozen_digits.hpp, written
// by freeze_digits) on the test batch and compares its logits with the host's fg::nn ones. The
// same code runs on the host (frozen_host.cpp) and as Cortex-M firmware (cortex_m/frozen_main.cpp).
#pragma once

#include "console.hpp"

#include <frozen_digits.hpp>
#include <frozen_digits_expected.hpp>

namespace frozen_check {

inline frozen_digits::model model;
inline frozen_digits::input x;
inline frozen_digits::output y;

// Within float rounding: the largest difference at most 1e-5 of the largest logit (the static
// path sums in another order than fg::nn, and the FPU may fuse other multiply-adds), and every
// image given the class the host gave it.
template <class Write> int run(Write write) {
  console<Write&> out{write};
  frozen_digits::load(model);
  for (fg::index_t i = 0; i < x.size(); ++i)
    x[i] = frozen_digits::expected::images[i];
  y = model(x);
  const fg::index_t rows = y.extent(0), cols = y.extent(1);
  float worst = 0, scale = 0;
  fg::index_t agree = 0;
  for (fg::index_t r = 0; r < rows; ++r) {
    fg::index_t mine = 0, host = 0;
    for (fg::index_t c = 0; c < cols; ++c) {
      const float a = y(r, c), b = frozen_digits::expected::logits[r * cols + c];
      worst = a - b > worst ? a - b : (b - a > worst ? b - a : worst);
      scale = b > scale ? b : (-b > scale ? -b : scale);
      mine = a > y(r, mine) ? c : mine;
      host = b > frozen_digits::expected::logits[r * cols + host] ? c : host;
    }
    agree += mine == host;
  }
  const bool ok = worst <= 1e-5f * scale && agree == rows;
  out << "frozen model: " << agree << "/" << rows << " classes as the host's; largest difference "
      << fixed{double(worst / scale) * 1e6, 3} << "e-6 of the largest logit"
      << (worst == 0 ? " (bit for bit)\n" : "\n")
      << (ok ? "frozen: PASS\n" : "frozen: FAIL\n");
  return ok ? 0 : 1;
}

}  // namespace frozen_check
