// The gradient table: every op of ops/unary.hpp, ops/binary.hpp and ops/reduce.hpp, checked
// against central finite differences in double at random points of its domain, with static and
// dyn extents. An op added to those lists is tested here without another line.
#include "../testing.hpp"

using namespace fg;
using fg::testing::check_gradient;
using fg::testing::fill_uniform;

namespace {

constexpr index_t n = 37;  // SIMD batches and a scalar tail
using S = shape<n>;
using D = shape<dyn>;

template <class Shape>
tensor<double, Shape> make_tensor() {
  if constexpr (Shape::is_static) return {};
  else return tensor<double, Shape>(dims_t<1>{n});
}

template <class Op, class Shape>
void check_unary() {
  auto x = make_tensor<Shape>();
  const auto dom = op_traits<Op>::domain(0);
  fill_uniform(x, dom.lo, dom.hi);
  // Forward: the fused SIMD loop against the op applied to each double.
  tensor<double, Shape> y = apply<Op>(x);
  for (index_t i = 0; i < n; ++i) CHECK(y[i] == doctest::Approx(Op::forward(x[i])).epsilon(1e-12));
  check_gradient([](auto& a) { return sum(apply<Op>(a)); }, x);
  // Composed with another op, so the adjoint reaching the op is not 1.
  check_gradient([](auto& a) { return sum(apply<Op>(a) * a); }, x);
}

template <class Op, class Shape>
void check_binary() {
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

template <class Red, class Shape>
void check_reduction() {
  auto x = make_tensor<Shape>();
  const auto dom = op_traits<Red>::domain(0);
  fill_uniform(x, dom.lo, dom.hi);
  check_gradient([](auto& a) { return reduce<Red>(a) * 1.0; }, x);
  check_gradient([](auto& a) { return reduce<Red>(sin(a) + a); }, x);
}

template <class... Ops, class F>
void for_each_op(type_list<Ops...>, F f) {
  (f.template operator()<Ops>(), ...);
}

}  // namespace

TEST_CASE("every unary op: value and gradient / static and dyn extents") {
  for_each_op(ops::unary_ops{}, []<class Op>() {
    SUBCASE(Op::name) {
      check_unary<Op, S>();
      check_unary<Op, D>();
    }
  });
}

TEST_CASE("every binary op: value and gradient / same shape and broadcast") {
  for_each_op(ops::binary_ops{}, []<class Op>() {
    SUBCASE(Op::name) {
      check_binary<Op, S>();
      check_binary<Op, D>();
    }
  });
}

TEST_CASE("comparisons are steps: 1/0 values / zero gradients") {
  for_each_op(ops::comparison_ops{}, []<class Op>() {
    SUBCASE(Op::name) {
      tensor<double, S> a, b;
      fill_uniform(a, -1, 1);
      fill_uniform(b, -1, 1);
      tensor<double, S> y = apply<Op>(a, b);
      for (index_t i = 0; i < n; ++i) CHECK(y[i] == Op::forward(a[i], b[i]));
      auto [ga, gb] = grad(sum(apply<Op>(a, b) * a), a, b);
      for (index_t i = 0; i < n; ++i) {
        CHECK(ga[i] == y[i]);  // only through the `* a`
        CHECK(gb[i] == 0.0);
      }
    }
  });
}

TEST_CASE("where routes values and gradients by the condition") {
  tensor<double, S> c, a, b;
  fill_uniform(c, -1, 1);
  fill_uniform(a, -2, 2);
  fill_uniform(b, -2, 2);
  check_gradient([&](auto& p, auto& q) { return sum(where(c > 0.0, exp(p), p * q)); }, a, b);
  tensor<double, S> y = where(c > 0.0, a, b);
  for (index_t i = 0; i < n; ++i) CHECK(y[i] == (c[i] > 0 ? a[i] : b[i]));
}

TEST_CASE("every reduction over all elements: value and gradient") {
  for_each_op(ops::reductions{}, []<class Red>() {
    SUBCASE(Red::name) {
      check_reduction<Red, S>();
      check_reduction<Red, D>();
    }
  });
}

TEST_CASE("every reduction over each axis of a 3-d operand / kept or dropped") {
  for_each_op(ops::reductions{}, []<class Red>() {
    SUBCASE(Red::name) {
      tensor<double, shape<3, 4, 5>> x;
      fill_uniform(x, op_traits<Red>::domain(0).lo, op_traits<Red>::domain(0).hi);
      tensor<double, shape<4, 5>> w0;
      tensor<double, shape<3, 5>> w1;
      tensor<double, shape<3, 4>> w2;
      fill_uniform(w0, -1, 1);
      fill_uniform(w1, -1, 1);
      fill_uniform(w2, -1, 1);
      // Weighted, so each output's adjoint differs.
      check_gradient([&](auto& a) { return sum(reduce<Red>(a, axes<0>{}) * w0); }, x);
      check_gradient([&](auto& a) { return sum(reduce<Red>(a, axes<1>{}) * w1); }, x);
      check_gradient([&](auto& a) { return sum(reduce<Red>(a, axes<-1>{}) * w2); }, x);
      check_gradient([&](auto& a) { return sum(reduce<Red, true>(a, axes<0, 2>{}) * a); }, x);
    }
  });
}
