// fusegrad/grad/reverse.hpp — compile-time reverse mode: fg::grad, fg::value_and_grad, fg::vjp
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/exec/assign.hpp"

#include <tuple>

namespace fg {

namespace detail {

template <class E>
inline constexpr bool is_total_sum_v = false;
template <class Red, class A, std::size_t R, bool K>
inline constexpr bool is_total_sum_v<expr::reduce<Red, A, expr::detail::all_axes<R>, K>> =
    std::is_same_v<Red, ops::sum_red> || std::is_same_v<Red, ops::mean_red>;

template <class X>
using grad_of_t = tensor<typename X::value_type, typename X::shape_type>;

// Runs the planned passes: `ev` is bound to extents `d`, seeded by `seed`; returns the pass sum.
template <class T, std::size_t R, class Ev, class Seed, class... X>
T differentiate(Ev& ev, const dims_t<R>& d, Seed& seed, std::tuple<grad_of_t<X>...>& grads,
                const X&... x) {
  exec::target<T> items[sizeof...(X) + 1];
  std::size_t n = 0;
  std::apply([&](auto&... g) { ((items[n] = {x.data(), g.data(), x.size()}, ++n), ...); }, grads);
  exec::targets<T> tg{items, sizeof...(X), 0};
  for (int phase = 0; phase < 2; ++phase) {
    tg.phase = phase;
    ev.plan(tg);
    ev.plan_stages(tg);
  }
  for (std::size_t i = 0; i < sizeof...(X); ++i)  // unreached, or reached by accumulation
    if (items[i].broadcast || !items[i].seen)
      for (index_t k = 0; k < items[i].size; ++k) items[i].grad[k] = T(0);
  const T value = exec::grad_pass<T, R>(ev, d, seed);
  ev.run_stages();
  return value;
}

template <class... X>
auto make_grads(const X&... x) {
  std::tuple<grad_of_t<X>...> g;
  std::apply(
      [&](auto&... gi) {
        (
            [&](auto& t, const auto& xi) {
              if constexpr (!std::remove_cvref_t<decltype(xi)>::shape_type::is_static)
                t.resize(xi.dims());
            }(gi, x),
            ...);
      },
      g);
  return g;
}

template <class... G>
auto unwrap(std::tuple<G...>&& g) {
  if constexpr (sizeof...(G) == 1) return std::move(std::get<0>(g));
  else return std::move(g);
}

}  // namespace detail

// Value of a scalar (0-d) expression and its gradient with respect to each tensor named, as
// std::tuple{value, dx, dy, ...}. A `sum` (or `mean`) over an elementwise expression takes one
// fused pass: per element, values up the tree and adjoints down it, all in registers.
template <expression F, tensor_like... X>
auto value_and_grad(const F& f, const X&... x) {
  using D = std::remove_cvref_t<F>;
  using T = typename D::value_type;
  static_assert(D::shape_type::rank == 0,
                "fg::grad(): f must be a scalar (0-d) expression; use fg::vjp for other shapes");
  static_assert(sizeof...(X) > 0, "fg::grad(): name at least one tensor to differentiate by");
  static_assert((std::is_same_v<typename X::value_type, T> && ...),
                "fg::grad(): the tensors must share the expression's element type");
  auto grads = detail::make_grads(x...);
  T value;
  if constexpr (detail::is_total_sum_v<D>) {
    using A = decltype(f.arg);
    constexpr std::size_t R = A::shape_type::rank;
    const auto d = f.arg.dims();
    exec::evaluator<A, R> ev(f.arg, d);
    const T n = T(size_of(d));
    const T scale = std::is_same_v<typename D::reduction, ops::mean_red> ? T(1) / n : T(1);
    exec::constant_seed<T> seed{scale};
    value = scale * detail::differentiate<T, R>(ev, d, seed, grads, x...);
  } else {
    exec::evaluator<D, 0> ev(f, dims_t<0>{});
    exec::constant_seed<T> seed{T(1)};
    value = detail::differentiate<T, 0>(ev, dims_t<0>{}, seed, grads, x...);
  }
  return std::apply([&](auto&... g) { return std::tuple{value, std::move(g)...}; }, grads);
}

// Gradients of a scalar expression with respect to each tensor named: one tensor, or a tuple.
template <expression F, tensor_like... X>
auto grad(const F& f, const X&... x) {
  auto vg = value_and_grad(f, x...);
  return std::apply(
      [](auto&&, auto&&... g) { return detail::unwrap(std::tuple{std::move(g)...}); },
      std::move(vg));
}

// Vector-Jacobian product: the gradients of sum(seed * e) for a non-scalar e. The seed may be a
// tensor or an expression; it is evaluated inside the same fused pass.
template <expression E, class Seed, tensor_like... X>
  requires(operand<Seed>)
auto vjp(const E& e, Seed&& seed, const X&... x) {
  using D = std::remove_cvref_t<E>;
  using T = typename D::value_type;
  constexpr std::size_t R = D::shape_type::rank;
  auto s = detail::as_node<T>(std::forward<Seed>(seed));
  using SN = decltype(s);
  static_assert(SN::shape_type::rank <= R &&
                    std::is_same_v<broadcast_t<typename D::shape_type, typename SN::shape_type>,
                                   broadcast_t<typename D::shape_type, typename D::shape_type>>,
                "fg::vjp(): the seed's shape must match (or broadcast to) the expression's");
  const auto d = e.dims();
  if (broadcast_dims<R>("fg::vjp()", d, s.dims()) != d)
    raise_shape_error("fg::vjp(): the seed's shape must match (or broadcast to) the expression's");
  auto grads = detail::make_grads(x...);
  exec::evaluator<D, R> ev(e, d);
  exec::evaluator<SN, R> sev(s, d);
  exec::expression_seed<decltype(sev)> es{sev};
  (void)detail::differentiate<T, R>(ev, d, es, grads, x...);
  return detail::unwrap(std::move(grads));
}

}  // namespace fg
