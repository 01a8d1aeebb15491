// fusegrad/ops/reduce.hpp — reductions: how to combine elements, and each element's local partial
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/ops/op.hpp"

#include <limits>
#include <type_traits>

FG_DIAGNOSTICS_BEGIN

namespace fg::ops {

// A reduction folds elements y with `combine` from `identity`, then `finish`es the accumulator
// (given the element count n and an optional pre-pass result). Its gradient is local: element y
// of a slice whose result is `out` receives `seed(y, out, adjoint, n, stats)`. `stats` are up to
// two per-slice statistics the backward stage folds first, for reductions that declare them:
// `stats` (how many), `stat<I>(y, out)` (each element's share), `stat_fold<I>` (the reduction
// that folds it) and optionally `needs_stats(out)` (skip the folds when no slice needs them) —
// max counts its ties; prod counts zeros and multiplies the rest, only when a product is 0.
template <class V> using slice_stats = partials<V, 2>;

struct sum_red {
  static constexpr const char* name = "sum";
  template <class V> FG_HD static V identity() { return V(0); }
  template <class V> FG_HD static V combine(V a, V b) { return a + b; }
  template <class T> FG_HD static T finish(T acc, T, T) { return acc; }
  template <class V> FG_HD static V seed(V, V, V adj, V, slice_stats<V>) { return adj; }
};
struct mean_red : sum_red {
  static constexpr const char* name = "mean";
  template <class T> FG_HD static T finish(T acc, T, T n) { return acc / n; }
  template <class V> FG_HD static V seed(V, V, V adj, V n, slice_stats<V>) { return adj / n; }
};
// d prod / d y_i is the product of the others: out / y_i, or, at a zero, the product of the
// non-zeros when it is the slice's only zero (else 0).
struct prod_red {
  static constexpr const char* name = "prod";
  static constexpr interval domain{0.5, 1.5};
  template <class V> FG_HD static V identity() { return V(1); }
  template <class V> FG_HD static V combine(V a, V b) { return a * b; }
  template <class T> FG_HD static T finish(T acc, T, T) { return acc; }
  static constexpr int stats = 2;
  template <class T> FG_HD static bool needs_stats(T out) { return out == T(0); }  // else out/y
  template <int I> using stat_fold = std::conditional_t<I == 0, sum_red, prod_red>;
  template <int I, class V> FG_HD static V stat(V y, V) {
    if constexpr (I == 0)
      return math::eq(y, V(0));  // zeros in the slice
    else
      return math::select(math::eq(y, V(0)), V(1), y);  // product of the non-zeros
  }
  // Without zeros in any slice (the statistics were not folded), the plain formula.
  template <class V> FG_HD static V seed_without_stats(V y, V out, V adj, V) {
    return adj * out / y;
  }
  template <class V> FG_HD static V seed(V y, V out, V adj, V, slice_stats<V> s) {
    const V at_zero = math::select(math::eq(s[0], V(1)), s[1], V(0));
    return adj * math::select(math::eq(y, V(0)), at_zero, out / y);
  }
};
// Ties share the gradient evenly, as PyTorch's amax does.
struct max_red {
  static constexpr const char* name = "max";
  static constexpr int stats = 1;  // ties
  template <int> using stat_fold = sum_red;
  template <int I, class V> FG_HD static V stat(V y, V out) { return math::eq(y, out); }
  template <class V> FG_HD static V identity() {
    return V(-std::numeric_limits<simd::scalar_t<V>>::infinity());
  }
  template <class V> FG_HD static V combine(V a, V b) { return math::max(a, b); }
  template <class T> FG_HD static T finish(T acc, T, T) { return acc; }
  template <class V> FG_HD static V seed(V y, V out, V adj, V, slice_stats<V> s) {
    return math::eq(y, out) * adj / s[0];
  }
};
struct min_red {
  static constexpr const char* name = "min";
  static constexpr int stats = 1;  // ties
  template <int> using stat_fold = sum_red;
  template <int I, class V> FG_HD static V stat(V y, V out) { return math::eq(y, out); }
  template <class V> FG_HD static V identity() {
    return V(std::numeric_limits<simd::scalar_t<V>>::infinity());
  }
  template <class V> FG_HD static V combine(V a, V b) { return math::min(a, b); }
  template <class T> FG_HD static T finish(T acc, T, T) { return acc; }
  template <class V> FG_HD static V seed(V y, V out, V adj, V, slice_stats<V> s) {
    return math::eq(y, out) * adj / s[0];
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
  template <class V> FG_HD static V seed(V y, V out, V adj, V, slice_stats<V>) {
    return adj * math::exp(y - out);
  }
};

using reductions = type_list<sum_red, mean_red, prod_red, max_red, min_red, logsumexp_red>;

}  // namespace fg::ops

FG_DIAGNOSTICS_END
