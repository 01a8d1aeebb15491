// The op table for ops/binary.hpp: binary ops, comparisons and where.
#include "op_table.hpp"

using namespace fg;
using namespace fg::testing;

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
      for (index_t i = 0; i < n; ++i)
        CHECK(y[i] == Op::forward(a[i], b[i]));
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
  for (index_t i = 0; i < n; ++i)
    CHECK(y[i] == (c[i] > 0 ? a[i] : b[i]));
}
