// fusegrad/exec/pass.hpp — the passes: every loop of the library, and the seeds of gradient passes
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/parallel.hpp"
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

// A pass is cut for threads as fg::detail::chunk_elements says (core/parallel.hpp): up to 32768
// elements it is one loop on the calling thread, as before threads; a longer one runs in chunks
// of whole rows (fg::detail::chunk_indices). The cut depends on the extents only, never on the
// thread count, and the chunks' sums are combined in chunk order: values and gradients are the
// same for any of them.
using fg::detail::chunk_elements;
using fg::detail::chunk_indices;

// Each loop below is an FG_LOOP function taking its kernel by value: one unit with every call
// inlined, the kernel's fields in registers. A pass calls it once per chunk (flat: elements
// [lo, hi) of the whole extent) or once per row.

template <class T, std::size_t R, bool Flat, class K>
FG_LOOP void assign_loop(K k, const dims_t<R> idx, T* out, index_t lo, index_t hi) {
  k.row(idx, Flat);
  for_batches<T>(lo, hi, [&]<class V>(index_t j) FG_LAMBDA_INLINE {
    simd::store(out + j, value_of(k.template fwd<V, Flat>(j)));
  });
}

// The sum of the values over [lo, hi), their adjoints pushed down the tree; what the kernel sums
// across elements is merged into `sums` (the pass flushes it once, after every chunk).
template <class T, std::size_t R, bool Flat, class K, class S>
FG_LOOP T grad_loop(K k, S s, const dims_t<R> idx, index_t lo, index_t hi, K& sums) {
  k.row(idx, Flat);
  s.row(idx, Flat);
  const T sum = fold_batches<T, ops::sum_red, unroll_for<K>>(
      lo, hi, [&]<class V>(index_t j) FG_LAMBDA_INLINE {
        const auto r = k.template fwd<V, Flat, true>(j);
        const V y = value_of(r);
        k.template bwd<V, Flat>(r, s.template get<V, Flat>(y, j), j);
        return y;
      });
  if constexpr (K::sums)
    sums.merge(k);
  return sum;
}

// Folds one row (or elements [lo, hi) of the flat pass) into a single value.
template <class Red, class T, std::size_t R, bool Flat, class K, class Map>
FG_LOOP T fold_loop(K k, Map map, accessor<T, R> aux, const dims_t<R> idx, index_t lo, index_t hi) {
  k.row(idx, Flat);
  if (aux.base)
    aux.set_row(idx, false);  // aux is uniform along a folded row
  return fold_batches<T, Red, unroll_for<K>>(lo, hi, [&]<class V>(index_t j) FG_LAMBDA_INLINE {
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
  for_batches<T>(0, n, [&]<class V>(index_t j) FG_LAMBDA_INLINE {
    const V a = aux.base ? aux.template load<V, false>(j) : V(0);
    const V y = map(value_of(k.template fwd<V, false>(j)), a);
    simd::store(o.row + j, Red::combine(o.template load<V, false>(j), y));
  });
}

// dst (contiguous, extents d) = ev. Elements are independent: any cut is safe.
template <class T, std::size_t R, class Ev> void assign_pass(Ev& ev, const dims_t<R>& d, T* dst) {
  const auto k = ev.kernel();
  if (ev.dense()) {
    parallel_for(0, size_of(d), chunk_elements(size_of(d)), [&](index_t lo, index_t hi) {
      assign_loop<T, R, true>(k, dims_t<R>{}, dst, lo, hi);
    });
    return;
  }
  const index_t n = R ? d[R - 1] : 1;
  parallel_for(0, rows_of(d), chunk_indices(size_of(d), n), [&](index_t r0, index_t r1) {
    for_each_row(d, r0, r1, [&](const dims_t<R>& idx, index_t row) {
      assign_loop<T, R, false>(k, idx, dst + n * row, 0, n);
    });
  });
}

// Value and gradient in one pass: per element, forward up the tree, then the seed's adjoint down
// it. Returns the sum of the values (the value of a root `sum`). A pass whose kernel is not
// splittable (a broadcast operand's gradient is summed inside the loop) runs as one chunk.
template <class T, std::size_t R, class Ev, class Seed>
T grad_pass(Ev& ev, const dims_t<R>& d, Seed& seed) {
  using K = decltype(ev.kernel());
  const K k = ev.kernel();
  const auto s = seed.kernel();
  const bool flat = ev.dense() && seed.dense();
  const index_t n = flat ? size_of(d) : R ? d[R - 1] : 1;  // elements per row
  const index_t units = flat ? n : rows_of(d);             // what chunks are cut from
  const index_t grain = !k.splittable() ? std::max<index_t>(units, 1)
                        : flat          ? chunk_elements(n)
                                        : chunk_indices(size_of(d), n);
  struct partial {
    T sum;
    K sums;  // a copy of k whose only state is what it summed
  };
  auto chunk = [&](index_t lo, index_t hi) {
    partial p{T(0), k};
    if (flat)
      p.sum = grad_loop<T, R, true>(k, s, dims_t<R>{}, lo, hi, p.sums);
    else
      for_each_row(d, lo, hi, [&](const dims_t<R>& idx, index_t) {
        p.sum += grad_loop<T, R, false>(k, s, idx, 0, n, p.sums);
      });
    return p;
  };
  partial all = units <= grain ? chunk(0, units)
                               : parallel_reduce(0, units, grain, partial{T(0), k}, chunk,
                                                 [](partial a, const partial& b) {
                                                   a.sum += b.sum;
                                                   if constexpr (K::sums)
                                                     a.sums.merge(b.sums);
                                                   return a;
                                                 });
  all.sums.end_pass();
  return all.sum;
}

// Folds the child pass into `out` (read through `o`, 0-strided on reduced axes) with Red's
// identity/combine, after mapping each element with map(y, aux) (aux read through `a`, laid out
// as `o`). A total fold is cut into chunks combined in order; rows run on several threads when
// each writes slots of its own (no axis but the last one is folded).
template <class Red, class T, std::size_t RC, class Ev, class Map>
void fold_pass(Ev& ev, const dims_t<RC>& cd, accessor<T, RC> o, accessor<T, RC> a, bool all,
               Map map) {
  const auto k = ev.kernel();
  if (all && ev.dense()) {
    const T v = parallel_reduce(
        0, size_of(cd), chunk_elements(size_of(cd)), Red::template identity<T>(),
        [&](index_t lo, index_t hi) {
          return fold_loop<Red, T, RC, true>(k, map, a, dims_t<RC>{}, lo, hi);
        },
        [](T x, T y) { return Red::combine(x, y); });
    *o.base = Red::combine(*o.base, v);
    return;
  }
  const index_t n = RC ? cd[RC - 1] : 1;
  bool own_slots = true;
  for (std::size_t i = 0; i + 1 < RC; ++i)
    own_slots = own_slots && !(o.stride[i] == 0 && cd[i] > 1);
  auto rows = [&](index_t r0, index_t r1) {
    accessor<T, RC> out = o;
    for_each_row(cd, r0, r1, [&](const dims_t<RC>& idx, index_t) {
      out.set_row(idx, false);
      if (out.inner == 0)
        *out.row = Red::combine(*out.row, fold_loop<Red, T, RC, false>(k, map, a, idx, 0, n));
      else
        fold_row_into<Red, T, RC>(k, map, out, a, idx, n);
    });
  };
  const index_t count = rows_of(cd);
  if (own_slots)
    parallel_for(0, count, chunk_indices(size_of(cd), n), rows);
  else
    rows(0, count);
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
