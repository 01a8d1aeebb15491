// fusegrad/ops/loss.hpp — fused losses over a row: the value and its partials in one struct
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/math.hpp"

#include <cstddef>

FG_DIAGNOSTICS_BEGIN

namespace fg::ops {

// Softmax cross-entropy of one row of logits z against target weights y (one-hot or soft):
//   loss = lse(z) sum(y) - sum(y z),   lse(z) = m + log sum exp(z - m),  m = max z
//   d loss / d z_j = softmax(z)_j sum(y) - y_j,   d loss / d y_j = lse(z) - z_j
// The exponentials are taken after subtracting the row's max: finite at logits of +-1e4.
struct softmax_cross_entropy_op {
  static constexpr const char* name = "softmax_cross_entropy";
  template <class T> struct row { T loss, lse, ysum; };
  template <class T> FG_HD static row<T> forward(const T* z, const T* y, std::size_t n) {
    T m = z[0];
    for (std::size_t j = 1; j < n; ++j)
      m = z[j] > m ? z[j] : m;
    T s = T(0), ysum = T(0), yz = T(0);
    for (std::size_t j = 0; j < n; ++j) {
      s += math::exp(z[j] - m);
      ysum += y[j];
      yz += y[j] * z[j];
    }
    const T lse = m + math::log(s);
    return {lse * ysum - yz, lse, ysum};
  }
  template <class T> FG_HD static T d_logit(T z, T y, const row<T>& r) {
    return math::exp(z - r.lse) * r.ysum - y;
  }
  template <class T> FG_HD static T d_target(T z, const row<T>& r) { return r.lse - z; }
};

}  // namespace fg::ops

FG_DIAGNOSTICS_END
