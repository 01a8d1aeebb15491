// examples/embedded/frozen_check.hpp — runs the frozen digit classifiers (frozen_mlp.hpp and
// frozen_cnn.hpp, written by freeze_digits) on the test batch and compares their logits with the
// host's fg::nn ones. The same code runs on the host (frozen_host.cpp) and as Cortex-M firmware
// (cortex_m/frozen_main.cpp).
#pragma once

#include "console.hpp"

#include <frozen_cnn.hpp>
#include <frozen_expected.hpp>
#include <frozen_mlp.hpp>

namespace frozen_check {

inline frozen_mlp::model mlp;
inline frozen_mlp::input mlp_x;
inline frozen_mlp::output mlp_y;
inline frozen_cnn::model cnn;
inline frozen_cnn::input cnn_x;
inline frozen_cnn::output cnn_y;

// Within float rounding: the largest difference at most 1e-5 of the largest logit (the static
// path may sum in another order than fg::nn, and the FPU may fuse other multiply-adds), and every
// image given the class the host gave it.
template <class Out, class Y> bool compare(Out& out, const char* name, const Y& y,
                                           const float* host) {
  const fg::index_t rows = y.extent(0), cols = y.extent(1);
  float worst = 0, scale = 0;
  fg::index_t agree = 0;
  for (fg::index_t r = 0; r < rows; ++r) {
    fg::index_t mine = 0, theirs = 0;
    for (fg::index_t c = 0; c < cols; ++c) {
      const float a = y(r, c), b = host[r * cols + c];
      worst = a - b > worst ? a - b : (b - a > worst ? b - a : worst);
      scale = b > scale ? b : (-b > scale ? -b : scale);
      mine = a > y(r, mine) ? c : mine;
      theirs = b > host[r * cols + theirs] ? c : theirs;
    }
    agree += mine == theirs;
  }
  const bool ok = worst <= 1e-5f * scale && agree == rows;
  out << "frozen " << name << ": " << agree << "/" << rows
      << " classes as the host's; largest difference " << fixed{double(worst / scale) * 1e6, 3}
      << "e-6 of the largest logit" << (worst == 0 ? " (bit for bit)\n" : "\n");
  return ok;
}

template <class Write> int run(Write write) {
  console<Write&> out{write};
  frozen_mlp::load(mlp);
  frozen_cnn::load(cnn);
  for (fg::index_t i = 0; i < mlp_x.size(); ++i)
    mlp_x[i] = cnn_x[i] = frozen_expected::images[i];
  mlp_y = mlp(mlp_x);
  cnn_y = cnn(cnn_x);
  const bool ok = compare(out, "MLP", mlp_y, frozen_expected::mlp_logits) &
                  compare(out, "CNN", cnn_y, frozen_expected::cnn_logits);
  out << (ok ? "frozen: PASS\n" : "frozen: FAIL\n");
  return ok ? 0 : 1;
}

}  // namespace frozen_check
