// fusegrad/exec/evaluator.hpp — the planner: an evaluator per node type, bound to one pass's extents
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/buffer.hpp"
#include "fusegrad/exec/access.hpp"
#include "fusegrad/exec/gemm.hpp"
#include "fusegrad/expr/layout.hpp"
#include "fusegrad/expr/matmul.hpp"
#include "fusegrad/expr/reduce.hpp"

#include <cmath>

namespace fg::exec {

// An evaluator<Node, R> runs Node inside a pass over R-d extents. Elementwise nodes are evaluated
// per element (per SIMD batch) inside the pass: `fwd` returns the values of the subtree (a
// record kept in registers), `bwd` hands `adjoint x local partial` down to the children.
// Reductions, matmul, and reshapes of computed values are boundaries: they materialise their
// result before the pass, act as leaves within it, and run their own backward stage after it.
//
// Gradient planning walks the tree in execution order (`plan` for the current pass, then
// `plan_stages` for the passes that boundaries run later): a target met for the first time
// un-broadcast *stores* its gradient, every later meeting *adds*, so no gradient buffer needs
// zeroing unless a broadcast operand accumulates into it.
template <class Node, std::size_t R>
struct evaluator;

// A gradient requested by the caller, found by the address of its tensor's data.
template <class T>
struct target {
  const T* data;
  T* grad;
  index_t size;
  bool broadcast = false;  // some occurrence accumulates: zero first, add everywhere
  bool seen = false;
};
template <class T>
struct targets {
  target<T>* items = nullptr;
  std::size_t count = 0;
  int phase = 0;  // 0: find broadcast occurrences; 1: assign store/add
  target<T>* find(const T* p, index_t n) const {
    for (std::size_t i = 0; i < count; ++i)
      if (items[i].data == p && items[i].size == n) return &items[i];
    return nullptr;
  }
};

template <std::size_t N>
strides_t<N> to_signed(const dims_t<N>& s) {
  strides_t<N> r{};
  for (std::size_t i = 0; i < N; ++i) r[i] = std::ptrdiff_t(s[i]);
  return r;
}

template <class V>
FG_INLINE V value_of(V v) {
  return v;
}
template <class V, class Aux, class... K>
struct record {
  V y;
  [[no_unique_address]] Aux aux;
  fg::detail::tuple<K...> kids;
};
template <class V, class Aux, class... K>
FG_INLINE V value_of(const record<V, Aux, K...>& r) {
  return r.y;
}

enum class write_mode : unsigned char { none, store, add };

// A leaf of a pass: reads memory, and optionally writes its gradient to memory of the same layout.
template <class T, std::size_t R>
struct leaf_eval {
  accessor<T, R> in;
  accessor<T, R> grad;
  const T* ident = nullptr;  // data address a target is matched against (null: not a target)
  index_t count = 0;         // elements behind this leaf
  index_t pass_size = 0;
  write_mode mode = write_mode::none;

  template <std::size_t RL>
  void bind(const T* p, const dims_t<RL>& ld, const strides_t<RL>& ls, const dims_t<R>& out,
            bool is_target_candidate) {
    in.bind(const_cast<T*>(p), ld, ls, out);
    grad = in;
    ident = is_target_candidate ? p : nullptr;
    count = size_of(ld);
    pass_size = size_of(out);
  }
  // Boundaries accumulate their adjoint into their own zeroed buffer laid out like their values.
  void bind_adjoint(T* g) {
    grad.base = g;
    mode = write_mode::add;
  }
  bool dense() const { return in.dense; }
  bool reaches(const targets<T>& tg) const { return ident && tg.find(ident, count); }
  void plan(targets<T>& tg) {
    target<T>* t = ident ? tg.find(ident, count) : nullptr;
    if (!t) return;
    const bool bc = count < pass_size;
    if (tg.phase == 0) {
      t->broadcast |= bc;
      return;
    }
    grad.base = t->grad;
    mode = (t->broadcast || t->seen) ? write_mode::add : write_mode::store;
    t->seen = true;
  }
  void plan_stages(targets<T>&) {}
  void run_stages() {}
  void end_pass() {}
  bool aliases(const T* lo, const T* hi) const {
    if (!ident && !in.base) return false;
    const T* p = in.base;
    const bool overlap = p < hi && p + count > lo;
    return overlap && !(p == lo && in.dense && count == pass_size);
  }
  FG_INLINE void row(const dims_t<R>& idx, bool flat) {
    in.set_row(idx, flat);
    if (mode != write_mode::none) {
      auto d = grad.base;
      grad = in;
      grad.base = d;
      grad.set_row(idx, flat);
    }
  }
  template <class V, bool Flat, bool Grad = false>
  FG_INLINE V fwd(index_t j) const {
    return in.template load<V, Flat>(j);
  }
  template <class V, bool Flat>
  FG_INLINE void bwd(V, V adj, index_t j) const {
    if (mode == write_mode::store) grad.template write<V, Flat, false>(adj, j);
    else if (mode == write_mode::add) grad.template write<V, Flat, true>(adj, j);
  }
};

template <class T, class S, std::size_t R>
struct evaluator<expr::view<T, S>, R> : leaf_eval<T, R> {
  evaluator(const expr::view<T, S>& v, const dims_t<R>& out) {
    auto d = v.dims();
    this->bind(v.ptr, d, to_strides(contiguous_strides(d)), out, true);
  }
  template <std::size_t N>
  static strides_t<N> to_strides(const dims_t<N>& s) {
    strides_t<N> r{};
    for (std::size_t i = 0; i < N; ++i) r[i] = std::ptrdiff_t(s[i]);
    return r;
  }
};
// A temporary owned by the expression is read like a view but is never a gradient target.
template <class T, class S, std::size_t R>
struct evaluator<expr::owned<T, S>, R> : leaf_eval<T, R> {
  evaluator(const expr::owned<T, S>& o, const dims_t<R>& out) {
    auto d = o.dims();
    this->bind(o.value.data(), d, evaluator<expr::view<T, S>, R>::to_strides(contiguous_strides(d)),
               out, false);
  }
};

template <class T, std::size_t R>
struct evaluator<expr::scalar<T>, R> {
  T v;
  evaluator(const expr::scalar<T>& s, const dims_t<R>&) : v(s.value) {}
  static constexpr bool dense() { return true; }
  bool reaches(const targets<T>&) const { return false; }
  void plan(targets<T>&) {}
  void plan_stages(targets<T>&) {}
  void run_stages() {}
  void end_pass() {}
  bool aliases(const T*, const T*) const { return false; }
  FG_INLINE void row(const dims_t<R>&, bool) {}
  template <class V, bool Flat, bool Grad = false>
  FG_INLINE V fwd(index_t) const {
    return V(v);
  }
  template <class V, bool Flat>
  FG_INLINE void bwd(V, V, index_t) const {}
};

// A node whose static shape is one element (a 0-d parameter, log(sigma), sum(x) inside a larger
// expression) is the same for every element of a pass: it is computed once, and the adjoint it
// receives is summed in registers and pushed down once when the pass ends.
template <class A>
inline constexpr bool uniform_v = A::shape_type::is_static && A::shape_type::static_size == 1 &&
                                  !std::is_same_v<A, expr::scalar<typename A::value_type>>;

template <class A, std::size_t R>
struct uniform_eval {
  using T = typename A::value_type;
  using B = simd::batch<T>;
  evaluator<A, R> inner;
  decltype(inner.template fwd<T, true, true>(0)) rec;
  T value;
  mutable B adj_b = B(T(0));
  mutable T adj_s = T(0);

  uniform_eval(const A& a, const dims_t<R>& out) : inner(a, out), rec(first(inner)) {
    value = value_of(rec);
  }
  static auto first(evaluator<A, R>& ev) {
    ev.row(dims_t<R>{}, true);
    return ev.template fwd<T, true, true>(0);
  }
  static constexpr bool dense() { return true; }
  bool reaches(const targets<T>& tg) const { return inner.reaches(tg); }
  void plan(targets<T>& tg) { inner.plan(tg); }
  void plan_stages(targets<T>& tg) { inner.plan_stages(tg); }
  void run_stages() { inner.run_stages(); }
  bool aliases(const T* lo, const T* hi) const { return inner.aliases(lo, hi); }
  FG_INLINE void row(const dims_t<R>&, bool) {}
  template <class V, bool Flat, bool Grad = false>
  FG_INLINE V fwd(index_t) const {
    return V(value);
  }
  template <class V, bool Flat>
  FG_INLINE void bwd(V, V adj, index_t) const {
    if constexpr (std::is_same_v<V, T>) adj_s += adj;
    else adj_b += adj;
  }
  void end_pass() {
    const T total = simd::hsum(adj_b) + adj_s;
    adj_b = B(T(0));
    adj_s = T(0);
    inner.row(dims_t<R>{}, true);
    inner.template bwd<T, true>(rec, total, 0);
    inner.end_pass();
  }
};

template <class A, std::size_t R>
using operand_evaluator = std::conditional_t<uniform_v<A>, uniform_eval<A, R>, evaluator<A, R>>;

template <class Op, class... A, std::size_t R>
struct evaluator<expr::elementwise<Op, A...>, R> {
  using T = typename expr::elementwise<Op, A...>::value_type;
  using seq = std::index_sequence_for<A...>;
  fg::detail::tuple<operand_evaluator<A, R>...> kids;

  evaluator(const expr::elementwise<Op, A...>& e, const dims_t<R>& out)
      : kids(make(e, out, seq{})) {}
  template <std::size_t... I>
  static fg::detail::tuple<operand_evaluator<A, R>...> make(const expr::elementwise<Op, A...>& e,
                                                            const dims_t<R>& out,
                                                            std::index_sequence<I...>) {
    return {{operand_evaluator<A, R>(fg::detail::get<I>(e.args), out)}...};
  }

  bool dense() const {
    bool d = true;
    fg::detail::for_each(kids, [&](const auto& k) { d = d && k.dense(); });
    return d;
  }
  bool reaches(const targets<T>& tg) const {
    bool r = false;
    fg::detail::for_each(kids, [&](const auto& k) { r = r || k.reaches(tg); });
    return r;
  }
  void plan(targets<T>& tg) {
    fg::detail::for_each(kids, [&](auto& k) { k.plan(tg); });
  }
  void plan_stages(targets<T>& tg) {
    fg::detail::for_each(kids, [&](auto& k) { k.plan_stages(tg); });
  }
  void run_stages() {
    fg::detail::for_each(kids, [&](auto& k) { k.run_stages(); });
  }
  void end_pass() {
    fg::detail::for_each(kids, [&](auto& k) { k.end_pass(); });
  }
  bool aliases(const T* lo, const T* hi) const {
    bool r = false;
    fg::detail::for_each(kids, [&](const auto& k) { r = r || k.aliases(lo, hi); });
    return r;
  }
  FG_INLINE void row(const dims_t<R>& idx, bool flat) {
    fg::detail::for_each(kids, [&](auto& k) { k.row(idx, flat); });
  }
  template <class V, bool Flat, bool Grad = false>
  FG_INLINE auto fwd(index_t j) const {
    return fwd_impl<V, Flat, Grad>(j, seq{});
  }
  template <class V, bool Flat, class Rec>
  FG_INLINE void bwd(const Rec& r, V adj, index_t j) const {
    bwd_impl<V, Flat>(r, adj, j, seq{});
  }

 private:
  template <class V, bool Flat, bool Grad, std::size_t... I>
  FG_INLINE auto fwd_impl(index_t j, std::index_sequence<I...>) const {
    // Only a pass that differentiates keeps the op's auxiliary value.
    constexpr bool aux = Grad && has_aux<Op, V, decltype(value_of(
                                                        fg::detail::get<I>(kids).template fwd<V, Flat, Grad>(j)))...>;
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
  FG_INLINE void bwd_impl(const Rec& r, V adj, index_t j, std::index_sequence<I...>) const {
    const auto p =
        fg::detail::local_partials<Op>(r.y, r.aux, value_of(fg::detail::get<I>(r.kids))...);
    (fg::detail::get<I>(kids).template bwd<V, Flat>(fg::detail::get<I>(r.kids), adj * p[I], j),
     ...);
  }
};

// ---------------------------------------------------------------------------------------------
// Passes. Every loop of the library is one of these three.

// dst (contiguous, extents d) = ev.
template <class T, std::size_t R, class Ev>
void assign_pass(Ev& ev, const dims_t<R>& d, T* dst) {
  const bool flat = ev.dense();
  accessor<T, R> out;
  out.bind(dst, d, to_signed(contiguous_strides(d)), d);
  auto run = [&]<bool Flat>(index_t n) {
    for_each_batch<T>(n, [&]<class V>(index_t j) {
      simd::store(out.row + j, value_of(ev.template fwd<V, Flat>(j)));
    });
  };
  if (flat) {
    ev.row(dims_t<R>{}, true);
    out.set_row(dims_t<R>{}, true);
    run.template operator()<true>(size_of(d));
  } else {
    for_each_row(d, [&](const dims_t<R>& idx) {
      ev.row(idx, false);
      out.set_row(idx, false);
      run.template operator()<false>(R ? d[R - 1] : 1);
    });
  }
}

// Value and gradient in one pass: per element, forward up the tree, then the seed's adjoint down
// it. Returns the sum of the values (the value of a root `sum`).
template <class T, std::size_t R, class Ev, class Seed>
T grad_pass(Ev& ev, const dims_t<R>& d, Seed& seed) {
  using B = simd::batch<T>;
  const bool flat = ev.dense() && seed.dense();
  B acc[unroll] = {};
  T tail(0);
  auto run = [&]<bool Flat>(index_t n) {
    for_each_batch_unrolled<T>(n, [&]<class V, int Slot>(index_t j) {
      const auto r = ev.template fwd<V, Flat, true>(j);
      const V y = value_of(r);
      ev.template bwd<V, Flat>(r, seed.template get<V, Flat>(y, j), j);
      if constexpr (std::is_same_v<V, T>) tail += y;
      else acc[Slot] += y;
    });
  };
  if (flat) {
    ev.row(dims_t<R>{}, true);
    seed.row(dims_t<R>{}, true);
    run.template operator()<true>(size_of(d));
  } else {
    for_each_row(d, [&](const dims_t<R>& idx) {
      ev.row(idx, false);
      seed.row(idx, false);
      run.template operator()<false>(R ? d[R - 1] : 1);
    });
  }
  ev.end_pass();
  return simd::hsum((acc[0] + acc[1]) + (acc[2] + acc[3])) + tail;
}

template <class T>
struct constant_seed {
  T c;
  static constexpr bool dense() { return true; }
  template <std::size_t R>
  void row(const dims_t<R>&, bool) {}
  template <class V, bool Flat>
  FG_INLINE V get(V, index_t) const {
    return V(c);
  }
};
// Seeds read from memory (a boundary's adjoint), broadcast as the accessor says.
template <class T, std::size_t R>
struct memory_seed {
  accessor<T, R> acc;
  bool dense() const { return acc.dense; }
  void row(const dims_t<R>& idx, bool flat) { acc.set_row(idx, flat); }
  template <class V, bool Flat>
  FG_INLINE V get(V, index_t j) const {
    return acc.template load<V, Flat>(j);
  }
};
// Seeds computed by an expression evaluated in the same pass (fg::vjp's seed).
template <class Ev>
struct expression_seed {
  Ev& ev;
  bool dense() const { return ev.dense(); }
  template <std::size_t R>
  void row(const dims_t<R>& idx, bool flat) {
    ev.row(idx, flat);
  }
  template <class V, bool Flat>
  FG_INLINE V get(V, index_t j) const {
    return value_of(ev.template fwd<V, Flat>(j));
  }
};

// ---------------------------------------------------------------------------------------------
// Boundaries.

// Holds a materialised value of shape S and exposes it as a leaf of the enclosing pass.
template <class T, class S, std::size_t R>
struct materialized {
  buffer<T, S::static_size> value;
  buffer<T, S::static_size> adjoint;
  dims_t<S::rank> dims{};
  leaf_eval<T, R> leaf;
  bool wants_grad = false;

  explicit materialized(const dims_t<S::rank>& d) : value(size_of(d)), dims(d) {}
  // Read `value` with element strides `vs` (contiguous, or reversed for a transpose).
  template <std::size_t RL>
  void expose(const dims_t<RL>& ld, const strides_t<RL>& vs, const dims_t<R>& out) {
    leaf.bind(value.data(), ld, vs, out, false);
  }
  void request_adjoint() {
    wants_grad = true;
    adjoint.resize(size_of(dims));
    leaf.bind_adjoint(adjoint.data());
  }
};

// Evaluates a subtree of rank RC into `dst` (contiguous).
template <class A>
void materialize(const A& a, typename A::value_type* dst) {
  constexpr std::size_t RC = A::shape_type::rank;
  auto d = a.dims();
  evaluator<A, RC> ev(a, d);
  assign_pass<typename A::value_type, RC>(ev, d, dst);
}

namespace detail {
template <class V>
FG_INLINE simd::scalar_t<V> horizontal(V v, auto combine) {
  using T = simd::scalar_t<V>;
  alignas(simd::alignment) T tmp[simd::lanes<V>];
  simd::to_array(v, tmp);
  T r = tmp[0];
  for (std::size_t k = 1; k < simd::lanes<V>; ++k) r = combine(r, tmp[k]);
  return r;
}
}  // namespace detail

// Folds the child pass into `out` (read through `o`, 0-strided on reduced axes) with Red's
// identity/combine, after mapping each element with map(y, aux) (aux read through `a`).
template <class Red, class T, std::size_t RC, class Ev, class Map>
void fold_pass(Ev& ev, const dims_t<RC>& cd, accessor<T, RC> o, accessor<T, RC> a, bool all,
               Map map) {
  auto comb = [](auto x, auto y) { return Red::combine(x, y); };
  if (all && ev.dense()) {  // one running batch over the whole pass
    using B = simd::batch<T>;
    B acc[unroll];
    for (auto& x : acc) x = Red::template identity<B>();
    T tail = Red::template identity<T>();
    ev.row(dims_t<RC>{}, true);
    const T aux = a.base ? *a.base : T(0);
    for_each_batch_unrolled<T>(size_of(cd), [&]<class V, int Slot>(index_t j) {
      const V y = map(value_of(ev.template fwd<V, true>(j)), V(aux));
      if constexpr (std::is_same_v<V, T>) tail = Red::combine(tail, y);
      else acc[Slot] = Red::combine(acc[Slot], y);
    });
    const B all_acc = Red::combine(Red::combine(acc[0], acc[1]), Red::combine(acc[2], acc[3]));
    *o.base = Red::combine(*o.base, Red::combine(detail::horizontal(all_acc, comb), tail));
    return;
  }
  for_each_row(cd, [&](const dims_t<RC>& idx) {
    ev.row(idx, false);
    o.set_row(idx, false);
    if (a.base) a.set_row(idx, false);
    const index_t n = RC ? cd[RC - 1] : 1;
    auto aux = [&]<class V>(index_t j) { return a.base ? a.template load<V, false>(j) : V(0); };
    if (o.inner == 0) {  // the row folds into one slot
      using B = simd::batch<T>;
      B acc[unroll];
      for (auto& x : acc) x = Red::template identity<B>();
      T tail = Red::template identity<T>();
      for_each_batch_unrolled<T>(n, [&]<class V, int Slot>(index_t j) {
        const V y = map(value_of(ev.template fwd<V, false>(j)), aux.template operator()<V>(j));
        if constexpr (std::is_same_v<V, T>) tail = Red::combine(tail, y);
        else acc[Slot] = Red::combine(acc[Slot], y);
      });
      const B all_acc = Red::combine(Red::combine(acc[0], acc[1]), Red::combine(acc[2], acc[3]));
      *o.row = Red::combine(*o.row, Red::combine(detail::horizontal(all_acc, comb), tail));
    } else {  // the row maps element-wise onto a row of slots
      for_each_batch<T>(n, [&]<class V>(index_t j) {
        const V y = map(value_of(ev.template fwd<V, false>(j)), aux.template operator()<V>(j));
        simd::store(o.row + j * o.inner, Red::combine(o.template load<V, false>(j), y));
      });
    }
  });
}

template <class Red>
concept has_prepass = requires { typename Red::prepass; };
template <class Red>
inline constexpr bool needs_count_v = [] {
  if constexpr (requires { Red::needs_count; }) return bool(Red::needs_count);
  else return false;
}();

// The seed of a reduction's operand: each element's local partial times the slice's adjoint.
template <class Red, class T, std::size_t RC>
struct reduce_seed {
  accessor<T, RC> out, adj, cnt;
  T n;
  bool uniform;
  bool dense() const { return uniform; }
  void row(const dims_t<RC>& idx, bool flat) {
    if (flat) return;  // uniform: every element reads slot 0
    out.set_row(idx, false);
    adj.set_row(idx, false);
    if (cnt.base) cnt.set_row(idx, false);
  }
  template <class V, bool Flat>
  FG_INLINE V get(V y, index_t j) const {
    if constexpr (Flat) {
      return Red::seed(y, V(*out.base), V(*adj.base), V(n), V(cnt.base ? *cnt.base : T(1)));
    } else {
      const V c = cnt.base ? cnt.template load<V, false>(j) : V(1);
      return Red::seed(y, out.template load<V, false>(j), adj.template load<V, false>(j), V(n),
                       c);
    }
  }
};

template <class Red, class A, class Set, bool Keep, std::size_t R>
struct evaluator<expr::reduce<Red, A, Set, Keep>, R> {
  using node = expr::reduce<Red, A, Set, Keep>;
  using T = typename node::value_type;
  using OS = typename node::shape_type;
  static constexpr std::size_t RC = node::in_rank;
  static constexpr std::size_t RO = node::out_rank;
  static constexpr bool all = [] {
    for (std::size_t k = 0; k < RC; ++k)
      if (!Set::has(k)) return false;
    return true;
  }();

  evaluator<A, RC> child;
  dims_t<RC> cd;
  materialized<T, OS, R> m;
  strides_t<RC> out_strides{};  // the output's strides seen from the child's pass
  T n;                          // elements folded into each output

  evaluator(const node& e, const dims_t<R>& pass)
      : child(e.arg, e.arg.dims()), cd(e.arg.dims()), m(e.dims()) {
    const auto os = contiguous_strides(m.dims);
    std::size_t o = 0;
    for (std::size_t k = 0; k < RC; ++k) {
      if (Set::has(k)) {
        out_strides[k] = 0;
        o += Keep;
      } else {
        out_strides[k] = std::ptrdiff_t(os[o++]);
      }
    }
    const index_t nout = size_of(m.dims);
    n = nout ? T(size_of(cd)) / T(nout) : T(0);
    T* out = m.value.data();
    for (index_t i = 0; i < nout; ++i) out[i] = Red::template identity<T>();
    if constexpr (has_prepass<Red>) {
      using P = typename Red::prepass;
      buffer<T, OS::static_size> pre(nout);
      for (index_t i = 0; i < nout; ++i) pre.data()[i] = P::template identity<T>();
      fold_pass<P, T>(child, cd, over(pre.data()), accessor<T, RC>{}, all,
                      [](auto y, auto) { return y; });
      for (index_t i = 0; i < nout; ++i)  // an all -inf slice must not give inf - inf
        if (!std::isfinite(pre.data()[i])) pre.data()[i] = T(0);
      fold_pass<Red, T>(child, cd, over(out), over(pre.data()), all,
                        [](auto y, auto p) { return Red::map(y, p); });
      for (index_t i = 0; i < nout; ++i) out[i] = Red::finish(out[i], pre.data()[i], n);
    } else {
      fold_pass<Red, T>(child, cd, over(out), accessor<T, RC>{}, all,
                        [](auto y, auto) { return y; });
      for (index_t i = 0; i < nout; ++i) out[i] = Red::finish(out[i], T(0), n);
    }
    m.expose(m.dims, to_signed(os), pass);
  }
  accessor<T, RC> over(T* p) const {
    accessor<T, RC> acc;
    acc.bind_strided(p, out_strides, cd);
    return acc;
  }

  bool dense() const { return m.leaf.dense(); }
  bool reaches(const targets<T>& tg) const { return child.reaches(tg); }
  void plan(targets<T>& tg) {
    if (tg.phase == 1 && child.reaches(tg) && !m.wants_grad) m.request_adjoint();
  }
  void plan_stages(targets<T>& tg) {
    if (!child.reaches(tg)) return;
    child.plan(tg);
    child.plan_stages(tg);
  }
  void run_stages() {
    if (!m.wants_grad) return;
    buffer<T, OS::static_size> count;
    if constexpr (needs_count_v<Red>) {
      count.resize(size_of(m.dims));
      fold_pass<ops::sum_red, T>(child, cd, over(count.data()), over(m.value.data()), all,
                                 [](auto y, auto out) { return math::eq(y, out); });
    }
    reduce_seed<Red, T, RC> seed{over(m.value.data()), over(m.adjoint.data()),
           needs_count_v<Red> ? over(count.data()) : accessor<T, RC>{}, n, all};
    grad_pass<T, RC>(child, cd, seed);
    child.run_stages();
  }
  bool aliases(const T*, const T*) const { return false; }
  void end_pass() {}
  FG_INLINE void row(const dims_t<R>& idx, bool flat) { m.leaf.row(idx, flat); }
  template <class V, bool Flat, bool Grad = false>
  FG_INLINE V fwd(index_t j) const {
    return m.leaf.template fwd<V, Flat>(j);
  }
  template <class V, bool Flat>
  FG_INLINE void bwd(V y, V adj, index_t j) const {
    m.leaf.template bwd<V, Flat>(y, adj, j);
  }
};

template <class X>
inline constexpr bool is_leaf_node_v = false;
template <class T, class S>
inline constexpr bool is_leaf_node_v<expr::view<T, S>> = true;
template <class T, class S>
inline constexpr bool is_leaf_node_v<expr::owned<T, S>> = true;

// A matrix operand of matmul: leaves are read in place, anything else is materialised first.
template <class A>
struct matrix_operand {
  using T = typename A::value_type;
  using S = typename A::shape_type;
  evaluator<A, 2> ev;
  dims_t<2> d;
  buffer<T, is_leaf_node_v<A> ? 0 : S::static_size> store;
  const T* p;
  explicit matrix_operand(const A& a) : ev(a, a.dims()), d(a.dims()) {
    if constexpr (is_leaf_node_v<A>) {
      p = ev.in.base;
    } else {
      store.resize(size_of(d));
      assign_pass<T, 2>(ev, d, store.data());
      p = store.data();
    }
  }
};

template <class A, class B, std::size_t R>
struct evaluator<expr::matmul<A, B>, R> {
  using node = expr::matmul<A, B>;
  using T = typename node::value_type;
  using S = typename node::shape_type;
  using G = gemm_blocking<T>;
  static constexpr bool fixed = A::shape_type::is_static && B::shape_type::is_static;
  static constexpr index_t sm = A::shape_type::static_extents[0],
                           sk = A::shape_type::static_extents[1],
                           sn = B::shape_type::static_extents[1];
  // Workspace for the forward product and for the larger of the two backward ones.
  static constexpr index_t ws_fwd = fixed ? G::workspace(sm, sn, sk) : dyn;
  static constexpr index_t ws_bwd =
      fixed ? std::max(G::workspace(sm, sk, sn), G::workspace(sk, sn, sm)) : dyn;

  matrix_operand<A> a;
  matrix_operand<B> b;
  materialized<T, S, R> m;
  bool grad_a = false, grad_b = false;

  evaluator(const node& e, const dims_t<R>& pass) : a(e.a), b(e.b), m(e.dims()) {
    const index_t M = a.d[0], K = a.d[1], N = b.d[1];
    buffer<T, ws_fwd> ws(G::workspace(M, N, K));
    gemm<T>(M, N, K, a.p, std::ptrdiff_t(K), 1, b.p, std::ptrdiff_t(N), 1, m.value.data(), N, false,
            ws.data());
    m.expose(m.dims, to_signed(contiguous_strides(m.dims)), pass);
  }
  bool dense() const { return m.leaf.dense(); }
  bool reaches(const targets<T>& tg) const { return a.ev.reaches(tg) || b.ev.reaches(tg); }
  void plan(targets<T>& tg) {
    if (tg.phase == 1 && reaches(tg) && !m.wants_grad) m.request_adjoint();
  }
  void plan_stages(targets<T>& tg) {
    grad_a = a.ev.reaches(tg);
    grad_b = b.ev.reaches(tg);
    if (grad_a) {
      a.ev.plan(tg);
      a.ev.plan_stages(tg);
    }
    if (grad_b) {
      b.ev.plan(tg);
      b.ev.plan_stages(tg);
    }
  }
  // dA = dC B^T and dB = A^T dC, each pushed into its operand's subtree by one pass.
  void run_stages() {
    if (!m.wants_grad) return;
    const index_t M = a.d[0], K = a.d[1], N = b.d[1];
    const T* dc = m.adjoint.data();
    buffer<T, ws_bwd> ws(std::max(G::workspace(M, K, N), G::workspace(K, N, M)));
    if (grad_a) {
      push(a, [&](T* da) {
        gemm<T>(M, K, N, dc, std::ptrdiff_t(N), 1, b.p, 1, std::ptrdiff_t(N), da, K, false,
                ws.data());
      });
    }
    if (grad_b) {
      push(b, [&](T* db) {
        gemm<T>(K, N, M, a.p, 1, std::ptrdiff_t(K), dc, std::ptrdiff_t(N), 1, db, N, false,
                ws.data());
      });
    }
  }
  template <class X, class Fill>
  void push(matrix_operand<X>& x, Fill fill) {
    buffer<T, X::shape_type::static_size> g(size_of(x.d));
    fill(g.data());
    memory_seed<T, 2> seed;
    seed.acc.bind(g.data(), x.d, to_signed(contiguous_strides(x.d)), x.d);
    grad_pass<T, 2>(x.ev, x.d, seed);
    x.ev.run_stages();
  }
  bool aliases(const T*, const T*) const { return false; }
  void end_pass() {}
  FG_INLINE void row(const dims_t<R>& idx, bool flat) { m.leaf.row(idx, flat); }
  template <class V, bool Flat, bool Grad = false>
  FG_INLINE V fwd(index_t j) const {
    return m.leaf.template fwd<V, Flat>(j);
  }
  template <class V, bool Flat>
  FG_INLINE void bwd(V y, V adj, index_t j) const {
    m.leaf.template bwd<V, Flat>(y, adj, j);
  }
};

// Transpose and reshape: a tensor is re-addressed in place; a computed operand is materialised
// once (child layout), read re-addressed, and its adjoint pushed back by one pass.
template <class A, std::size_t RL, class Addr, std::size_t R>
struct relayout {
  using T = typename A::value_type;
  static constexpr std::size_t RC = A::shape_type::rank;
  evaluator<A, RC> child;
  dims_t<RC> cd;
  materialized<T, typename A::shape_type, R> m;
  leaf_eval<T, R> direct;  // used when A is a tensor: no copy at all
  bool reach = false;

  relayout(const A& a, const dims_t<RL>& ld, const dims_t<R>& pass)
      : child(a, a.dims()), cd(a.dims()), m(is_leaf_node_v<A> ? dims_t<RC>{} : a.dims()) {
    const auto cs = to_signed(contiguous_strides(cd));
    if constexpr (is_leaf_node_v<A>) {
      direct.bind(child.in.base, ld, Addr::strides(cs, ld), pass, child.ident != nullptr);
    } else {
      assign_pass<T, RC>(child, cd, m.value.data());
      m.expose(ld, Addr::strides(cs, ld), pass);
    }
  }
  leaf_eval<T, R>& leaf() {
    if constexpr (is_leaf_node_v<A>) return direct;
    else return m.leaf;
  }
  const leaf_eval<T, R>& leaf() const {
    if constexpr (is_leaf_node_v<A>) return direct;
    else return m.leaf;
  }
  bool dense() const { return leaf().dense(); }
  bool reaches(const targets<T>& tg) const {
    if constexpr (is_leaf_node_v<A>) return direct.reaches(tg);
    else return child.reaches(tg);
  }
  void plan(targets<T>& tg) {
    if constexpr (is_leaf_node_v<A>) {
      direct.plan(tg);
    } else if (tg.phase == 1 && child.reaches(tg) && !m.wants_grad) {
      m.request_adjoint();
    }
  }
  void plan_stages(targets<T>& tg) {
    if constexpr (!is_leaf_node_v<A>) {
      reach = child.reaches(tg);
      if (!reach) return;
      child.plan(tg);
      child.plan_stages(tg);
    }
  }
  void run_stages() {
    if constexpr (!is_leaf_node_v<A>) {
      if (!reach) return;
      memory_seed<T, RC> seed;
      seed.acc.bind(m.adjoint.data(), cd, to_signed(contiguous_strides(cd)), cd);
      grad_pass<T, RC>(child, cd, seed);
      child.run_stages();
    }
  }
  bool aliases(const T* lo, const T* hi) const {
    if constexpr (is_leaf_node_v<A>) return direct.aliases(lo, hi);
    else return false;
  }
  void end_pass() {}
  FG_INLINE void row(const dims_t<R>& idx, bool flat) { leaf().row(idx, flat); }
  template <class V, bool Flat, bool Grad = false>
  FG_INLINE V fwd(index_t j) const {
    return leaf().template fwd<V, Flat>(j);
  }
  template <class V, bool Flat>
  FG_INLINE void bwd(V y, V adj, index_t j) const {
    leaf().template bwd<V, Flat>(y, adj, j);
  }
};

// How a relayout addresses its operand's contiguous elements under the new extents `ld`.
struct reversed_axes {
  template <std::size_t N>
  static strides_t<N> strides(const strides_t<N>& cs, const dims_t<N>&) {
    strides_t<N> r{};
    for (std::size_t k = 0; k < N; ++k) r[k] = cs[N - 1 - k];
    return r;
  }
};
struct row_major {
  template <std::size_t NC, std::size_t N>
  static strides_t<N> strides(const strides_t<NC>&, const dims_t<N>& ld) {
    return to_signed(contiguous_strides(ld));
  }
};

template <class A, std::size_t R>
struct evaluator<expr::transpose<A>, R> : relayout<A, A::shape_type::rank, reversed_axes, R> {
  evaluator(const expr::transpose<A>& e, const dims_t<R>& pass)
      : relayout<A, A::shape_type::rank, reversed_axes, R>(e.arg, e.dims(), pass) {}
};
template <class A, class S, std::size_t R>
struct evaluator<expr::reshape<A, S>, R> : relayout<A, S::rank, row_major, R> {
  evaluator(const expr::reshape<A, S>& e, const dims_t<R>& pass)
      : relayout<A, S::rank, row_major, R>(e.arg, e.dims(), pass) {}
};

}  // namespace fg::exec
