// fusegrad/grad/reverse.hpp — compile-time reverse mode: fg::grad, fg::value_and_grad, fg::vjp
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/exec/assign.hpp"

#include <algorithm>
#include <memory>
#include <new>
#include <tuple>
#include <utility>

FG_DIAGNOSTICS_BEGIN

namespace fg {

namespace detail {

template <class E> inline constexpr bool is_total_sum_v = false;
template <class Red, class A, std::size_t R, bool K>
inline constexpr bool is_total_sum_v<expr::reduce<Red, A, expr::detail::all_axes<R>, K>> =
    std::is_same_v<Red, ops::sum_red> || std::is_same_v<Red, ops::mean_red>;

template <class X> using grad_of_t = tensor<typename X::value_type, typename X::shape_type>;

// Plans phase `phase` over every pass, in execution order (see exec::targets).
template <class T, class Ev> void plan_phase(Ev& ev, exec::targets<T>& tg, int phase) {
  tg.phase = phase;
  tg.pass = 0;
  ev.plan(tg);
  ev.plan_stages(tg);
}
template <class T> bool needs_zero(const exec::target<T>& t) {
  return t.accumulates || !t.seen;  // reached by accumulation, or not at all
}
// A tensor named twice gets its gradient twice, but the passes only write the first: the index
// of the earlier target item i repeats, or i.
template <class T> std::size_t first_alias(const exec::target<T>* items, std::size_t i) {
  for (std::size_t j = 0; j < i; ++j)
    if (items[i].data == items[j].data && items[i].size == items[j].size)
      return j;
  return i;
}

// Host memory for own_buffers: the heap, or where there is none (FG_HAS_HEAP), an error.
template <class T> struct host_memory {
  static T* allocate(index_t n) {
#if FG_HAS_HEAP
    return new T[std::size_t(n)];
#else
    (void)n;
    raise_error(
        "fg::value_and_grad_into(): a gradient buffer overlaps a tensor the expression reads; "
        "without a heap (FUSEGRAD_NO_HEAP, bare-metal) give each gradient memory of its own");
#endif
  }
  static void release([[maybe_unused]] T* p) noexcept {
#if FG_HAS_HEAP
    delete[] p;
#endif
  }
  static void copy(T* dst, const T* src, index_t n) { std::copy_n(src, n, dst); }
};
// A gradient buffer that overlaps memory the passes still read (fg::value_and_grad_into(f,
// std::tie(x), x), or a gradient written over another input) must not be written while they
// run: between the planning phases, such targets get memory of their own (from Memory, the only
// allocation of a static-shape gradient, and only then), copied into the caller's at the end.
template <class T, class Memory> class own_buffers {
 public:
  own_buffers(exec::target<T>* items, std::size_t n) : items_(items), n_(n) {}
  own_buffers(const own_buffers&) = delete;
  own_buffers& operator=(const own_buffers&) = delete;
  // Before planning phase 1 (a separate step from construction, so that the destructor frees
  // what was taken when an allocation fails part way).
  void take() {
    for (std::size_t i = 0; i < n_; ++i) {
      auto& t = items_[i];
      if (t.aliased && t.size && first_alias(items_, i) == i) {
        T* own = Memory::allocate(t.size);
        t.caller = t.grad;
        t.grad = own;
      }
    }
  }
  // After the passes: the gradients into the caller's buffers.
  void finish() {
    for (std::size_t i = 0; i < n_; ++i)
      if (const auto& t = items_[i]; t.caller)
        Memory::copy(t.caller, t.grad, t.size);
  }
  ~own_buffers() {
    for (std::size_t i = 0; i < n_; ++i)
      if (auto& t = items_[i]; t.caller) {
        Memory::release(t.grad);
        t.grad = std::exchange(t.caller, nullptr);
      }
  }

 private:
  exec::target<T>* items_;
  std::size_t n_;
};

// After planning phase 0: phase 1, zeroing only the gradients that need it, the pass and the
// boundaries' backward stages. Returns the pass's sum of values.
template <class T, std::size_t R, class Ev, class Seed>
FG_INLINE T run_passes(Ev& ev, const dims_t<R>& d, Seed& seed, exec::target<T>* items,
                       std::size_t n) {
  exec::targets<T> tg{items, n, 1};
  plan_phase(ev, tg, 1);
  for (std::size_t i = 0; i < n; ++i)
    if (needs_zero(items[i]))
      std::fill(items[i].grad, items[i].grad + items[i].size, T(0));
  const T value = exec::grad_pass<T, R>(ev, d, seed);
  ev.run_stages();
  return value;
}
// The same with the gradients written over what the passes read taken through own_buffers: out
// of line, so that the usual call carries none of it.
template <class T, std::size_t R, class Ev, class Seed>
[[gnu::noinline, gnu::cold]] T run_passes_in_own_buffers(Ev& ev, const dims_t<R>& d, Seed& seed,
                                                        exec::target<T>* items, std::size_t n) {
  own_buffers<T, host_memory<T>> own(items, n);
  own.take();
  const T value = run_passes<T, R>(ev, d, seed, items, n);
  own.finish();
  return value;
}

// Plans, then runs the passes (value and gradients) into the targets' buffers. Returns the
// pass's sum of values.
template <class T, std::size_t R, class Ev, class Seed>
T differentiate(Ev& ev, const dims_t<R>& d, Seed& seed, exec::target<T>* items, std::size_t n) {
  exec::targets<T> tg{items, n, 0};
  plan_phase(ev, tg, 0);
  const T value = tg.aliased ? run_passes_in_own_buffers<T, R>(ev, d, seed, items, n)
                             : run_passes<T, R>(ev, d, seed, items, n);
  for (std::size_t i = 1; i < n; ++i)
    if (const std::size_t j = first_alias(items, i); j != i)
      std::copy(items[j].grad, items[j].grad + items[i].size, items[i].grad);
  return value;
}

// What the gradient of the scalar F plans over: a root `sum`/`mean` over an expression is folded
// into that expression's pass with a constant seed (value and gradients in one loop); anything
// else is planned as a 0-d expression.
template <class F, bool = is_total_sum_v<F>> struct gradient_root {
  using node = F;
  static constexpr std::size_t rank = 0;
  static const node& of(const F& f) { return f; }
  static dims_t<0> dims(const F&) { return {}; }
  template <class T> static T scale(const F&) { return T(1); }
};
template <class F> struct gradient_root<F, true> {
  using node = std::remove_cvref_t<decltype(std::declval<const F&>().arg)>;
  static constexpr std::size_t rank = node::shape_type::rank;
  static const node& of(const F& f) { return f.arg; }
  static dims_t<rank> dims(const F& f) { return f.arg.dims(); }
  template <class T> static T scale(const F& f) {
    return std::is_same_v<typename F::reduction, ops::mean_red> ? T(1) / T(size_of(dims(f))) : T(1);
  }
};
template <class F, class Mode = exec::gradient_mode>
using gradient_evaluator_t =
    exec::evaluator<typename gradient_root<F>::node, gradient_root<F>::rank, Mode>;

template <class Ev, class F>
typename F::value_type run_planned(Ev& ev, const F& f, exec::target<typename F::value_type>* items,
                                   std::size_t n, typename F::value_type upstream = 1) {
  using T = typename F::value_type;
  using root = gradient_root<F>;
  const auto d = root::dims(f);
  const T scale = root::template scale<T>(f);
  exec::constant_seed<T> seed{scale * upstream};  // upstream: d loss / d f, when f is inside one
  return scale * differentiate<T, root::rank>(ev, d, seed, items, n);
}

// Plans and runs every pass of the gradient of the scalar `f` (bound to no extents) into the
// targets' buffers; returns f's value. The planner lives on the stack.
template <class F>
typename F::value_type run_gradient(const F& f, exec::target<typename F::value_type>* items,
                                    std::size_t n) {
  using root = gradient_root<F>;
  gradient_evaluator_t<F> ev(root::of(f), root::dims(f));
  return run_planned(ev, f, items, n);
}
// The same with the planner built in `storage` (a gradient_workspace). A separate function, not
// a branch: a planner variable in an untaken branch would still take its size of stack.
template <class F>
typename F::value_type run_gradient(const F& f, exec::target<typename F::value_type>* items,
                                    std::size_t n, void* storage) {
  using root = gradient_root<F>;
  using Ev = gradient_evaluator_t<F, exec::workspace_mode>;
  struct destroy {  // also when a pass raises
    Ev* ev;
    ~destroy() { std::destroy_at(ev); }
  } guard{::new (storage) Ev(root::of(f), root::dims(f))};
  return run_planned(*guard.ev, f, items, n);
}

template <class T, class G, class... X>
void fill_targets(exec::target<T>* items, G& grads, const X&... x) {
  std::size_t n = 0;
  std::apply([&](auto&... g) { ((items[n] = {x.data(), g.data(), x.size()}, ++n), ...); }, grads);
}

// Gives a gradient tensor its tensor's extents; no zero-fill: the gradient pass writes or zeroes
// every element.
template <class G, class X> void shape_like(G& g, const X& x) {
  if constexpr (!X::shape_type::is_static)
    if (g.dims() != x.dims())
      g.resize(x.dims(), false);
}

template <class... G> auto unwrap(std::tuple<G...>&& g) {
  if constexpr (sizeof...(G) == 1)
    return std::move(std::get<0>(g));
  else
    return std::move(g);
}

}  // namespace detail

// The memory one fg::value_and_grad_into(ws, f, ...) call plans and runs in, for expressions of
// type F. With static shapes it holds every intermediate value of the step (materialised
// products and reductions, their adjoints, GEMM packing): `bytes` is a compile-time constant, and
// the workspace can live in static storage or a linker section instead of on the stack.
template <expression F> class gradient_workspace {
  using Ev = detail::gradient_evaluator_t<std::remove_cvref_t<F>, exec::workspace_mode>;

 public:
  static constexpr std::size_t bytes = sizeof(Ev);
  void* data() { return storage_; }

 private:
  alignas(Ev) unsigned char storage_[sizeof(Ev)];
};

namespace detail {
// Where the planner goes: on the stack, or in a workspace's storage (void*), chosen at compile
// time.
struct on_stack {};
template <class F>
typename F::value_type run_gradient(const F& f, exec::target<typename F::value_type>* items,
                                    std::size_t n, on_stack) {
  return run_gradient(f, items, n);
}

template <class Place, class F, class... G, class... X>
typename F::value_type gradient_into(Place place, const F& f, std::tuple<G&...> g, const X&... x) {
  using T = typename F::value_type;
  static_assert(F::shape_type::rank == 0,
                "fg::grad(): f must be a scalar (0-d) expression; use fg::vjp for other shapes");
  static_assert(sizeof...(G) == sizeof...(X),
                "fg::value_and_grad_into(): give one gradient tensor per tensor named");
  static_assert((std::is_same_v<typename G::shape_type, typename X::shape_type> && ...) &&
                    (std::is_same_v<typename G::value_type, T> && ...),
                "fg::value_and_grad_into(): each gradient tensor must have its tensor's type");
  std::apply([&](auto&... gi) { (shape_like(gi, x), ...); }, g);
  exec::target<T> items[sizeof...(X)];
  fill_targets(items, g, x...);
  return run_gradient(f, items, sizeof...(X), place);
}
}  // namespace detail

// As value_and_grad, writing each gradient into the caller's tensor g_i (x_i's shape; dyn ones
// are resized): a training loop that keeps its gradient tensors allocates nothing per step.
template <expression F, tensor_like... G, tensor_like... X>
typename std::remove_cvref_t<F>::value_type value_and_grad_into(const F& f, std::tuple<G&...> g,
                                                                const X&... x) {
  return detail::gradient_into(detail::on_stack{}, f, g, x...);
}
// The same, planned and run inside `ws` rather than on the stack.
template <expression F, tensor_like... G, tensor_like... X>
typename F::value_type value_and_grad_into(gradient_workspace<F>& ws, const F& f,
                                           std::tuple<G&...> g, const X&... x) {
  return detail::gradient_into(ws.data(), f, g, x...);
}

// Value of a scalar (0-d) expression and its gradient with respect to each tensor named, as
// std::tuple{value, dx, dy, ...}. A `sum` (or `mean`) over an elementwise expression takes one
// fused pass: per element, values up the tree and adjoints down it, all in registers.
template <expression F, tensor_like... X> auto value_and_grad(const F& f, const X&... x) {
  using D = std::remove_cvref_t<F>;
  using T = typename D::value_type;
  static_assert(D::shape_type::rank == 0,
                "fg::grad(): f must be a scalar (0-d) expression; use fg::vjp for other shapes");
  static_assert(sizeof...(X) > 0, "fg::grad(): name at least one tensor to differentiate by");
  static_assert((std::is_same_v<typename X::value_type, T> && ...),
                "fg::grad(): the tensors must share the expression's element type");
  std::tuple<detail::grad_of_t<X>...> grads;
  const T value =
      std::apply([&](auto&... g) { return value_and_grad_into(f, std::tie(g...), x...); }, grads);
  return std::apply([&](auto&... g) { return std::tuple{value, std::move(g)...}; }, grads);
}

// Gradients of a scalar expression with respect to each tensor named: one tensor, or a tuple.
template <expression F, tensor_like... X> auto grad(const F& f, const X&... x) {
  auto vg = value_and_grad(f, x...);
  return std::apply([](auto&&, auto&&... g) { return detail::unwrap(std::tuple{std::move(g)...}); },
                    std::move(vg));
}

// Vector-Jacobian product: the gradients of sum(seed * e) for a non-scalar e. The seed may be a
// tensor or an expression; it is evaluated inside the same fused pass.
template <expression E, class Seed, tensor_like... X>
requires(operand<Seed>) auto vjp(const E& e, Seed&& seed, const X&... x) {
  using D = std::remove_cvref_t<E>;
  using T = typename D::value_type;
  constexpr std::size_t R = D::shape_type::rank;
  auto s = detail::as_node<T>(std::forward<Seed>(seed));
  using SN = decltype(s);
  static_assert(assignable_v<typename D::shape_type, typename SN::shape_type>,
                "fg::vjp(): the seed's shape must match (or broadcast to) the expression's");
  const auto d = e.dims();
  if (broadcast_dims<R>("fg::vjp()", d, s.dims()) != d)
    raise_shape_error("fg::vjp(): the seed's shape must match (or broadcast to) the expression's");
  std::tuple<detail::grad_of_t<X>...> grads;
  std::apply([&](auto&... gi) { (detail::shape_like(gi, x), ...); }, grads);
  exec::target<T> items[sizeof...(X)];
  detail::fill_targets(items, grads, x...);
  exec::evaluator<D, R> ev(e, d);
  exec::evaluator<SN, R> sev(s, d);
  exec::expression_seed<decltype(sev)> es{sev};
  (void)detail::differentiate<T, R>(ev, d, es, items, sizeof...(X));
  return detail::unwrap(std::move(grads));
}

}  // namespace fg

FG_DIAGNOSTICS_END
