// fusegrad/nn/init.hpp — weight initialisers for vars, from a seeded generator: the same seed
// gives the same weights, and so the same run
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/random.hpp"
#include "fusegrad/dynamic/var.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg::nn::init {

// Every element uniform in [lo, hi), in order.
inline void uniform(var& v, double lo, double hi, generator& g) {
  dispatch(v.dtype(), [&](auto z) {
    using T = decltype(z);
    T* p = v.tracked_data<T>();
    const index_t n = v.size();
    for (index_t i = 0; i < n; ++i)
      p[i] = g.uniform(T(lo), T(hi));
  });
}
// Kaiming (He) uniform, for layers followed by ReLU.
inline void kaiming_uniform(var& v, index_t fan_in, generator& g) {
  const double b = kaiming_uniform_bound(double(fan_in));
  uniform(v, -b, b, g);
}
// Xavier (Glorot) uniform, for layers followed by tanh, sigmoid or nothing.
inline void xavier_uniform(var& v, index_t fan_in, index_t fan_out, generator& g) {
  const double b = xavier_uniform_bound(double(fan_in), double(fan_out));
  uniform(v, -b, b, g);
}

}  // namespace fg::nn::init

FG_DIAGNOSTICS_END
