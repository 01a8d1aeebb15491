// fusegrad/expr/functions.hpp — the elementwise vocabulary: operators and math functions over
// operands SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/expr/node.hpp"
#include "fusegrad/ops/binary.hpp"
#include "fusegrad/ops/unary.hpp"

namespace fg {

// A unary function over an operand: fg::exp(x) builds elementwise<exp_op, X>.
#define FG_DEFINE_UNARY(fn, op_type)                \
  template <operand X> constexpr auto fn(X&& x) {   \
    return apply<ops::op_type>(std::forward<X>(x)); \
  }
FG_DEFINE_UNARY(abs, abs_op)
FG_DEFINE_UNARY(square, square_op)
FG_DEFINE_UNARY(sqrt, sqrt_op)
FG_DEFINE_UNARY(exp, exp_op)
FG_DEFINE_UNARY(log, log_op)
FG_DEFINE_UNARY(log1p, log1p_op)
FG_DEFINE_UNARY(expm1, expm1_op)
FG_DEFINE_UNARY(sin, sin_op)
FG_DEFINE_UNARY(cos, cos_op)
FG_DEFINE_UNARY(tanh, tanh_op)
FG_DEFINE_UNARY(sigmoid, sigmoid_op)
FG_DEFINE_UNARY(relu, relu_op)
FG_DEFINE_UNARY(softplus, softplus_op)
FG_DEFINE_UNARY(erf, erf_op)
#undef FG_DEFINE_UNARY

template <operand X> constexpr auto operator-(X&& x) {
  return apply<ops::neg_op>(std::forward<X>(x));
}

// A binary function: at least one side an operand, the other may be a number.
template <class A, class B>
concept binary_operands = (operand<A> || operand<B>)&&(operand<A> ||
                                                       arithmetic<A>)&&(operand<B> ||
                                                                        arithmetic<B>);

#define FG_DEFINE_BINARY(fn, op_type)                                   \
  template <class A, class B>                                           \
  requires binary_operands<A, B>                                        \
  constexpr auto fn(A&& a, B&& b) {                                     \
    return apply<ops::op_type>(std::forward<A>(a), std::forward<B>(b)); \
  }
FG_DEFINE_BINARY(operator+, add_op)
FG_DEFINE_BINARY(operator-, sub_op)
FG_DEFINE_BINARY(operator*, mul_op)
FG_DEFINE_BINARY(operator/, div_op)
FG_DEFINE_BINARY(pow, pow_op)
FG_DEFINE_BINARY(minimum, min_op)
FG_DEFINE_BINARY(maximum, max_op)
FG_DEFINE_BINARY(operator<, less_op)
FG_DEFINE_BINARY(operator<=, less_equal_op)
FG_DEFINE_BINARY(operator>, greater_op)
FG_DEFINE_BINARY(operator>=, greater_equal_op)
FG_DEFINE_BINARY(equal, equal_op)
FG_DEFINE_BINARY(not_equal, not_equal_op)
#undef FG_DEFINE_BINARY

// Elementwise min/max of two operands (one argument, or axes, means the reduction).
template <class A, class B>
requires binary_operands<A, B>
constexpr auto min(A&& a, B&& b) {
  return minimum(std::forward<A>(a), std::forward<B>(b));
}
template <class A, class B>
requires binary_operands<A, B>
constexpr auto max(A&& a, B&& b) {
  return maximum(std::forward<A>(a), std::forward<B>(b));
}

// a where cond is non-zero, b elsewhere; all three broadcast together.
template <class C, class A, class B>
requires(operand<C> || arithmetic<C>) &&
    (operand<A> || arithmetic<A>)&&(operand<B> || arithmetic<B>)&&(
        operand<C> || operand<A> || operand<B>)constexpr auto where(C&& c, A&& a, B&& b) {
  return apply<ops::where_op>(std::forward<C>(c), std::forward<A>(a), std::forward<B>(b));
}

}  // namespace fg
