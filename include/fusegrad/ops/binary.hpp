// fusegrad/ops/binary.hpp — elementwise binary ops (arithmetic, pow, min/max, comparisons) and
// where SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/ops/op.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg::ops {

struct add_op {
  static constexpr bool integers = true;
  static constexpr bool cheap = true;
  static constexpr const char* name = "add";
  template <class V> FG_HD static V forward(V a, V b) { return a + b; }
  template <class V> FG_HD static fg::partials<V, 2> partials(V, V, V) { return {{V(1), V(1)}}; }
};
struct sub_op {
  static constexpr bool integers = true;
  static constexpr bool cheap = true;
  static constexpr const char* name = "sub";
  template <class V> FG_HD static V forward(V a, V b) { return a - b; }
  template <class V> FG_HD static fg::partials<V, 2> partials(V, V, V) { return {{V(1), V(-1)}}; }
};
struct mul_op {
  static constexpr bool integers = true;
  static constexpr bool cheap = true;
  static constexpr const char* name = "mul";
  template <class V> FG_HD static V forward(V a, V b) { return a * b; }
  template <class V> FG_HD static fg::partials<V, 2> partials(V a, V b, V) { return {{b, a}}; }
};
struct div_op {
  static constexpr bool cheap = true;
  static constexpr const char* name = "div";
  static constexpr interval domains[2] = {{-2.0, 2.0}, {0.5, 2.0}};
  template <class V> FG_HD static V forward(V a, V b) { return a / b; }
  template <class V> FG_HD static fg::partials<V, 2> partials(V, V b, V y) {
    const V inv = V(1) / b;
    return {{inv, -y * inv}};
  }
};
// The partials follow PyTorch where x^y has no derivative: d/dx is 0 where y = 0 (not 0 * inf at
// x = 0) and d/dy is 0 where x = 0 and y >= 0 (not 0 * log 0).
struct pow_op {
  static constexpr const char* name = "pow";
  static constexpr interval domains[2] = {{0.5, 2.0}, {-2.0, 2.0}};
  template <class V> FG_HD static V forward(V a, V b) { return math::pow(a, b); }
  template <class V> FG_HD static fg::partials<V, 2> partials(V a, V b, V y) {
    // b a^(b-1) written without dividing by a, so a = 0 gives 0 for b > 1 and inf for b < 1.
    return {{math::select(math::eq(b, V(0)), V(0), b * math::pow(a, b - V(1))),
             math::select(math::eq(a, V(0)) * math::le(V(0), b), V(0), y * math::log(a))}};
  }
};
// Equal arguments share the gradient half and half, and a NaN passes it to both, as PyTorch's
// maximum/minimum: each argument gets it unless it lost the comparison outright.
struct min_op {
  static constexpr bool integers = true;
  static constexpr bool cheap = true;
  static constexpr const char* name = "min";
  static constexpr bool smooth = false;
  template <class V> FG_HD static V forward(V a, V b) { return math::min(a, b); }
  template <class V> FG_HD static fg::partials<V, 2> partials(V a, V b, V) {
    const V tie = V(0.5) * math::eq(a, b);
    return {{V(1) - math::lt(b, a) - tie, V(1) - math::lt(a, b) - tie}};
  }
};
struct max_op {
  static constexpr bool integers = true;
  static constexpr bool cheap = true;
  static constexpr const char* name = "max";
  static constexpr bool smooth = false;
  template <class V> FG_HD static V forward(V a, V b) { return math::max(a, b); }
  template <class V> FG_HD static fg::partials<V, 2> partials(V a, V b, V) {
    const V tie = V(0.5) * math::eq(a, b);
    return {{V(1) - math::lt(a, b) - tie, V(1) - math::lt(b, a) - tie}};
  }
};

// Comparisons are steps: value 1 or 0, zero derivative everywhere they are defined.
struct step_op {
  static constexpr bool integers = true;
  static constexpr bool cheap = true;
  static constexpr bool smooth = false;
  template <class V> FG_HD static fg::partials<V, 2> partials(V, V, V) { return {{V(0), V(0)}}; }
};
struct less_op : step_op {
  static constexpr const char* name = "less";
  template <class V> FG_HD static V forward(V a, V b) { return math::lt(a, b); }
};
struct less_equal_op : step_op {
  static constexpr const char* name = "less_equal";
  template <class V> FG_HD static V forward(V a, V b) { return math::le(a, b); }
};
struct greater_op : step_op {
  static constexpr const char* name = "greater";
  template <class V> FG_HD static V forward(V a, V b) { return math::lt(b, a); }
};
struct greater_equal_op : step_op {
  static constexpr const char* name = "greater_equal";
  template <class V> FG_HD static V forward(V a, V b) { return math::le(b, a); }
};
struct equal_op : step_op {
  static constexpr const char* name = "equal";
  template <class V> FG_HD static V forward(V a, V b) { return math::eq(a, b); }
};
struct not_equal_op : step_op {
  static constexpr const char* name = "not_equal";
  template <class V> FG_HD static V forward(V a, V b) { return math::ne(a, b); }
};

// where(cond, a, b): a where cond is non-zero, else b; cond gets no gradient.
struct where_op {
  static constexpr bool integers = true;
  static constexpr bool cheap = true;
  static constexpr const char* name = "where";
  static constexpr bool smooth = false;
  static constexpr interval domains[3] = {{-1.0, 1.0}, {-2.0, 2.0}, {-2.0, 2.0}};
  template <class V> FG_HD static V forward(V c, V a, V b) { return math::select(c, a, b); }
  template <class V> FG_HD static fg::partials<V, 3> partials(V c, V, V, V) {
    V take_a = math::ne(c, V(0));
    return {{V(0), take_a, V(1) - take_a}};
  }
};

using binary_ops = type_list<add_op, sub_op, mul_op, div_op, pow_op, min_op, max_op>;
using comparison_ops =
    type_list<less_op, less_equal_op, greater_op, greater_equal_op, equal_op, not_equal_op>;

}  // namespace fg::ops

FG_DIAGNOSTICS_END
