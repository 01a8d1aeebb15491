// fusegrad/exec/kernel.hpp — kernels: the per-element part of an evaluator, small and trivially
// copyable SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/tuple.hpp"
#include "fusegrad/exec/access.hpp"
#include "fusegrad/ops/op.hpp"

#include <type_traits>

FG_DIAGNOSTICS_BEGIN

namespace fg::exec {

// A kernel is what a fused loop runs for one element (one SIMD batch): `fwd` computes the
// values of its subtree (a record kept in registers), `bwd` hands `adjoint x local partial` to
// its children, `row` points it at a row of the pass, `end_pass` flushes what it summed. Kernels
// hold accessors and numbers only, never storage: the loop takes them by value, so the compiler
// keeps them in registers (no store can alias them), and they can be CUDA kernel arguments.
//
// A host pass may run in chunks on several threads (exec/pass.hpp) when `splittable()`: no two
// elements of the pass write the same gradient element inside the loop. What a kernel sums
// across elements (`sums`: a one-element subtree's adjoint) each chunk sums in a copy of its own;
// `merge` adds one copy's sums into another's, in chunk order, before the one `end_pass`.

template <class V> FG_HD FG_INLINE V value_of(V v) {
  return v;
}
template <class V, class Aux, class... K> struct record {
  V y;
  Aux aux;  // no [[no_unique_address]]: clang 14 crashes emitting it (ICE in ConstantEmitter)
  fg::detail::tuple<K...> kids;
};
template <class V, class Aux, class... K>
FG_HD FG_INLINE V value_of(const record<V, Aux, K...>& r) {
  return r.y;
}

// How a leaf writes its gradient: `store` where this is the only contribution each element
// gets; `add` where the same element of the pass adds more; `accumulate` where other elements of
// the pass add to the same gradient element too (a broadcast operand: atomic on a device).
enum class write_mode : unsigned char { none, store, add, accumulate };

// Reads memory; writes its gradient to memory of the same layout.
template <class T, std::size_t R> struct leaf_kernel {
  static constexpr bool cheap = true;
  static constexpr int nodes = 1;
  static constexpr bool sums = false;
  accessor<T, R> in;
  T* grad_base = nullptr;
  T* grad_row = nullptr;
  write_mode mode = write_mode::none;
  // On a device, the adjoint of an operand that is one element for the whole pass (a 0-d
  // parameter), summed per thread: end_pass adds it once per warp, not once per element into
  // one contended address. Unused on the host.
  T pending = T(0);

  FG_HD FG_INLINE void row(const dims_t<R>& idx, bool flat) {
    in.set_row(idx, flat);
    if (mode != write_mode::none)
      grad_row = grad_base + (in.row - in.base);
  }
  // A broadcast read, or an occurrence that adds through an index map of its own, writes some
  // gradient element from several elements of the pass.
  FG_HD FG_INLINE bool splittable() const {
    return mode == write_mode::none || (mode != write_mode::accumulate && !in.broadcast);
  }
  FG_HD FG_INLINE void merge(const leaf_kernel&) {}
  template <class V, bool Flat, bool Grad = false> FG_HD FG_INLINE V fwd(index_t j) const {
    return in.template load<V, Flat>(j);
  }
  template <class V, bool Flat> FG_HD FG_INLINE void bwd(V, V adj, index_t j) {
    if (mode == write_mode::store)
      write_at<V, Flat, false>(grad_row, in.inner, adj, j);
    else if (mode == write_mode::add)
      write_at<V, Flat, true>(grad_row, in.inner, adj, j);
    else if (mode == write_mode::accumulate) {
#if defined(__CUDA_ARCH__)
      if (in.uniform) {
        pending += adj;
        return;
      }
#endif
      accumulate_at<V, Flat>(grad_row, in.inner, adj, j);
    }
  }
  // Called by every thread of a device pass after its loop (all lanes of a warp at once).
  FG_HD FG_INLINE void end_pass() {
#if defined(__CUDA_ARCH__)
    if (mode == write_mode::accumulate && in.uniform) {
      const T total = warp_sum(pending);
      if (threadIdx.x % 32 == 0)
        atomicAdd(grad_base, total);
      pending = T(0);
    }
#endif
  }
};

template <class T, std::size_t R> struct scalar_kernel {
  static constexpr bool cheap = true;
  static constexpr int nodes = 0;
  static constexpr bool sums = false;
  T v;
  FG_HD FG_INLINE void row(const dims_t<R>&, bool) {}
  FG_HD FG_INLINE bool splittable() const { return true; }
  FG_HD FG_INLINE void merge(const scalar_kernel&) {}
  template <class V, bool Flat, bool Grad = false> FG_HD FG_INLINE V fwd(index_t) const {
    return V(v);
  }
  template <class V, bool Flat> FG_HD FG_INLINE void bwd(V, V, index_t) {}
  FG_HD FG_INLINE void end_pass() {}
};

// A subtree with one element (see uniform_eval): its value is computed once; the adjoints it
// receives are summed in registers and pushed through the subtree once, at the end of the pass.
// Host passes only (FG_HD so that the element-wise kernel above it stays one definition).
template <class K, class Rec, class T, std::size_t R> struct uniform_kernel {
  static constexpr bool cheap = true;
  static constexpr int nodes = 1;
  static constexpr bool sums = true;
  K inner;
  Rec rec;
  T value;
  simd::batch<T> adj_b = simd::batch<T>(T(0));
  T adj_s = T(0);

  FG_HD FG_INLINE void row(const dims_t<R>&, bool) {}
  // The subtree is written once, by end_pass, after every chunk.
  FG_HD FG_INLINE bool splittable() const { return true; }
  FG_HD FG_INLINE void merge(const uniform_kernel& o) {
    adj_b += o.adj_b;
    adj_s += o.adj_s;
  }
  template <class V, bool Flat, bool Grad = false> FG_HD FG_INLINE V fwd(index_t) const {
    return V(value);
  }
  template <class V, bool Flat> FG_HD FG_INLINE void bwd(V, V adj, index_t) {
    if constexpr (std::is_same_v<V, T>)
      adj_s += adj;
    else
      adj_b += adj;
  }
  FG_HD FG_INLINE void end_pass() {
    const T total = simd::hsum(adj_b) + adj_s;
    adj_b = simd::batch<T>(T(0));
    adj_s = T(0);
    inner.row(dims_t<R>{}, true);
    inner.template bwd<T, true>(rec, total, 0);
    inner.end_pass();
  }
};

template <std::size_t, class V> using same_t = V;

template <class Op, std::size_t R, class... K> struct elementwise_kernel {
  static constexpr bool cheap = op_traits<Op>::cheap && (K::cheap && ...);
  static constexpr int nodes = 1 + (K::nodes + ...);
  static constexpr bool sums = (K::sums || ...);
  using seq = std::index_sequence_for<K...>;
  fg::detail::tuple<K...> kids;

  FG_HD FG_INLINE void row(const dims_t<R>& idx, bool flat) {
    fg::detail::for_each(kids, [&](auto& k) FG_LAMBDA_INLINE { k.row(idx, flat); });
  }
  FG_HD FG_INLINE bool splittable() const { return splittable_impl(seq{}); }
  FG_HD FG_INLINE void merge(const elementwise_kernel& o) { merge_impl(o, seq{}); }
  template <class V, bool Flat, bool Grad = false> FG_HD FG_INLINE auto fwd(index_t j) const {
    return fwd_impl<V, Flat, Grad>(j, seq{});
  }
  template <class V, bool Flat, class Rec>
  FG_HD FG_INLINE void bwd(const Rec& r, V adj, index_t j) {
    bwd_impl<V, Flat>(r, adj, j, seq{});
  }
  FG_HD FG_INLINE void end_pass() {
    fg::detail::for_each(kids, [&](auto& k) FG_LAMBDA_INLINE { k.end_pass(); });
  }

 private:
  template <std::size_t... I>
  FG_HD FG_INLINE bool splittable_impl(std::index_sequence<I...>) const {
    return (fg::detail::get<I>(kids).splittable() && ...);
  }
  template <std::size_t... I>
  FG_HD FG_INLINE void merge_impl(const elementwise_kernel& o, std::index_sequence<I...>) {
    (fg::detail::get<I>(kids).merge(fg::detail::get<I>(o.kids)), ...);
  }
  template <class V, bool Flat, bool Grad, std::size_t... I>
  FG_HD FG_INLINE auto fwd_impl(index_t j, std::index_sequence<I...>) const {
    // Only a pass that differentiates keeps the op's auxiliary value.
    constexpr bool aux = Grad && has_aux<Op, V, same_t<I, V>...>;
    using rec = record<V, std::conditional_t<aux, V, no_aux>,
                       decltype(fg::detail::get<I>(kids).template fwd<V, Flat, Grad>(j))...>;
    rec r{V(), {}, {{fg::detail::get<I>(kids).template fwd<V, Flat, Grad>(j)}...}};
    if constexpr (aux) {
      const auto ya = Op::forward_aux(value_of(fg::detail::get<I>(r.kids))...);
      r.y = ya.value;
      r.aux = ya.aux;
    } else {
      r.y = Op::forward(value_of(fg::detail::get<I>(r.kids))...);
    }
    return r;
  }
  template <class V, bool Flat, class Rec, std::size_t... I>
  FG_HD FG_INLINE void bwd_impl(const Rec& r, V adj, index_t j, std::index_sequence<I...>) {
    const auto p =
        fg::detail::local_partials<Op>(r.y, r.aux, value_of(fg::detail::get<I>(r.kids))...);
    (fg::detail::get<I>(kids).template bwd<V, Flat>(fg::detail::get<I>(r.kids), adj * p[I], j),
     ...);
  }
};

}  // namespace fg::exec

FG_DIAGNOSTICS_END
