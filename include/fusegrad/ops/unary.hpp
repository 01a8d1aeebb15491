// fusegrad/ops/unary.hpp — elementwise unary ops: value and derivative in one struct each
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/ops/op.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg::ops {

struct neg_op {
  static constexpr bool integers = true;
  static constexpr bool cheap = true;
  static constexpr const char* name = "neg";
  template <class V> FG_HD static V forward(V x) { return -x; }
  template <class V> FG_HD static V derivative(V, V) { return V(-1); }
};
struct abs_op {
  static constexpr bool integers = true;
  static constexpr bool cheap = true;
  static constexpr const char* name = "abs";
  static constexpr bool smooth = false;  // kink at 0; the table samples away from it
  template <class V> FG_HD static V forward(V x) { return math::abs(x); }
  // sign(x), 0 at 0 and at NaN, as PyTorch's sgn
  template <class V> FG_HD static V derivative(V x, V) {
    return math::lt(V(0), x) - math::lt(x, V(0));
  }
};
struct square_op {
  static constexpr bool integers = true;
  static constexpr bool cheap = true;
  static constexpr const char* name = "square";
  template <class V> FG_HD static V forward(V x) { return x * x; }
  template <class V> FG_HD static V derivative(V x, V) { return V(2) * x; }
};
struct sqrt_op {
  static constexpr const char* name = "sqrt";
  static constexpr interval domain{0.1, 4.0};
  template <class V> FG_HD static V forward(V x) { return math::sqrt(x); }
  template <class V> FG_HD static V derivative(V, V y) { return V(0.5) / y; }
};
struct exp_op {
  static constexpr const char* name = "exp";
  template <class V> FG_HD static V forward(V x) { return math::exp(x); }
  template <class V> FG_HD static V derivative(V, V y) { return y; }
};
struct log_op {
  static constexpr const char* name = "log";
  static constexpr interval domain{0.1, 4.0};
  template <class V> FG_HD static V forward(V x) { return math::log(x); }
  template <class V> FG_HD static V derivative(V x, V) { return V(1) / x; }
};
struct log1p_op {
  static constexpr const char* name = "log1p";
  static constexpr interval domain{-0.9, 3.0};
  template <class V> FG_HD static V forward(V x) { return math::log1p(x); }
  template <class V> FG_HD static V derivative(V x, V) { return V(1) / (V(1) + x); }
};
struct expm1_op {
  static constexpr const char* name = "expm1";
  template <class V> FG_HD static V forward(V x) { return math::expm1(x); }
  template <class V> FG_HD static V derivative(V, V y) { return y + V(1); }
};
// When differentiating, sin and cos share one range reduction and keep the other as aux.
struct sin_op {
  static constexpr const char* name = "sin";
  template <class V> FG_HD static V forward(V x) { return math::sin(x); }
  template <class V> FG_HD static with_aux<V> forward_aux(V x) {
    with_aux<V> r;
    math::sincos(x, r.value, r.aux);
    return r;
  }
  template <class V> FG_HD static V derivative(V x, V) { return math::cos(x); }
  template <class V> FG_HD static V derivative(V, V, V cos_x) { return cos_x; }
};
struct cos_op {
  static constexpr const char* name = "cos";
  template <class V> FG_HD static V forward(V x) { return math::cos(x); }
  template <class V> FG_HD static with_aux<V> forward_aux(V x) {
    with_aux<V> r;
    math::sincos(x, r.aux, r.value);
    return r;
  }
  template <class V> FG_HD static V derivative(V x, V) { return -math::sin(x); }
  template <class V> FG_HD static V derivative(V, V, V sin_x) { return -sin_x; }
};
struct tanh_op {
  static constexpr const char* name = "tanh";
  template <class V> FG_HD static V forward(V x) { return math::tanh(x); }
  template <class V> FG_HD static V derivative(V, V y) { return V(1) - y * y; }
};
struct sigmoid_op {
  static constexpr const char* name = "sigmoid";
  static constexpr interval domain{-4.0, 4.0};
  template <class V> FG_HD static V forward(V x) { return V(1) / (V(1) + math::exp(-x)); }
  template <class V> FG_HD static V derivative(V, V y) { return y * (V(1) - y); }
};
struct relu_op {
  static constexpr bool integers = true;
  static constexpr bool cheap = true;
  static constexpr const char* name = "relu";
  static constexpr bool smooth = false;
  template <class V> FG_HD static V forward(V x) { return math::max(x, V(0)); }
  // 0 where the output is <= 0, else 1 (so 1 at NaN), as PyTorch's threshold_backward
  template <class V> FG_HD static V derivative(V, V y) { return V(1) - math::le(y, V(0)); }
};
// log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|).
struct softplus_op {
  static constexpr const char* name = "softplus";
  static constexpr interval domain{-4.0, 4.0};
  template <class V> FG_HD static V forward(V x) {
    return math::max(x, V(0)) + math::log1p(math::exp(-math::abs(x)));
  }
  template <class V> FG_HD static V derivative(V x, V) { return V(1) / (V(1) + math::exp(-x)); }
};
struct erf_op {
  static constexpr const char* name = "erf";
  template <class V> FG_HD static V forward(V x) { return math::erf(x); }
  template <class V> FG_HD static V derivative(V x, V) {
    return V(1.1283791670955126) * math::exp(-x * x);  // 2/sqrt(pi) e^{-x^2}
  }
};

// The list the gradient table iterates: an op added here is tested on every path.
using unary_ops = type_list<neg_op, abs_op, square_op, sqrt_op, exp_op, log_op, log1p_op, expm1_op,
                            sin_op, cos_op, tanh_op, sigmoid_op, relu_op, softplus_op, erf_op>;

}  // namespace fg::ops

FG_DIAGNOSTICS_END
