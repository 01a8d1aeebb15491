// cumsum and cumprod: values along any dim, integer results in int64, gradients against finite
// differences (cumprod at zeros too).
#include "dynamic_testing.hpp"

#include <fusegrad/dynamic/scan.hpp>

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

TEST_CASE("scan / cumsum and cumprod along a dim") {
  const var x = var::from({1, 2, 3, 4, 5, 6}, {2, 3});
  const var s = cumsum(x, 1), p = cumprod(x, 0);
  CHECK(s(1, 2) == 15.0);
  CHECK(s(0, 1) == 3.0);
  CHECK(p(1, 0) == 4.0);
  CHECK(p(1, 2) == 18.0);
  CHECK(cumsum(x, -1).at(2) == 6.0);
  const var i = cumsum(var::from({1, 1, 0, 1}, {4}, dtype::bool_), 0);
  CHECK(i.dtype() == dtype::int64);
  CHECK(i.at<std::int64_t>(3) == 3);
  CHECK(cumprod(var::from({2, 3}, {2}, dtype::int32), 0).at<std::int64_t>(1) == 6);
}

TEST_CASE("scan / gradients against finite differences") {
  check_var_gradient([](const auto& v) { return sum(sin(cumsum(v[0], 1))); },
                     {leaf({3, 4}, -1, 1)});
  check_var_gradient([](const auto& v) { return sum(sin(cumprod(v[0], 0))); },
                     {leaf({4, 3}, 0.5, 1.5)});
  // A zero in the line: the gradient is the product of the others, not 0/0.
  var z = var::from({2, 0, 3, 4}, {4}, dtype::float64).requires_grad(true);
  sum(cumprod(z, 0)).backward();
  CHECK(z.grad().at(0) == 1.0);               // d/dz0 of z0 + z0 z1 + ...: 1 + z1 (1 + ...) = 1
  CHECK(z.grad().at(1) == 2.0 + 6.0 + 24.0);  // z0 (1 + z2 + z2 z3)
  CHECK(z.grad().at(2) == 0.0);
  var w = var::from({2, 0, 0, 4}, {4}, dtype::float64).requires_grad(true);
  check_var_gradient(
      [](const auto& v) {
        return sum(cumprod(v[0], 0) * var::from({1, 2, 3, 4}, {4}, dtype::float64));
      },
      {w});
}
