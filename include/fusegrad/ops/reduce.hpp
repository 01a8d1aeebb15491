// fusegrad/ops/reduce.hpp — reductions: how to combine elements, and each element's local partial
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/ops/op.hpp"

#include <limits>

namespace fg::ops {

// A reduction folds elements y with `combine` from `identity`, then `finish`es the accumulator
// (given the element count n and an optional pre-pass result). Its gradient is local: element y
// of a slice whose result is `out` receives `seed(y, out, adjoint, n, count)`, where `count` is
// the number of elements equal to `out` (read only by reductions that set needs_count).
struct sum_red {
  static constexpr const char* name = "sum";
  template <class V> FG_HD static V identity() { return V(0); }
  template <class V> FG_HD static V combine(V a, V b) { return a + b; }
  template <class T> FG_HD static T finish(T acc, T, T) { return acc; }
  template <class V> FG_HD static V seed(V, V, V adj, V, V) { return adj; }
};
struct mean_red : sum_red {
  static constexpr const char* name = "mean";
  template <class T> FG_HD static T finish(T acc, T, T n) { return acc / n; }
  template <class V> FG_HD static V seed(V, V, V adj, V n, V) { return adj / n; }
};
// d prod / d y = prod / y: exact away from zeros (the domain the table samples).
struct prod_red {
  static constexpr const char* name = "prod";
  static constexpr interval domain{0.5, 1.5};
  template <class V> FG_HD static V identity() { return V(1); }
  template <class V> FG_HD static V combine(V a, V b) { return a * b; }
  template <class T> FG_HD static T finish(T acc, T, T) { return acc; }
  template <class V> FG_HD static V seed(V y, V out, V adj, V, V) { return adj * out / y; }
};
// Ties share the gradient evenly, as PyTorch's amax does.
struct max_red {
  static constexpr const char* name = "max";
  static constexpr bool needs_count = true;
  template <class V> FG_HD static V identity() {
    return V(-std::numeric_limits<simd::scalar_t<V>>::infinity());
  }
  template <class V> FG_HD static V combine(V a, V b) { return math::max(a, b); }
  template <class T> FG_HD static T finish(T acc, T, T) { return acc; }
  template <class V> FG_HD static V seed(V y, V out, V adj, V, V count) {
    return math::eq(y, out) * adj / count;
  }
};
struct min_red {
  static constexpr const char* name = "min";
  static constexpr bool needs_count = true;
  template <class V> FG_HD static V identity() {
    return V(std::numeric_limits<simd::scalar_t<V>>::infinity());
  }
  template <class V> FG_HD static V combine(V a, V b) { return math::min(a, b); }
  template <class T> FG_HD static T finish(T acc, T, T) { return acc; }
  template <class V> FG_HD static V seed(V y, V out, V adj, V, V count) {
    return math::eq(y, out) * adj / count;
  }
};
// log sum exp(y), stable: a max pre-pass m, then m + log sum exp(y - m).
struct logsumexp_red {
  static constexpr const char* name = "logsumexp";
  using prepass = max_red;
  template <class V> FG_HD static V map(V y, V m) { return math::exp(y - m); }
  template <class V> FG_HD static V identity() { return V(0); }
  template <class V> FG_HD static V combine(V a, V b) { return a + b; }
  template <class T> FG_HD static T finish(T acc, T m, T) { return m + math::log(acc); }
  template <class V> FG_HD static V seed(V y, V out, V adj, V, V) {
    return adj * math::exp(y - out);
  }
};

using reductions = type_list<sum_red, mean_red, prod_red, max_red, min_red, logsumexp_red>;

}  // namespace fg::ops
