// fusegrad/expr/functions.hpp — the elementwise vocabulary: operators and math functions over
// operands SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/expr/node.hpp"
#include "fusegrad/ops/binary.hpp"
#include "fusegrad/ops/unary.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg {

// The op table's function names, one list for every path (static expressions here, fg::var in
// dynamic/elementwise.hpp): X(function, op struct).
#define FG_UNARY_FUNCTIONS(X) \
  X(abs, abs_op)              \
  X(square, square_op)        \
  X(sqrt, sqrt_op)            \
  X(exp, exp_op)              \
  X(log, log_op)              \
  X(log1p, log1p_op)          \
  X(expm1, expm1_op)          \
  X(sin, sin_op)              \
  X(cos, cos_op)              \
  X(tanh, tanh_op)            \
  X(sigmoid, sigmoid_op)      \
  X(relu, relu_op)            \
  X(softplus, softplus_op)    \
  X(erf, erf_op)
#define FG_BINARY_FUNCTIONS(X)    \
  X(operator+, add_op)            \
  X(operator-, sub_op)            \
  X(operator*, mul_op)            \
  X(operator/, div_op)            \
  X(pow, pow_op)                  \
  X(minimum, min_op)              \
  X(maximum, max_op)              \
  X(operator<, less_op)           \
  X(operator<=, less_equal_op)    \
  X(operator>, greater_op)        \
  X(operator>=, greater_equal_op) \
  X(equal, equal_op)              \
  X(not_equal, not_equal_op)

// A unary function over an operand: fg::exp(x) builds elementwise<exp_op, X>.
#define FG_DEFINE_UNARY(fn, op_type)                \
  template <operand X> constexpr auto fn(X&& x) {   \
    return apply<ops::op_type>(std::forward<X>(x)); \
  }
FG_UNARY_FUNCTIONS(FG_DEFINE_UNARY)
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
FG_BINARY_FUNCTIONS(FG_DEFINE_BINARY)
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

FG_DIAGNOSTICS_END
