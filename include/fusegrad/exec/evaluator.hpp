// fusegrad/exec/evaluator.hpp — the planner: an evaluator per node type, bound to one pass's
// extents SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/exec/pass.hpp"
#include "fusegrad/expr/node.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg::exec {

// An evaluator<Node, R> prepares Node to run inside a pass over R-d extents: it binds leaves to
// the pass, materialises boundaries (reductions, matmul, relayouts of computed values: see
// boundary.hpp) before the pass, plans gradients, and hands the loop a kernel (kernel.hpp).
//
// Gradient planning walks the tree in execution order (`plan` for the current pass, then
// `plan_stages` for the passes that boundaries run later): a target met for the first time
// un-broadcast *stores* its gradient, every later meeting *adds*, so no gradient buffer needs
// zeroing unless an occurrence accumulates into it (a broadcast, or a second index map within
// one pass: see target).
//
// Mode says how the evaluator will be used, which decides the scratch its boundaries hold:
// forward_mode (assignment, fg::eval) leaves out what only a backward stage uses (adjoints,
// pushed gradients, backward GEMM packing); gradient_mode keeps it, static sizes inline up to
// `inline_limit` bytes each and on the heap beyond (the planner sits on the stack);
// workspace_mode (a gradient_workspace) keeps every static size inline, so a step with static
// shapes never touches the heap and its planner's size is all the memory it needs.
// `device` modes (fusegrad/cuda/) plan a pass that a CUDA kernel runs: leaves hold device
// addresses, and nothing is computed on the host.
struct forward_mode {
  static constexpr bool backward = false, all_inline = false, device = false;
};
struct gradient_mode {
  static constexpr bool backward = true, all_inline = false, device = false;
};
struct workspace_mode {
  static constexpr bool backward = true, all_inline = true, device = false;
};
template <class T, index_t N, class Mode>
using scratch = buffer<T, N, N != dyn && (Mode::all_inline || N * sizeof(T) <= inline_limit)>;

template <class Node, std::size_t R, class Mode = gradient_mode> struct evaluator;

// A gradient requested by the caller, found by the address of its tensor's data.
//
// Within one pass, the first occurrence of a target may *store* its gradient and later ones
// *add* only if every occurrence visits the elements in the same order: the same index map, so
// that each element is stored (in this iteration) before anything adds to it. A leaf read through
// two maps in one pass (x * transpose(x)) would add into elements not stored yet, and have its
// sums overwritten when the store reaches them: such a target, like a broadcast one, is zeroed
// first and every occurrence adds.
template <class T> struct target {
  const T* data;
  T* grad;
  index_t size;
  bool accumulates = false;  // some occurrence must add into zeroed memory
  bool seen = false;
  bool aliased = false;   // `grad` overlaps memory the passes read (fg::detail::own_buffers)
  T* caller = nullptr;    // then: the caller's buffer, while the passes write their own `grad`
  // The index map (strides over the pass) of the first occurrence in pass `map_pass`.
  int map_pass = -1;
  const std::ptrdiff_t* map = nullptr;
};
template <class T> struct targets {
  target<T>* items = nullptr;
  std::size_t count = 0;
  int phase = 0;          // 0: find accumulating occurrences and aliasing; 1: assign store/add
  bool deferred = false;  // planning inside a one-element subtree: its write comes after the pass
  int pass = 0;           // which pass is being planned (phase 0), in execution order
  bool aliased = false;   // some target's gradient memory overlaps what the passes read
  target<T>* find(const T* p, index_t n) const {
    for (std::size_t i = 0; i < count; ++i)
      if (items[i].data == p && items[i].size == n)
        return &items[i];
    return nullptr;
  }
  // A boundary's backward stage is a pass of its own: its occurrences run after the current ones.
  template <class Ev> void plan_pass(Ev& ev) {
    if (phase == 0)
      ++pass;
    ev.plan(*this);
    ev.plan_stages(*this);
  }
  // Whether an occurrence with index map `stride` (rank R) in the current pass walks the target's
  // elements as its first occurrence in this pass does (phase 0).
  template <std::size_t R> bool same_map(target<T>& t, const strides_t<R>& stride) const {
    if (t.map_pass != pass) {
      t.map_pass = pass;
      t.map = stride.data();
      return true;
    }
    for (std::size_t k = 0; k < R; ++k)
      if (t.map[k] != stride[k])
        return false;
    return true;
  }
  // The gradient passes read [p, p + n): a target whose gradient memory overlaps it must not be
  // written in place (phase 0). Returns the target whose tensor is [p, p + n) when `is_target`
  // (find's answer, in the same walk).
  target<T>* note_read(const T* p, index_t n, bool is_target = false) {
    target<T>* found = nullptr;
    for (std::size_t i = 0; i < count; ++i) {
      if (p < items[i].grad + items[i].size && items[i].grad < p + n)
        items[i].aliased = aliased = true;
      if (is_target && !found && items[i].data == p && items[i].size == n)
        found = &items[i];
    }
    return found;
  }
};
// A leaf of a pass: memory read through an accessor, optionally a gradient target.
template <class T, std::size_t R> struct leaf_eval {
  leaf_kernel<T, R> k;
  const T* ident = nullptr;  // data address a target is matched against (null: not a target)
  index_t count = 0;         // elements behind this leaf
  index_t pass_size = 0;

  template <std::size_t RL>
  void bind(const T* p, const dims_t<RL>& ld, const strides_t<RL>& ls, const dims_t<R>& out,
            bool is_target_candidate) {
    k.in.bind(const_cast<T*>(p), ld, ls, out);
    ident = is_target_candidate ? p : nullptr;
    count = size_of(ld);
    pass_size = size_of(out);
  }
  // Boundaries accumulate their adjoint into their own zeroed buffer laid out like their values.
  void bind_adjoint(T* g) {
    k.grad_base = g;
    k.mode = write_mode::add;
  }
  const T* data() const { return k.in.base; }
  bool dense() const { return k.in.dense; }
  bool reaches(const targets<T>& tg) const { return ident && tg.find(ident, count); }
  void plan(targets<T>& tg) {
    // Accumulate unless this occurrence writes each element exactly once, inside the loop, in
    // the order of the target's other occurrences in this pass: a broadcast, an empty pass
    // (writes nothing), a deferred one-element write and a second index map all add.
    if (tg.phase == 0) {
      if (target<T>* t = tg.note_read(k.in.base, count, ident != nullptr)) {
        const bool bc = count != pass_size || tg.deferred;
        t->accumulates |= bc || !tg.same_map(*t, k.in.stride);
      }
      return;
    }
    target<T>* t = ident ? tg.find(ident, count) : nullptr;
    if (!t)
      return;
    k.grad_base = t->grad;
    k.mode =
        t->accumulates ? write_mode::accumulate : t->seen ? write_mode::add : write_mode::store;
    t->seen = true;
  }
  void plan_stages(targets<T>&) {}
  void run_stages() {}
  bool aliases(const T* lo, const T* hi) const {
    const T* p = k.in.base;
    const bool overlap = p < hi && p + count > lo;
    return overlap && !(p == lo && k.in.dense && count == pass_size);
  }
  leaf_kernel<T, R> kernel() const { return k; }
};

template <std::size_t N> strides_t<N> contiguous(const dims_t<N>& d) {
  return to_signed(contiguous_strides(d));
}

template <class T, class S, std::size_t R, class Mode>
struct evaluator<expr::view<T, S>, R, Mode> : leaf_eval<T, R> {
  static_assert(!Mode::device,
                "fg::gpu: this expression reads a host tensor; copy it to the device first with "
                "`.to(fg::cuda)`");
  evaluator(const expr::view<T, S>& v, const dims_t<R>& out) {
    this->bind(v.ptr, v.dims(), contiguous(v.dims()), out, true);
  }
};
// A temporary owned by the expression is read like a view but is never a gradient target.
template <class T, class S, std::size_t R, class Mode>
struct evaluator<expr::owned<T, S>, R, Mode> : leaf_eval<T, R> {
  static_assert(!Mode::device,
                "fg::gpu: this expression holds a host tensor; copy it to the device first with "
                "`.to(fg::cuda)`");
  evaluator(const expr::owned<T, S>& o, const dims_t<R>& out) {
    this->bind(o.value.data(), o.dims(), contiguous(o.dims()), out, false);
  }
};

template <class T, std::size_t R, class Mode> struct evaluator<expr::scalar<T>, R, Mode> {
  T v;
  evaluator(const expr::scalar<T>& s, const dims_t<R>&) : v(s.value) {}
  static constexpr bool dense() { return true; }
  bool reaches(const targets<T>&) const { return false; }
  void plan(targets<T>&) {}
  void plan_stages(targets<T>&) {}
  void run_stages() {}
  bool aliases(const T*, const T*) const { return false; }
  scalar_kernel<T, R> kernel() const { return {v}; }
};

// A node whose static shape is one element (a 0-d parameter, log(sigma), sum(x) inside a larger
// expression) is the same for every element of a pass: its kernel computes it once and sums the
// adjoint it receives in registers, pushing it down once when the pass ends. (Not on a device,
// where thousands of threads share the pass: there a one-element leaf is read as a broadcast
// and its gradient accumulated atomically.)
template <class A>
inline constexpr bool uniform_v = A::shape_type::is_static&& A::shape_type::static_size == 1 &&
                                  !std::is_same_v<A, expr::scalar<typename A::value_type>>;

template <class A, std::size_t R, class Mode> struct uniform_eval {
  using T = typename A::value_type;
  evaluator<A, R, Mode> inner;
  uniform_eval(const A& a, const dims_t<R>& out) : inner(a, out) {}
  static constexpr bool dense() { return true; }
  bool reaches(const targets<T>& tg) const { return inner.reaches(tg); }
  void plan(targets<T>& tg) {
    const bool outer = tg.deferred;
    tg.deferred = true;
    inner.plan(tg);
    tg.deferred = outer;
  }
  void plan_stages(targets<T>& tg) { inner.plan_stages(tg); }
  void run_stages() { inner.run_stages(); }
  bool aliases(const T* lo, const T* hi) const { return inner.aliases(lo, hi); }
  auto kernel() const {
    auto k = inner.kernel();
    k.row(dims_t<R>{}, true);
    const auto rec = k.template fwd<T, true, true>(0);
    using Rec = std::remove_const_t<decltype(rec)>;  // kernels are assigned (exec/pass.hpp)
    return uniform_kernel<decltype(k), Rec, T, R>{k, rec, value_of(rec)};
  }
};

template <class A, std::size_t R, class Mode>
using operand_evaluator = std::conditional_t<uniform_v<A> && !Mode::device,
                                             uniform_eval<A, R, Mode>, evaluator<A, R, Mode>>;

template <class Op, class... A, std::size_t R, class Mode>
struct evaluator<expr::elementwise<Op, A...>, R, Mode> {
  using T = typename expr::elementwise<Op, A...>::value_type;
  using seq = std::index_sequence_for<A...>;
  fg::detail::tuple<operand_evaluator<A, R, Mode>...> kids;

  evaluator(const expr::elementwise<Op, A...>& e, const dims_t<R>& out)
      : kids(make(e, out, seq{})) {}
  template <std::size_t... I>
  static fg::detail::tuple<operand_evaluator<A, R, Mode>...> make(
      const expr::elementwise<Op, A...>& e, const dims_t<R>& out, std::index_sequence<I...>) {
    return {{operand_evaluator<A, R, Mode>(fg::detail::get<I>(e.args), out)}...};
  }

  bool dense() const {
    return all([](const auto& k) { return k.dense(); });
  }
  bool reaches(const targets<T>& tg) const {
    return !all([&](const auto& k) { return !k.reaches(tg); });
  }
  bool aliases(const T* lo, const T* hi) const {
    return !all([&](const auto& k) { return !k.aliases(lo, hi); });
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
  auto kernel() const { return kernel_impl(seq{}); }

 private:
  template <class P> bool all(P p) const {
    bool r = true;
    fg::detail::for_each(kids, [&](const auto& k) { r = r && p(k); });
    return r;
  }
  template <std::size_t... I> auto kernel_impl(std::index_sequence<I...>) const {
    using K = elementwise_kernel<Op, R, decltype(fg::detail::get<I>(kids).kernel())...>;
    return K{{{fg::detail::get<I>(kids).kernel()}...}};
  }
};

}  // namespace fg::exec

#include "fusegrad/exec/boundary.hpp"

FG_DIAGNOSTICS_END
