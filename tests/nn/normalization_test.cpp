// BatchNorm2d and LayerNorm: normalised statistics, running statistics, eval mode, gradients.
#include "../dynamic/dynamic_testing.hpp"

#include <fusegrad/nn/normalization.hpp>

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

TEST_CASE("nn / BatchNorm2d: per-channel batch statistics in training, running ones in eval") {
  nn::BatchNorm2d bn(2, 1e-5, 0.1, dtype::float64);
  var x = leaf({3, 2, 2, 2}, -2, 4);
  var y = bn(x);
  for (index_t c = 0; c < 2; ++c) {
    double m = 0, m2 = 0, xm = 0, xv = 0;
    for (index_t n = 0; n < 3; ++n)
      for (index_t p = 0; p < 4; ++p) {
        const index_t i = (n * 2 + c) * 4 + p;
        m += y.at(i) / 12;
        m2 += y.at(i) * y.at(i) / 12;
        xm += x.at(i) / 12;
      }
    for (index_t n = 0; n < 3; ++n)
      for (index_t p = 0; p < 4; ++p)
        xv += std::pow(x.at((n * 2 + c) * 4 + p) - xm, 2) / 11;  // unbiased
    CHECK(m == doctest::Approx(0).scale(1));
    CHECK(m2 == doctest::Approx(1).epsilon(1e-4));
    CHECK(bn.running_mean.at(c) == doctest::Approx(0.1 * xm));
    CHECK(bn.running_var.at(c) == doctest::Approx(0.9 + 0.1 * xv));
  }
  bn.eval();
  var e = bn(x);
  CHECK(e.at(0) == doctest::Approx((x.at(0) - bn.running_mean.at(0)) /
                                   std::sqrt(bn.running_var.at(0) + 1e-5)));
  bn.train();
  var w = leaf({3, 2, 2, 2}, -1, 1);
  check_var_gradient([&](const auto& v) { return sum(bn(v[0]) * v[1]); }, {x, w});
  check_var_gradient([&](const auto&) { return sum(bn(x) * w); }, {bn.weight, bn.bias});
  CHECK_THROWS_WITH_AS(bn(var::zeros({2, 3, 2, 2})),
                       "fg::nn::BatchNorm2d: x is [2, 3, 2, 2]; expected [N, 2, H, W]",
                       shape_error);
}

TEST_CASE("nn / LayerNorm over the last axis: values and gradients") {
  nn::LayerNorm ln(4, 1e-5, dtype::float64);
  var x = leaf({2, 3, 4}, -2, 2);
  var y = ln(x);
  for (index_t r = 0; r < 6; ++r) {
    double m = 0, v = 0;
    for (index_t k = 0; k < 4; ++k)
      m += x.at(r * 4 + k) / 4;
    for (index_t k = 0; k < 4; ++k)
      v += std::pow(x.at(r * 4 + k) - m, 2) / 4;
    for (index_t k = 0; k < 4; ++k)
      CHECK(y.at(r * 4 + k) == doctest::Approx((x.at(r * 4 + k) - m) / std::sqrt(v + 1e-5)));
  }
  var w = leaf({2, 3, 4}, -1, 1);
  check_var_gradient([&](const auto& v) { return sum(ln(v[0]) * v[1]); }, {x, w});
  check_var_gradient([&](const auto&) { return sum(ln(x) * w); }, {ln.weight, ln.bias});
  CHECK_THROWS_AS(ln(var::zeros({2, 5})), shape_error);
}
