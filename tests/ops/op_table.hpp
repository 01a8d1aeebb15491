// tests/ops/op_table.hpp — shared by the op-table tests: every op in ops/*.hpp is checked for
// value and gradient (central finite differences, double) at random points of its domain, with
// static and dyn extents. An op added to a list there is tested without another line here.
#pragma once

#include "../testing.hpp"

namespace fg::testing {

constexpr index_t n = 37;  // SIMD batches and a scalar tail
using S = fg::shape<n>;
using D = fg::shape<fg::dyn>;

template <class Shape> tensor<double, Shape> make_tensor() {
  if constexpr (Shape::is_static)
    return {};
  else
    return tensor<double, Shape>(dims_t<1>{n});
}

template <class Op, class Shape> void check_unary() {
  auto x = make_tensor<Shape>();
  const auto dom = op_traits<Op>::domain(0);
  fill_uniform(x, dom.lo, dom.hi);
  // Forward: the fused SIMD loop against the op applied to each double.
  tensor<double, Shape> y = apply<Op>(x);
  for (index_t i = 0; i < n; ++i)
    CHECK(y[i] == doctest::Approx(Op::forward(x[i])).epsilon(1e-12));
  check_gradient([](auto& a) { return sum(apply<Op>(a)); }, x);
  // Composed with another op, so the adjoint reaching the op is not 1.
  check_gradient([](auto& a) { return sum(apply<Op>(a) * a); }, x);
}

template <class Op, class Shape> void check_binary() {
  auto a = make_tensor<Shape>();
  auto b = make_tensor<Shape>();
  fill_uniform(a, op_traits<Op>::domain(0).lo, op_traits<Op>::domain(0).hi);
  fill_uniform(b, op_traits<Op>::domain(1).lo, op_traits<Op>::domain(1).hi);
  tensor<double, Shape> y = apply<Op>(a, b);
  for (index_t i = 0; i < n; ++i)
    CHECK(y[i] == doctest::Approx(Op::forward(a[i], b[i])).epsilon(1e-12));
  check_gradient([](auto& p, auto& q) { return sum(apply<Op>(p, q)); }, a, b);
  // Broadcast: a scalar (0-d tensor) against a vector accumulates over the vector.
  tensor<double, shape<>> s{op_traits<Op>::domain(1).lo + 0.3};
  check_gradient([](auto& p, auto& q) { return sum(apply<Op>(p, q)); }, a, s);
}

template <class Red, class Shape> void check_reduction() {
  auto x = make_tensor<Shape>();
  const auto dom = op_traits<Red>::domain(0);
  fill_uniform(x, dom.lo, dom.hi);
  check_gradient([](auto& a) { return reduce<Red>(a) * 1.0; }, x);
  check_gradient([](auto& a) { return reduce<Red>(sin(a) + a); }, x);
}

template <class... Ops, class F> void for_each_op(type_list<Ops...>, F f) {
  (f.template operator()<Ops>(), ...);
}

}  // namespace fg::testing
