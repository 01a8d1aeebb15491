// nn losses: values by hand, stability at logits of +-1e4, gradients against finite differences.
#include "../dynamic/dynamic_testing.hpp"

#include <fusegrad/nn.hpp>

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

TEST_CASE("loss / cross-entropy from logits: value, gradient, stable at +-1e4") {
  var z = var::from({1, 2, 3, 0, 0, 0}, {2, 3}, dtype::float64);
  var t = var::from({2, 0}, {2}, dtype::int64);  // class indices
  const double l0 = std::log(std::exp(1) + std::exp(2) + std::exp(3)) - 3, l1 = std::log(3.0);
  CHECK(nn::cross_entropy(z, t).item() == doctest::Approx((l0 + l1) / 2).epsilon(1e-12));
  CHECK(nn::nll_loss(nn::log_softmax(z, 1), t).item() ==
        doctest::Approx((l0 + l1) / 2).epsilon(1e-12));
  var big = var::from({1e4, -1e4, 0, -1e4, 1e4, 0}, {2, 3}, dtype::float64);
  var right = var::from({0, 1}, {2}, dtype::int64), wrong = var::from({1, 0}, {2}, dtype::int32);
  CHECK(nn::cross_entropy(big, right).item() == doctest::Approx(0.0));
  CHECK(nn::cross_entropy(big, wrong).item() == doctest::Approx(2e4));
  var bigf = var::from({1e4, -1e4, 0, -1e4, 1e4, 0}, {2, 3}, dtype::float32);
  CHECK(std::isfinite(nn::cross_entropy(bigf, wrong).item()));
  var x = leaf({4, 5}, -3, 3);
  var c = var::from({0, 4, 2, 2}, {4}, dtype::uint8);
  check_var_gradient([&](const auto& v) { return nn::cross_entropy(v[0], c); }, {x});
  var huge = var::from({1e4, -1e4, 0, -1e4, 1e4, 0}, {2, 3}, dtype::float64).requires_grad(true);
  nn::cross_entropy(huge, wrong).backward();
  for (index_t i = 0; i < 6; ++i)
    CHECK(std::isfinite(huge.grad().at(i)));
  CHECK(huge.grad().at(0) == doctest::Approx(0.5));   // softmax 1, minus 0, over the batch of 2
  CHECK(huge.grad().at(1) == doctest::Approx(-0.5));  // softmax 0, minus 1
  CHECK_THROWS_WITH_AS(nn::cross_entropy(var::zeros({2, 3}), var::zeros({3}, dtype::int64)),
                       "fg::nn::cross_entropy(): scores are [2, 3], targets [3]; expected "
                       "[N, classes] and [N] class indices",
                       shape_error);
  CHECK_THROWS_WITH_AS(nn::cross_entropy(var::zeros({1, 3}), var::from({3}, {1}, dtype::int64)),
                       "fg::nn::cross_entropy(): index 3 is out of range for the classes of size 3",
                       index_error);
  CHECK_THROWS_WITH_AS(nn::nll_loss(var::zeros({1, 3}), var::from({2}, {1})),
                       "fg::nn::nll_loss(): the indices are float32; indices must be an integer "
                       "tensor (convert them with .to(fg::int64))",
                       dtype_error);
}

TEST_CASE("loss / MSE and binary cross-entropy with logits") {
  var a = var::from({1, 2}, {2}, dtype::float64), b = var::from({0, 4}, {2}, dtype::float64);
  CHECK(nn::mse_loss(a, b).item() == doctest::Approx(2.5));
  var z = var::from({0, 1e4, -1e4}, {3}, dtype::float64),
      y = var::from({1, 1, 1}, {3}, dtype::float64);
  CHECK(nn::binary_cross_entropy_with_logits(z, y).item() ==
        doctest::Approx((std::log(2.0) + 0 + 1e4) / 3));
  var p = leaf({3, 2}, -2, 2), q = leaf({3, 2}, -2, 2), r = leaf({3, 2}, 0, 1);
  check_var_gradient([](const auto& v) { return nn::mse_loss(v[0], v[1]); }, {p, q});
  check_var_gradient([](const auto& v) { return nn::binary_cross_entropy_with_logits(v[0], v[1]); },
                     {p, r});
  CHECK_THROWS_AS(nn::binary_cross_entropy_with_logits(var::zeros({2}), var::zeros({3})),
                  shape_error);
}
