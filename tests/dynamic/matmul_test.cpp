// Matrix products of vars: 2-D and batched, values and gradients.
#include "dynamic_testing.hpp"

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

TEST_CASE("dynamic / matmul 2-D and batched: gradients against finite differences") {
  var a = leaf({3, 4}, -1, 1), b = leaf({4, 2}, -1, 1);
  check_var_gradient([](const auto& v) { return sum(sin(matmul(v[0], v[1]))); }, {a, b});
  var ba = leaf({2, 3, 4}, -1, 1), bb = leaf({2, 4, 5}, -1, 1);
  check_var_gradient([](const auto& v) { return sum(sin(matmul(v[0], v[1]))); }, {ba, bb});
  // A 2-D operand shared by every batch gets the sum of the batches' gradients.
  check_var_gradient([](const auto& v) { return sum(sin(matmul(v[0], v[1]))); }, {ba, b});
  check_var_gradient([](const auto& v) { return sum(sin(matmul(v[0], v[1]))); }, {a, bb});
}

TEST_CASE("dynamic / matmul value and shape errors") {
  var a = var::from({1, 2, 3, 4}, {2, 2}), b = var::from({1, 0, 0, 1}, {2, 2});
  var c = matmul(a, b);
  CHECK(c.at(3) == 4.0);
  CHECK_THROWS_WITH_AS(matmul(var::zeros({2, 3}), var::zeros({2, 3})),
                       "fg::matmul(): A is [2, 3], B is [2, 3]; A's columns must equal B's rows",
                       fg::shape_error);
}

TEST_CASE("dynamic / matmul with an empty side gives zero gradients") {
  var a = var::zeros({0, 3}, dtype::float64).requires_grad(true);
  var b = leaf({3, 2}, -1, 1);
  sum(matmul(a, b)).backward();
  for (index_t i = 0; i < 6; ++i)
    CHECK(b.grad().at(i) == 0.0);
}
