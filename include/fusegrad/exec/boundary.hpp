// fusegrad/exec/boundary.hpp — fusion boundaries: reductions, matmul, relayouts of computed values
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/buffer.hpp"
#include "fusegrad/exec/evaluator.hpp"
#include "fusegrad/exec/gemm.hpp"
#include "fusegrad/expr/layout.hpp"
#include "fusegrad/expr/loss.hpp"
#include "fusegrad/expr/matmul.hpp"
#include "fusegrad/expr/reduce.hpp"

#include <algorithm>
#include <cmath>

FG_DIAGNOSTICS_BEGIN

namespace fg::exec {

// A boundary materialises its value before the enclosing pass, acts as a leaf within it
// (accumulating the adjoint it receives into its own buffer), and afterwards runs its backward
// stage: the passes that push that adjoint into its operands.

// Inside the enclosing pass a boundary is a leaf over its materialised value, provided by
// `leaf()`.
template <class Derived, class T, std::size_t R> struct acts_as_leaf {
  bool dense() const { return self().leaf().dense(); }
  bool aliases(const T*, const T*) const { return false; }
  auto kernel() const { return self().leaf().kernel(); }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
};

// Holds a materialised value of shape S and exposes it as a leaf of the enclosing pass.
template <class T, class S, std::size_t R, class Mode> struct materialized {
  scratch<T, S::static_size, Mode> value;
  scratch<T, Mode::backward ? S::static_size : 0, Mode> adjoint;
  dims_t<S::rank> dims{};
  leaf_eval<T, R> leaf;
  bool wants_grad = false;

  // Every element of `value` is written before it is read: no zero-fill. The adjoint is
  // accumulated into, so it is zeroed, and only when a gradient asks for it.
  explicit materialized(const dims_t<S::rank>& d)
      : value(size_of(d), false), adjoint(0, false), dims(d) {}
  // Read `value` with element strides `vs` (contiguous, or reversed for a transpose).
  template <std::size_t RL>
  void expose(const dims_t<RL>& ld, const strides_t<RL>& vs, const dims_t<R>& out) {
    leaf.bind(value.data(), ld, vs, out, false);
  }
  void request_adjoint() {
    wants_grad = true;
    adjoint.resize(size_of(dims), false);
    std::fill_n(adjoint.data(), size_of(dims), T(0));
    leaf.bind_adjoint(adjoint.data());
  }
};

template <class Red>
concept has_prepass = requires {
  typename Red::prepass;
};
// How many per-slice statistics Red's backward stage folds first (see ops/reduce.hpp).
template <class Red>
inline constexpr int stats_v = [] {
  if constexpr (requires { Red::stats; })
    return int(Red::stats);
  else
    return 0;
}();

// The seed of a reduction's operand: each element's local partial times the slice's adjoint.
template <class Red, class T, std::size_t RC> struct reduce_seed {
  accessor<T, RC> out, adj, s0, s1;  // s0, s1: the slice statistics (unbound when unused)
  T n;
  bool uniform;
  bool with_stats;
  bool dense() const { return uniform; }
  reduce_seed kernel() const { return *this; }
  FG_INLINE void row(const dims_t<RC>& idx, bool flat) {
    if (flat)
      return;  // uniform: every element reads slot 0
    out.set_row(idx, false);
    adj.set_row(idx, false);
    if (s0.base)
      s0.set_row(idx, false);
    if (s1.base)
      s1.set_row(idx, false);
  }
  template <class V, bool Flat> FG_INLINE V get(V y, index_t j) const {
    const V o = Flat ? V(*out.base) : out.template load<V, false>(j);  // Flat: uniform slot 0
    const V a = Flat ? V(*adj.base) : adj.template load<V, false>(j);
    if constexpr (requires { Red::seed_without_stats(y, o, a, V(n)); })
      if (!with_stats)  // loop-invariant: the compiler unswitches it
        return Red::seed_without_stats(y, o, a, V(n));
    if constexpr (Flat)
      return Red::seed(y, o, a, V(n), {{V(stat(s0)), V(stat(s1))}});
    else
      return Red::seed(y, o, a, V(n), {{stat<V>(s0, j), stat<V>(s1, j)}});
  }
  static FG_INLINE T stat(const accessor<T, RC>& a) { return a.base ? *a.base : T(0); }
  template <class V> static FG_INLINE V stat(const accessor<T, RC>& a, index_t j) {
    return a.base ? a.template load<V, false>(j) : V(0);
  }
};

template <class Red, class A, class Set, bool Keep, std::size_t R, class Mode>
struct evaluator<expr::reduce<Red, A, Set, Keep>, R, Mode>
    : acts_as_leaf<evaluator<expr::reduce<Red, A, Set, Keep>, R, Mode>,
                   typename expr::reduce<Red, A, Set, Keep>::value_type, R> {
  using node = expr::reduce<Red, A, Set, Keep>;
  using T = typename node::value_type;
  using OS = typename node::shape_type;
  static constexpr std::size_t RC = node::in_rank;
  static constexpr std::size_t RO = node::out_rank;
  static constexpr bool all = [] {
    for (std::size_t k = 0; k < RC; ++k)
      if (!Set::has(k))
        return false;
    return true;
  }();

  evaluator<A, RC, Mode> child;
  dims_t<RC> cd;
  materialized<T, OS, R, Mode> m;
  strides_t<RC> out_strides{};  // the output's strides seen from the child's pass
  T n;                          // elements folded into each output
  // Scratch lives in the evaluator, not on the stack: with static shapes the memory of a whole
  // step is sizeof(evaluator), which firmware can place (fg::gradient_workspace).
  using stat_buffer =
      scratch<T, (Mode::backward && (stats_v<Red>) > 0 ? OS::static_size : 0), Mode>;
  scratch<T, has_prepass<Red> ? OS::static_size : 0, Mode> pre{0,
                                                               false};   // the prepass's per slice
  stat_buffer stat[2] = {stat_buffer(0, false), stat_buffer(0, false)};  // backward statistics

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
    for (index_t i = 0; i < nout; ++i)
      out[i] = Red::template identity<T>();
    if constexpr (has_prepass<Red>) {
      using P = typename Red::prepass;
      pre.resize(nout, false);
      for (index_t i = 0; i < nout; ++i)
        pre.data()[i] = P::template identity<T>();
      fold_pass<P, T>(child, cd, over(pre.data()), accessor<T, RC>{}, all,
                      [](auto y, auto) { return y; });
      for (index_t i = 0; i < nout; ++i)  // an all -inf slice must not give inf - inf
        if (!std::isfinite(pre.data()[i]))
          pre.data()[i] = T(0);
      fold_pass<Red, T>(child, cd, over(out), over(pre.data()), all,
                        [](auto y, auto p) { return Red::map(y, p); });
      for (index_t i = 0; i < nout; ++i)
        out[i] = Red::finish(out[i], pre.data()[i], n);
    } else {
      fold_pass<Red, T>(child, cd, over(out), accessor<T, RC>{}, all,
                        [](auto y, auto) { return y; });
      for (index_t i = 0; i < nout; ++i)
        out[i] = Red::finish(out[i], T(0), n);
    }
    m.expose(m.dims, to_signed(os), pass);
  }
  accessor<T, RC> over(T* p) const {
    accessor<T, RC> acc;
    acc.bind_strided(p, out_strides, cd);
    return acc;
  }

  bool reaches(const targets<T>& tg) const { return child.reaches(tg); }
  void plan(targets<T>& tg) {
    if (tg.phase == 1 && child.reaches(tg) && !m.wants_grad)
      m.request_adjoint();
  }
  void plan_stages(targets<T>& tg) {
    if (child.reaches(tg))
      tg.plan_pass(child);
  }
  void run_stages() {
    if (!m.wants_grad)
      return;
    bool need = false;
    if constexpr (requires { Red::needs_stats(T(0)); }) {
      for (index_t i = 0; i < size_of(m.dims); ++i)
        need = need || Red::needs_stats(m.value.data()[i]);
    } else {
      need = (stats_v<Red>) > 0;
    }
    if constexpr ((stats_v<Red>) > 0)
      if (need)
        fold_stats(std::make_integer_sequence<int, stats_v<Red>>{});
    reduce_seed<Red, T, RC> seed{
        over(m.value.data()),
        over(m.adjoint.data()),
        need && (stats_v<Red>) > 0 ? over(stat[0].data()) : accessor<T, RC>{},
        need && (stats_v<Red>) > 1 ? over(stat[1].data()) : accessor<T, RC>{},
        n,
        all,
        need};
    grad_pass<T, RC>(child, cd, seed);
    child.run_stages();
  }
  // Statistic I per slice: Red::stat<I>(y, out) folded with Red::stat_fold<I>. (A member per I,
  // not a lambda in the fold expression: nvcc's front end rejects the pack inside a nested lambda.)
  template <int... I> void fold_stats(std::integer_sequence<int, I...>) { (fold_stat<I>(), ...); }
  template <int I> void fold_stat() {
    using F = typename Red::template stat_fold<I>;
    const index_t nout = size_of(m.dims);
    stat[I].resize(nout, false);
    std::fill(stat[I].data(), stat[I].data() + nout, F::template identity<T>());
    fold_pass<F, T>(child, cd, over(stat[I].data()), over(m.value.data()), all,
                    [](auto y, auto out) { return Red::template stat<I>(y, out); });
  }
  leaf_eval<T, R>& leaf() { return m.leaf; }
  const leaf_eval<T, R>& leaf() const { return m.leaf; }
};

template <class X> inline constexpr bool is_leaf_node_v = false;
template <class T, class S> inline constexpr bool is_leaf_node_v<expr::view<T, S>> = true;
template <class T, class S> inline constexpr bool is_leaf_node_v<expr::owned<T, S>> = true;

// A matrix operand of matmul: leaves are read in place, anything else is materialised first.
template <class A, class Mode> struct matrix_operand {
  using T = typename A::value_type;
  using S = typename A::shape_type;
  evaluator<A, 2, Mode> ev;
  dims_t<2> d;
  scratch<T, is_leaf_node_v<A> ? 0 : S::static_size, Mode> store{0, false};
  scratch<T, Mode::backward ? S::static_size : 0, Mode> grad{
      0, false};  // the adjoint a backward pushes into A
  const T* p;
  explicit matrix_operand(const A& a) : ev(a, a.dims()), d(a.dims()) {
    if constexpr (is_leaf_node_v<A>) {
      p = ev.data();
    } else {
      store.resize(size_of(d), false);
      assign_pass<T, 2>(ev, d, store.data());
      p = store.data();
    }
  }
  // Pushes an adjoint into the operand's subtree by one pass; `fill` writes it into `grad`.
  template <class Fill> void push(Fill fill) {
    grad.resize(size_of(d), false);
    fill(grad.data());
    memory_seed<T, 2> seed;
    seed.acc.bind(grad.data(), d, contiguous(d), d);
    grad_pass<T, 2>(ev, d, seed);
    ev.run_stages();
  }
};

// A boundary over two matrix operands (matmul, softmax cross-entropy): they are materialised
// (or read in place), the boundary's value is materialised, and its backward stage pushes into
// each operand whose subtree reaches a gradient target.
template <class Derived, class A, class B, class S, std::size_t R, class Mode>
struct matrix_boundary : acts_as_leaf<Derived, typename A::value_type, R> {
  using T = typename A::value_type;
  matrix_operand<A, Mode> a;
  matrix_operand<B, Mode> b;
  materialized<T, S, R, Mode> m;
  bool grad_a = false, grad_b = false;

  matrix_boundary(const A& ea, const B& eb, const dims_t<S::rank>& d) : a(ea), b(eb), m(d) {}
  bool reaches(const targets<T>& tg) const { return a.ev.reaches(tg) || b.ev.reaches(tg); }
  void plan(targets<T>& tg) {
    if (tg.phase == 1 && reaches(tg) && !m.wants_grad)
      m.request_adjoint();
  }
  void plan_stages(targets<T>& tg) {
    grad_a = a.ev.reaches(tg);
    grad_b = b.ev.reaches(tg);
    if ((grad_a || grad_b) && tg.phase == 0) {  // the backward reads both operands again
      tg.note_read(a.p, size_of(a.d));
      tg.note_read(b.p, size_of(b.d));
    }
    if (grad_a)
      tg.plan_pass(a.ev);
    if (grad_b)
      tg.plan_pass(b.ev);
  }
  leaf_eval<T, R>& leaf() { return m.leaf; }
  const leaf_eval<T, R>& leaf() const { return m.leaf; }
};

template <class A, class B, std::size_t R, class Mode>
struct evaluator<expr::matmul<A, B>, R, Mode>
    : matrix_boundary<evaluator<expr::matmul<A, B>, R, Mode>, A, B,
                      typename expr::matmul<A, B>::shape_type, R, Mode> {
  using node = expr::matmul<A, B>;
  using base = matrix_boundary<evaluator, A, B, typename node::shape_type, R, Mode>;
  using T = typename node::value_type;
  using G = gemm_blocking<T>;
  using base::a, base::b, base::m, base::grad_a, base::grad_b;
  static constexpr bool fixed = A::shape_type::is_static && B::shape_type::is_static;
  static constexpr index_t sm = A::shape_type::static_extents[0],
                           sk = A::shape_type::static_extents[1],
                           sn = B::shape_type::static_extents[1];
  // Workspace for the forward product and for the larger of the two backward ones.
  static constexpr index_t ws_fwd = fixed ? G::workspace(sm, sn, sk) : dyn;
  static constexpr index_t ws_bwd =
      fixed ? std::max(G::workspace(sm, sk, sn), G::workspace(sk, sn, sm)) : dyn;

  // GEMM packing, here rather than on the stack.
  scratch<T, Mode::backward ? std::max(ws_fwd, ws_bwd) : ws_fwd, Mode> ws{0, false};

  evaluator(const node& e, const dims_t<R>& pass) : base(e.a, e.b, e.dims()) {
    const index_t M = a.d[0], K = a.d[1], N = b.d[1];
    ws.resize(G::workspace(M, N, K), false);
    gemm<T>(M, N, K, a.p, std::ptrdiff_t(K), 1, b.p, std::ptrdiff_t(N), 1, m.value.data(), N, false,
            ws.data());
    m.expose(m.dims, contiguous(m.dims), pass);
  }
  // dA = dC B^T and dB = A^T dC, each pushed into its operand's subtree by one pass.
  void run_stages() {
    if (!m.wants_grad)
      return;
    const index_t M = a.d[0], K = a.d[1], N = b.d[1];
    const T* dc = m.adjoint.data();
    ws.resize(std::max(G::workspace(M, K, N), G::workspace(K, N, M)), false);
    if (grad_a) {
      a.push([&](T* da) {
        gemm<T>(M, K, N, dc, std::ptrdiff_t(N), 1, b.p, 1, std::ptrdiff_t(N), da, K, false,
                ws.data());
      });
    }
    if (grad_b) {
      b.push([&](T* db) {
        gemm<T>(K, N, M, a.p, 1, std::ptrdiff_t(K), dc, std::ptrdiff_t(N), 1, db, N, false,
                ws.data());
      });
    }
  }
};

// Softmax cross-entropy per row over logits a and targets b: each is materialised once; the
// backward pushes the closed-form partials of ops::softmax_cross_entropy_op, times each row's
// adjoint.
template <class Z, class Y, std::size_t R, class Mode>
struct evaluator<expr::softmax_cross_entropy<Z, Y>, R, Mode>
    : matrix_boundary<evaluator<expr::softmax_cross_entropy<Z, Y>, R, Mode>, Z, Y,
                      typename expr::softmax_cross_entropy<Z, Y>::shape_type, R, Mode> {
  using node = expr::softmax_cross_entropy<Z, Y>;
  using base = matrix_boundary<evaluator, Z, Y, typename node::shape_type, R, Mode>;
  using T = typename node::value_type;
  using rule = ops::softmax_cross_entropy_op;
  using base::a, base::b, base::m, base::grad_a, base::grad_b;

  scratch<typename rule::template row<T>, node::shape_type::static_size, Mode> rows{0, false};

  evaluator(const node& e, const dims_t<R>& pass) : base(e.logits, e.target, e.dims()) {
    const index_t n = a.d[0], c = a.d[1];
    rows.resize(n, false);
    for (index_t r = 0; r < n; ++r) {
      rows.data()[r] = rule::forward(a.p + r * c, b.p + r * c, c);
      m.value.data()[r] = rows.data()[r].loss;
    }
    m.expose(m.dims, contiguous(m.dims), pass);
  }
  void run_stages() {
    if (!m.wants_grad)
      return;
    const index_t n = a.d[0], c = a.d[1];
    const T* adj = m.adjoint.data();
    if (grad_a)
      a.push([&](T* dz) {
        for (index_t r = 0; r < n; ++r)
          for (index_t j = 0; j < c; ++j)
            dz[r * c + j] = adj[r] * rule::d_logit(a.p[r * c + j], b.p[r * c + j], rows.data()[r]);
      });
    if (grad_b)
      b.push([&](T* dy) {
        for (index_t r = 0; r < n; ++r)
          for (index_t j = 0; j < c; ++j)
            dy[r * c + j] = adj[r] * rule::d_target(a.p[r * c + j], rows.data()[r]);
      });
  }
};

// Transpose and reshape: a tensor is re-addressed in place; a computed operand is materialised
// once (child layout), read re-addressed, and its adjoint pushed back by one pass.
template <class A, std::size_t RL, class Addr, std::size_t R, class Mode>
struct relayout : acts_as_leaf<relayout<A, RL, Addr, R, Mode>, typename A::value_type, R> {
  using T = typename A::value_type;
  static constexpr std::size_t RC = A::shape_type::rank;
  evaluator<A, RC, Mode> child;
  dims_t<RC> cd;
  materialized<T, typename A::shape_type, R, Mode> m;
  leaf_eval<T, R> direct;  // used when A is a tensor: no copy at all
  bool reach = false;

  relayout(const A& a, const dims_t<RL>& ld, const dims_t<R>& pass)
      : child(a, a.dims()), cd(a.dims()), m(is_leaf_node_v<A> ? dims_t<RC>{} : a.dims()) {
    const auto cs = contiguous(cd);
    if constexpr (is_leaf_node_v<A>) {
      direct.bind(child.data(), ld, Addr::strides(cs, ld), pass, child.ident != nullptr);
    } else {
      assign_pass<T, RC>(child, cd, m.value.data());
      m.expose(ld, Addr::strides(cs, ld), pass);
    }
  }
  leaf_eval<T, R>& leaf() {
    if constexpr (is_leaf_node_v<A>)
      return direct;
    else
      return m.leaf;
  }
  const leaf_eval<T, R>& leaf() const {
    if constexpr (is_leaf_node_v<A>)
      return direct;
    else
      return m.leaf;
  }
  bool reaches(const targets<T>& tg) const {
    if constexpr (is_leaf_node_v<A>)
      return direct.reaches(tg);
    else
      return child.reaches(tg);
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
      if (reach)
        tg.plan_pass(child);
    }
  }
  void run_stages() {
    if constexpr (!is_leaf_node_v<A>) {
      if (!reach)
        return;
      memory_seed<T, RC> seed;
      seed.acc.bind(m.adjoint.data(), cd, contiguous(cd), cd);
      grad_pass<T, RC>(child, cd, seed);
      child.run_stages();
    }
  }
  bool aliases(const T* lo, const T* hi) const {
    if constexpr (is_leaf_node_v<A>)
      return direct.aliases(lo, hi);
    else
      return false;
  }
};

// How a relayout addresses its operand's contiguous elements under the new extents `ld`.
struct reversed_axes {
  template <std::size_t N> static strides_t<N> strides(const strides_t<N>& cs, const dims_t<N>&) {
    strides_t<N> r{};
    for (std::size_t k = 0; k < N; ++k)
      r[k] = cs[N - 1 - k];
    return r;
  }
};
struct row_major {
  template <std::size_t NC, std::size_t N>
  static strides_t<N> strides(const strides_t<NC>&, const dims_t<N>& ld) {
    return contiguous(ld);
  }
};

template <class A, std::size_t R, class Mode>
struct evaluator<expr::transpose<A>, R, Mode>
    : relayout<A, A::shape_type::rank, reversed_axes, R, Mode> {
  evaluator(const expr::transpose<A>& e, const dims_t<R>& pass)
      : relayout<A, A::shape_type::rank, reversed_axes, R, Mode>(e.arg, e.dims(), pass) {}
};
template <class A, class S, std::size_t R, class Mode>
struct evaluator<expr::reshape<A, S>, R, Mode> : relayout<A, S::rank, row_major, R, Mode> {
  evaluator(const expr::reshape<A, S>& e, const dims_t<R>& pass)
      : relayout<A, S::rank, row_major, R, Mode>(e.arg, e.dims(), pass) {}
};

}  // namespace fg::exec

FG_DIAGNOSTICS_END
