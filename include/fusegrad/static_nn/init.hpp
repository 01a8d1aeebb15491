// fusegrad/static_nn/init.hpp — a seeded generator and the usual weight initialisers, no heap
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/random.hpp"
#include "fusegrad/core/tensor.hpp"

#include <cmath>

FG_DIAGNOSTICS_BEGIN

namespace fg::static_nn {

// The library's seeded generator (core/random.hpp): the same weights on every target.
using generator = fg::generator;

// Every element uniform in [lo, hi).
template <class T, class S> void fill_uniform(tensor<T, S>& t, generator& g, T lo, T hi) {
  for (index_t i = 0; i < t.size(); ++i)
    t[i] = g.uniform(lo, hi);
}
// Kaiming (He) uniform, for layers followed by ReLU.
template <class T, class S> void kaiming_uniform(tensor<T, S>& t, index_t fan_in, generator& g) {
  const T bound = T(kaiming_uniform_bound(double(fan_in)));
  fill_uniform(t, g, -bound, bound);
}
// Xavier (Glorot) uniform, for tanh/sigmoid/linear layers.
template <class T, class S>
void xavier_uniform(tensor<T, S>& t, index_t fan_in, index_t fan_out, generator& g) {
  const T bound = T(xavier_uniform_bound(double(fan_in), double(fan_out)));
  fill_uniform(t, g, -bound, bound);
}

}  // namespace fg::static_nn

FG_DIAGNOSTICS_END
