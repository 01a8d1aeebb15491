// fusegrad/ops/op.hpp — what an op struct is: forward, local partials, name, sampling domain
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/math.hpp"

#include <concepts>
#include <cstddef>
#include <type_traits>

FG_DIAGNOSTICS_BEGIN

namespace fg {

// The interval the test table samples an op's arguments from (inside its domain, away from kinks).
struct interval {
  double lo, hi;
};

// The local partials of an N-ary op: d y / d arg_k.
template <class V, std::size_t N> struct partials {
  V d[N];
  FG_HD constexpr V operator[](std::size_t k) const { return d[k]; }
};

template <class... Ops> struct type_list { static constexpr std::size_t size = sizeof...(Ops); };

// A unary op: `forward(x)` and `derivative(x, y)` with y = forward(x).
template <class Op>
concept unary_op = requires(double x) {
  { Op::name } -> std::convertible_to<const char*>;
  { Op::forward(x) } -> std::convertible_to<double>;
  { Op::derivative(x, x) } -> std::convertible_to<double>;
};

// An N-ary op: `forward(args...)` and `partials(args..., y)` returning fg::partials<V, N>.
template <class Op, std::size_t N>
concept nary_op = (N == 1 && unary_op<Op>) || requires {
  Op::name;
};

// A value an op's forward computes anyway and its derivative can reuse (sin keeps cos). An op
// opts in with `forward_aux(args...) -> with_aux<V>` and takes the aux as a last argument of
// `derivative`/`partials`; evaluation without gradients still calls plain `forward`.
template <class V> struct with_aux { V value, aux; };
struct no_aux {};

template <class Op, class V, class... A>
concept has_aux = requires(A... a) {
  Op::forward_aux(a...);
};

namespace detail {
// Whether Op states its derivative as `derivative(args..., y[, aux])` (unary ops) rather than
// `partials`. Named concepts over types, not requires-expressions over the function's own
// parameters: nvcc 13 evaluated those wrongly when the instantiation was deferred (seen from an
// inline member function), and fell through to `partials`.
template <class Op, class... Args>
concept states_derivative = requires(Args... args) {
  Op::derivative(args...);
};

template <class Op, class V, class Aux, class... A>
FG_HD FG_INLINE partials<V, sizeof...(A)> local_partials(V y, Aux aux, A... a) {
  if constexpr (!std::is_same_v<Aux, no_aux>) {
    if constexpr (sizeof...(A) == 1 && states_derivative<Op, A..., V, Aux>)
      return {{Op::derivative(a..., y, aux)}};
    else
      return Op::partials(a..., y, aux);
  } else if constexpr (sizeof...(A) == 1 && states_derivative<Op, A..., V>) {
    return {{Op::derivative(a..., y)}};
  } else {
    return Op::partials(a..., y);
  }
}
}  // namespace detail

// What the test table and the printers read off an op; a user's op may omit all but `name`.
template <class Op> struct op_traits {
  static constexpr interval domain(std::size_t k) {
    if constexpr (requires { Op::domains[k]; })
      return Op::domains[k];
    else if constexpr (requires { Op::domain; })
      return Op::domain;
    else
      return interval{-2.0, 2.0};
  }
  static constexpr bool smooth = [] {
    if constexpr (requires { Op::smooth; })
      return bool(Op::smooth);
    else
      return true;
  }();
  // A few instructions, no transcendental call: loops over such ops are unrolled.
  static constexpr bool cheap = [] {
    if constexpr (requires { Op::cheap; })
      return bool(Op::cheap);
    else
      return false;
  }();
  // Exact on integers too (forward only, on a wrapping int64): integer tensors compute it in
  // their own dtype; an op without it promotes them to float32 first (as PyTorch's exp or
  // true division do). Comparisons give bool whatever they compare.
  static constexpr bool integers = [] {
    if constexpr (requires { Op::integers; })
      return bool(Op::integers);
    else
      return false;
  }();
};

}  // namespace fg

FG_DIAGNOSTICS_END
