// BatchNorm2d, LayerNorm, GroupNorm, InstanceNorm2d and RMSNorm: normalised statistics, running
// statistics, eval mode, gradients, errors.
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
  // One value per channel: PyTorch refuses to train on it ("Expected more than 1 value per
  // channel"), and so do we; evaluation uses the running statistics and takes it.
  CHECK_THROWS_WITH_AS(bn(var::zeros({1, 2, 1, 1}, dtype::float64)),
                       doctest::Contains("x is [1, 2, 1, 1]; training needs more than 1 value per "
                                         "channel"),
                       shape_error);
  CHECK_NOTHROW(bn(var::zeros({2, 2, 1, 1}, dtype::float64)));
  CHECK_NOTHROW(bn(var::zeros({1, 2, 2, 1}, dtype::float64)));
  bn.eval();
  CHECK(bn(var::zeros({1, 2, 1, 1}, dtype::float64)).shape() == extents{1, 2, 1, 1});
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

// x's elements standardised within each slice of `n` consecutive elements (biased variance).
static std::vector<double> standardised(const var& x, index_t n, double eps) {
  std::vector<double> out;
  for (index_t s = 0; s < x.size() / n; ++s) {
    double m = 0, v = 0;
    for (index_t k = 0; k < n; ++k)
      m += x.at(s * n + k) / double(n);
    for (index_t k = 0; k < n; ++k)
      v += std::pow(x.at(s * n + k) - m, 2) / double(n);
    for (index_t k = 0; k < n; ++k)
      out.push_back((x.at(s * n + k) - m) / std::sqrt(v + eps));
  }
  return out;
}

TEST_CASE("nn / GroupNorm: statistics per group of channels, affine per channel, gradients") {
  nn::GroupNorm gn(2, 4, 1e-5, true, dtype::float64);
  var x = leaf({3, 4, 2, 3}, -2, 2);
  const std::vector<double> want = standardised(x, 2 * 2 * 3, 1e-5);  // 2 channels of 2 x 3
  const var y = gn(x);
  REQUIRE(y.shape() == x.shape());
  for (index_t i = 0; i < y.size(); ++i)
    CHECK(y.at(i) == doctest::Approx(want[std::size_t(i)]));
  var w = leaf({3, 4, 2, 3}, -1, 1);
  check_var_gradient([&](const auto& v) { return sum(gn(v[0]) * v[1]); }, {x, w});
  check_var_gradient([&](const auto&) { return sum(gn(x) * w); }, {gn.weight, gn.bias});
  nn::GroupNorm plain(1, 3, 1e-5, false, dtype::float64);  // one group: LayerNorm over C, L
  CHECK(plain.parameters().empty());
  const var z = leaf({2, 3, 5}, -1, 1);
  CHECK(plain(z).at(7) == doctest::Approx(standardised(z, 15, 1e-5)[7]));
  CHECK_THROWS_WITH_AS(gn(var::zeros({3, 5, 2})), "fg::nn::GroupNorm: x is [3, 5, 2]; expected "
                                                  "[N, 4, ...]",
                       shape_error);
  CHECK_THROWS_AS(nn::GroupNorm(3, 4), std::invalid_argument);
}

TEST_CASE("nn / InstanceNorm2d: each sample's channel by itself, running statistics if tracked") {
  nn::InstanceNorm2d in(3, 1e-5, 0.1, true, true, dtype::float64);
  var x = leaf({2, 3, 2, 2}, -2, 2);
  const var y = in(x);
  const std::vector<double> want = standardised(x, 4, 1e-5);
  for (index_t i = 0; i < y.size(); ++i)
    CHECK(y.at(i) == doctest::Approx(want[std::size_t(i)]));
  // running_mean: 0.9 * 0 + 0.1 * (the batch's average of each sample's channel mean)
  double m0 = 0, v0 = 0;
  for (index_t s = 0; s < 2; ++s) {
    double m = 0, v = 0;
    for (index_t k = 0; k < 4; ++k)
      m += x.at(s * 12 + k) / 4;
    for (index_t k = 0; k < 4; ++k)
      v += std::pow(x.at(s * 12 + k) - m, 2) / 3;  // unbiased
    m0 += m / 2;
    v0 += v / 2;
  }
  CHECK(in.running_mean.at(0) == doctest::Approx(0.1 * m0));
  CHECK(in.running_var.at(0) == doctest::Approx(0.9 + 0.1 * v0));
  var w = leaf({2, 3, 2, 2}, -1, 1);
  check_var_gradient([&](const auto& v) { return sum(in(v[0]) * v[1]); }, {x, w});
  in.eval();  // the running statistics now
  const var e = in(x);
  CHECK(e.at(0) == doctest::Approx((x.at(0) - in.running_mean.at(0)) /
                                   std::sqrt(in.running_var.at(0) + 1e-5)));
  nn::InstanceNorm2d own(3, 1e-5, 0.1, false, false, dtype::float64);  // PyTorch's default
  own.eval();  // untracked: its own statistics in evaluation too
  CHECK(own(x).at(5) == doctest::Approx(want[5]));
  CHECK(own(reshape(x, {2, 3, 2, 2})).shape() == extents{2, 3, 2, 2});
  CHECK(own(var::ones({3, 2, 2}, dtype::float64) * 2.0).shape() == extents{3, 2, 2});  // unbatched
  own.train();
  CHECK_THROWS_WITH_AS(own(var::zeros({2, 3, 1, 1})),
                       doctest::Contains("needs more than 1 value (H * W > 1)"), shape_error);
  CHECK_THROWS_AS(own(var::zeros({2, 4, 2, 2})), shape_error);
}

TEST_CASE("nn / RMSNorm over trailing axes: the dtype's epsilon by default, gradients") {
  nn::RMSNorm rms({3, 4}, std::nullopt, true, dtype::float64);
  var x = leaf({2, 3, 4}, -2, 2);
  const var y = rms(x);
  for (index_t s = 0; s < 2; ++s) {
    double ms = 0;
    for (index_t k = 0; k < 12; ++k)
      ms += x.at(s * 12 + k) * x.at(s * 12 + k) / 12;
    for (index_t k = 0; k < 12; ++k)
      CHECK(y.at(s * 12 + k) == doctest::Approx(x.at(s * 12 + k) /
                                                std::sqrt(ms + 2.220446049250313e-16)));
  }
  var w = leaf({2, 3, 4}, -1, 1);
  check_var_gradient([&](const auto& v) { return sum(rms(v[0]) * v[1]); }, {x, w});
  check_var_gradient([&](const auto&) { return sum(rms(x) * w); }, {rms.weight});
  CHECK(rms.weight.shape() == extents{3, 4});
  CHECK(nn::RMSNorm::epsilon_of(dtype::float32) == double(std::numeric_limits<float>::epsilon()));
  CHECK(nn::RMSNorm::epsilon_of(dtype::bfloat16) == 0.0078125);
  nn::RMSNorm last(4, 0.5, false);
  CHECK(last.parameters().empty());
  CHECK(last(var::full({1, 4}, 1.0)).at(0) == doctest::Approx(1 / std::sqrt(1.5)));
  CHECK_THROWS_WITH_AS(rms(var::zeros({2, 4, 3})),
                       "fg::nn::RMSNorm: x is [2, 4, 3]; its last axes must be [3, 4]",
                       shape_error);
}
