// The op table for ops/reduce.hpp: every reduction over all elements and over each axis.
#include "op_table.hpp"

using namespace fg;
using namespace fg::testing;

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
