// fusegrad/expr/reduce.hpp — reductions over all elements or chosen axes (fusion boundaries)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/expr/matmul.hpp"
#include "fusegrad/expr/node.hpp"
#include "fusegrad/ops/binary.hpp"
#include "fusegrad/ops/reduce.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg {

// Axes to reduce over; negative ones count from the end, as in NumPy.
template <int... I> struct axes {};

namespace expr {

namespace detail {
template <std::size_t R, int... I> struct axis_set {
  static constexpr int norm(int a) { return a < 0 ? a + int(R) : a; }
  static constexpr bool valid = ((norm(I) >= 0 && norm(I) < int(R)) && ...);
  static constexpr bool has([[maybe_unused]] std::size_t k) { return ((norm(I) == int(k)) || ...); }
  static constexpr bool unique = [] {
    for (std::size_t k = 0; k < R; ++k) {
      int n = 0;
      ((n += norm(I) == int(k)), ...);
      if (n > 1)
        return false;
    }
    return true;
  }();
};
template <std::size_t R> struct all_axes {
  static constexpr bool valid = true, unique = true;
  static constexpr bool has(std::size_t) { return true; }
};
}  // namespace detail

// Reduction Red of A over the axes in Set; Keep keeps reduced axes as extent 1.
template <class Red, class A, class Set, bool Keep> struct reduce : node_base {
  using in_shape = typename A::shape_type;
  static constexpr std::size_t in_rank = in_shape::rank;
  static_assert(Set::valid, "fg::reduce: an axis is out of range for the operand's rank");
  static_assert(Set::unique, "fg::reduce: an axis is named twice");
  static constexpr std::size_t out_rank = [] {
    std::size_t n = 0;
    for (std::size_t k = 0; k < in_rank; ++k)
      n += Keep || !Set::has(k);
    return n;
  }();
  template <std::size_t... K> static auto make(std::index_sequence<K...>) {
    constexpr auto ext = [] {
      std::array<index_t, out_rank + 1> e{};
      std::size_t n = 0;
      for (std::size_t k = 0; k < in_rank; ++k) {
        if (!Set::has(k))
          e[n++] = in_shape::static_extents[k];
        else if (Keep)
          e[n++] = 1;
      }
      return e;
    }();
    return shape<ext[K]...>{};
  }
  using value_type = typename A::value_type;
  using shape_type = decltype(make(std::make_index_sequence<out_rank>{}));
  using reduction = Red;
  using set = Set;
  static constexpr bool keep = Keep;

  A arg;

  static constexpr bool reduces(std::size_t k) { return Set::has(k); }
  dims_t<out_rank> dims() const {
    auto in = arg.dims();
    dims_t<out_rank> d{};
    std::size_t n = 0;
    for (std::size_t k = 0; k < in_rank; ++k) {
      if (!Set::has(k))
        d[n++] = in[k];
      else if (Keep)
        d[n++] = 1;
    }
    return d;
  }
};

}  // namespace expr

namespace detail {
template <class X> inline constexpr bool is_matmul_v = false;
template <class A, class B> inline constexpr bool is_matmul_v<expr::matmul<A, B>> = true;

template <class Red, bool Keep = false, class Set = void, class X>
constexpr auto make_reduce(X&& x) {
  auto a = as_node<value_type_t<X>>(std::forward<X>(x));
  using A = decltype(a);
  using T = typename A::value_type;
  constexpr bool total_sum =
      std::is_void_v<Set> && !Keep &&
      (std::is_same_v<Red, ops::sum_red> || std::is_same_v<Red, ops::mean_red>);
  if constexpr (total_sum && is_matmul_v<A>) {
    // sum(A B) = sum_k colsum(A)_k rowsum(B)_k: O(n^2) for value and gradients, not a product.
    auto col = make_reduce<ops::sum_red, false, expr::detail::axis_set<2, 0>>(a.a);
    auto row = make_reduce<ops::sum_red, false, expr::detail::axis_set<2, 1>>(a.b);
    auto dots = make_reduce<ops::sum_red>(
        expr::elementwise<ops::mul_op, decltype(col), decltype(row)>(col, row));
    if constexpr (std::is_same_v<Red, ops::sum_red>)
      return dots;
    else
      return expr::elementwise<ops::mul_op, decltype(dots), expr::scalar<T>>(
          dots, expr::scalar<T>{{}, T(1) / T(size_of(a.dims()))});
  } else {
    using S =
        std::conditional_t<std::is_void_v<Set>, expr::detail::all_axes<A::shape_type::rank>, Set>;
    return expr::reduce<Red, A, S, Keep>{{}, std::move(a)};
  }
}
template <class Axes, std::size_t R> struct axes_to_set;
template <int... I, std::size_t R> struct axes_to_set<axes<I...>, R> {
  using type = expr::detail::axis_set<R, I...>;
};
}  // namespace detail

// sum(x) over all elements, sum(x, fg::axes<0>{}) over axis 0, sum<true>(x, axes) keeps them.
#define FG_DEFINE_REDUCTION(fn, red)                                                       \
  template <bool Keep = false, operand X> constexpr auto fn(X&& x) {                       \
    return detail::make_reduce<ops::red, Keep>(std::forward<X>(x));                        \
  }                                                                                        \
  template <bool Keep = false, operand X, int... I> constexpr auto fn(X&& x, axes<I...>) { \
    using Set = expr::detail::axis_set<std::remove_cvref_t<X>::shape_type::rank, I...>;    \
    return detail::make_reduce<ops::red, Keep, Set>(std::forward<X>(x));                   \
  }
FG_DEFINE_REDUCTION(sum, sum_red)
FG_DEFINE_REDUCTION(mean, mean_red)
FG_DEFINE_REDUCTION(prod, prod_red)
FG_DEFINE_REDUCTION(max, max_red)
FG_DEFINE_REDUCTION(min, min_red)
FG_DEFINE_REDUCTION(logsumexp, logsumexp_red)
#undef FG_DEFINE_REDUCTION

// A user's reduction struct (shaped like those in ops/reduce.hpp): over all elements, or over
// the axes given (none given: nothing reduced, as NumPy's axis=()).
template <class Red, bool Keep = false, operand X> constexpr auto reduce(X&& x) {
  return detail::make_reduce<Red, Keep>(std::forward<X>(x));
}
template <class Red, bool Keep = false, operand X, int... I>
constexpr auto reduce(X&& x, axes<I...>) {
  return detail::make_reduce<
      Red, Keep, expr::detail::axis_set<std::remove_cvref_t<X>::shape_type::rank, I...>>(
      std::forward<X>(x));
}

}  // namespace fg

FG_DIAGNOSTICS_END
