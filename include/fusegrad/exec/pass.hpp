// fusegrad/exec/pass.hpp — the passes: every loop of the library, and the seeds of gradient passes
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/exec/kernel.hpp"
#include "fusegrad/ops/reduce.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg::exec {

// Sums over small cheap bodies get 4 accumulators (their add latency is the bound). Bodies with
// transcendental functions, or trees larger than a few nodes, keep 1: four copies of them
// would spill registers (seen: a third of the loop's instructions touching the stack).
template <class K> inline constexpr int unroll_for = K::cheap&& K::nodes <= 4 ? 4 : 1;

template <std::size_t N> strides_t<N> to_signed(const dims_t<N>& s) {
  strides_t<N> r{};
  for (std::size_t i = 0; i < N; ++i)
    r[i] = std::ptrdiff_t(s[i]);
  return r;
}

// Each loop below is an FG_LOOP function taking its kernel by value: one unit with every call
// inlined, the kernel's fields in registers. A pass calls it once (flat) or once per row.

template <class T, std::size_t R, bool Flat, class K>
FG_LOOP void assign_loop(K k, const dims_t<R> idx, T* out, index_t n) {
  k.row(idx, Flat);
  for_batches<T>(n, [&]<class V>(index_t j) FG_LAMBDA_INLINE {
    simd::store(out + j, value_of(k.template fwd<V, Flat>(j)));
  });
}

template <class T, std::size_t R, bool Flat, class K, class S>
FG_LOOP T grad_loop(K k, S s, const dims_t<R> idx, index_t n) {
  k.row(idx, Flat);
  s.row(idx, Flat);
  const T sum =
      fold_batches<T, ops::sum_red, unroll_for<K>>(n, [&]<class V>(index_t j) FG_LAMBDA_INLINE {
        const auto r = k.template fwd<V, Flat, true>(j);
        const V y = value_of(r);
        k.template bwd<V, Flat>(r, s.template get<V, Flat>(y, j), j);
        return y;
      });
  k.end_pass();
  return sum;
}

// Folds one row (or the whole flat pass) into a single value.
template <class Red, class T, std::size_t R, bool Flat, class K, class Map>
FG_LOOP T fold_loop(K k, Map map, accessor<T, R> aux, const dims_t<R> idx, index_t n) {
  k.row(idx, Flat);
  if (aux.base)
    aux.set_row(idx, false);  // aux is uniform along a folded row
  return fold_batches<T, Red, unroll_for<K>>(n, [&]<class V>(index_t j) FG_LAMBDA_INLINE {
    const V a = aux.base ? aux.template load<V, false>(j) : V(0);
    return map(value_of(k.template fwd<V, Flat>(j)), a);
  });
}

// Folds one row element-wise into a row of slots.
template <class Red, class T, std::size_t R, class K, class Map>
FG_LOOP void fold_row_into(K k, Map map, accessor<T, R> o, accessor<T, R> aux, const dims_t<R> idx,
                           index_t n) {
  k.row(idx, false);
  o.set_row(idx, false);
  if (aux.base)
    aux.set_row(idx, false);
  for_batches<T>(n, [&]<class V>(index_t j) FG_LAMBDA_INLINE {
    const V a = aux.base ? aux.template load<V, false>(j) : V(0);
    const V y = map(value_of(k.template fwd<V, false>(j)), a);
    simd::store(o.row + j, Red::combine(o.template load<V, false>(j), y));
  });
}

// dst (contiguous, extents d) = ev.
template <class T, std::size_t R, class Ev> void assign_pass(Ev& ev, const dims_t<R>& d, T* dst) {
  const auto k = ev.kernel();
  if (ev.dense()) {
    assign_loop<T, R, true>(k, dims_t<R>{}, dst, size_of(d));
    return;
  }
  const index_t n = R ? d[R - 1] : 1;
  index_t row = 0;
  for_each_row(d,
               [&](const dims_t<R>& idx) { assign_loop<T, R, false>(k, idx, dst + n * row++, n); });
}

// Value and gradient in one pass: per element, forward up the tree, then the seed's adjoint down
// it. Returns the sum of the values (the value of a root `sum`).
template <class T, std::size_t R, class Ev, class Seed>
T grad_pass(Ev& ev, const dims_t<R>& d, Seed& seed) {
  const auto k = ev.kernel();
  const auto s = seed.kernel();
  if (ev.dense() && seed.dense())
    return grad_loop<T, R, true>(k, s, dims_t<R>{}, size_of(d));
  T sum(0);
  for_each_row(
      d, [&](const dims_t<R>& idx) { sum += grad_loop<T, R, false>(k, s, idx, R ? d[R - 1] : 1); });
  return sum;
}

// Folds the child pass into `out` (read through `o`, 0-strided on reduced axes) with Red's
// identity/combine, after mapping each element with map(y, aux) (aux read through `a`, laid out
// as `o`).
template <class Red, class T, std::size_t RC, class Ev, class Map>
void fold_pass(Ev& ev, const dims_t<RC>& cd, accessor<T, RC> o, accessor<T, RC> a, bool all,
               Map map) {
  const auto k = ev.kernel();
  if (all && ev.dense()) {
    *o.base =
        Red::combine(*o.base, fold_loop<Red, T, RC, true>(k, map, a, dims_t<RC>{}, size_of(cd)));
    return;
  }
  const index_t n = RC ? cd[RC - 1] : 1;
  for_each_row(cd, [&](const dims_t<RC>& idx) {
    o.set_row(idx, false);
    if (o.inner == 0)
      *o.row = Red::combine(*o.row, fold_loop<Red, T, RC, false>(k, map, a, idx, n));
    else
      fold_row_into<Red, T, RC>(k, map, o, a, idx, n);
  });
}

// ---------------------------------------------------------------------------------------------
// Seeds: the adjoint a gradient pass starts from, per element. Each is its own kernel.

template <class T> struct constant_seed {
  T c;
  static constexpr bool dense() { return true; }
  constant_seed kernel() const { return *this; }
  template <std::size_t R> FG_HD FG_INLINE void row(const dims_t<R>&, bool) {}
  template <class V, bool Flat> FG_HD FG_INLINE V get(V, index_t) const { return V(c); }
};
// Read from memory (a boundary's adjoint), broadcast as the accessor says.
template <class T, std::size_t R> struct memory_seed {
  accessor<T, R> acc;
  bool dense() const { return acc.dense; }
  memory_seed kernel() const { return *this; }
  FG_HD FG_INLINE void row(const dims_t<R>& idx, bool flat) { acc.set_row(idx, flat); }
  template <class V, bool Flat> FG_HD FG_INLINE V get(V, index_t j) const {
    return acc.template load<V, Flat>(j);
  }
};
// Computed by an expression evaluated in the same pass (fg::vjp's seed).
template <class K> struct expression_seed_kernel {
  K k;
  template <std::size_t R> FG_HD FG_INLINE void row(const dims_t<R>& idx, bool flat) {
    k.row(idx, flat);
  }
  template <class V, bool Flat> FG_HD FG_INLINE V get(V, index_t j) const {
    return value_of(k.template fwd<V, Flat>(j));
  }
};
template <class Ev> struct expression_seed {
  Ev& ev;
  bool dense() const { return ev.dense(); }
  auto kernel() const { return expression_seed_kernel<decltype(ev.kernel())>{ev.kernel()}; }
};

}  // namespace fg::exec

FG_DIAGNOSTICS_END
