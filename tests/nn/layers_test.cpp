// nn layers: values against direct loops, gradients against finite differences (float64),
// parameter names, and the errors a misuse gets.
#include "../dynamic/dynamic_testing.hpp"

#include <fusegrad/nn.hpp>

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

TEST_CASE("nn / linear: y = x W^T + b, gradients of x, W and b") {
  var x = leaf({2, 3, 4}, -1, 1), w = leaf({5, 4}, -1, 1), b = leaf({5}, -1, 1);
  var y = nn::linear(x, w, b);
  CHECK(y.shape() == extents{2, 3, 5});
  for (index_t r = 0; r < 6; ++r)
    for (index_t o = 0; o < 5; ++o) {
      double e = b.at(o);
      for (index_t i = 0; i < 4; ++i)
        e += x.at(r * 4 + i) * w.at(o * 4 + i);
      CHECK(y.at(r * 5 + o) == doctest::Approx(e).epsilon(1e-12));
    }
  check_var_gradient([](const auto& v) { return sum(square(nn::linear(v[0], v[1], v[2]))); },
                     {x, w, b});
  check_var_gradient([](const auto& v) { return sum(square(nn::linear(v[0], v[1]))); }, {x, w});
  CHECK_THROWS_WITH_AS(nn::linear(var::zeros({2, 3}), var::zeros({5, 4})),
                       "fg::nn::linear(): x is [2, 3], weight [5, 4], bias none; expected x "
                       "[..., in], weight [out, in], bias [out]",
                       shape_error);
}

namespace {
// The convolution by its definition, one output element at a time.
double direct_conv(const var& x, const var& w, const var& b, index_t s, index_t p, index_t n,
                   index_t o, index_t y, index_t xo) {
  const extents &sx = x.shape(), &sw = w.shape();
  double acc = b.defined() ? b.at(o) : 0;
  for (index_t c = 0; c < sx[1]; ++c)
    for (index_t i = 0; i < sw[2]; ++i)
      for (index_t j = 0; j < sw[3]; ++j) {
        const auto r = std::ptrdiff_t(y * s + i) - std::ptrdiff_t(p),
                   q = std::ptrdiff_t(xo * s + j) - std::ptrdiff_t(p);
        if (r < 0 || q < 0 || r >= std::ptrdiff_t(sx[2]) || q >= std::ptrdiff_t(sx[3]))
          continue;
        acc += x.at(((n * sx[1] + c) * sx[2] + index_t(r)) * sx[3] + index_t(q)) *
               w.at(((o * sw[1] + c) * sw[2] + i) * sw[3] + j);
      }
  return acc;
}
}  // namespace

TEST_CASE("nn / conv2d against its definition, with stride and padding, and its gradients") {
  for (index_t stride : {1, 2})
    for (index_t pad : {0, 1}) {
      INFO("stride " << stride << ", padding " << pad);
      var x = leaf({2, 3, 5, 6}, -1, 1), w = leaf({4, 3, 3, 2}, -1, 1), b = leaf({4}, -1, 1);
      var y = nn::conv2d(x, w, b, stride, pad);
      const index_t ho = (5 + 2 * pad - 3) / stride + 1, wo = (6 + 2 * pad - 2) / stride + 1;
      REQUIRE(y.shape() == extents{2, 4, ho, wo});
      for (index_t n = 0; n < 2; ++n)
        for (index_t o = 0; o < 4; ++o)
          for (index_t r = 0; r < ho; ++r)
            for (index_t q = 0; q < wo; ++q)
              CHECK(y.at(((n * 4 + o) * ho + r) * wo + q) ==
                    doctest::Approx(direct_conv(x, w, b, stride, pad, n, o, r, q)).epsilon(1e-12));
      check_var_gradient(
          [=](const auto& v) { return sum(square(nn::conv2d(v[0], v[1], v[2], stride, pad))); },
          {x, w, b});
    }
  var x = leaf({1, 2, 4, 4}, -1, 1), w = leaf({3, 2, 2, 2}, -1, 1);
  check_var_gradient([](const auto& v) { return sum(square(nn::conv2d(v[0], v[1]))); }, {x, w});
  CHECK_THROWS_WITH_AS(nn::conv2d(var::zeros({1, 2, 4, 4}), var::zeros({3, 1, 2, 2})),
                       "fg::nn::conv2d(): x is [1, 2, 4, 4], weight [3, 1, 2, 2], bias none, "
                       "stride 1, padding 0; the weight's input channels must equal x's channels",
                       shape_error);
  CHECK_THROWS_AS(nn::conv2d(var::zeros({1, 1, 2, 2}), var::zeros({1, 1, 3, 3})), shape_error);
}

TEST_CASE("nn / max pooling propagates NaN, its gradient to the window's last NaN (PyTorch's)") {
  const double nan = std::nan("");
  var x = var::from({1, nan, 3, 4, 5, 6, nan, 8, 9, 10, nan, 12, 13, 14, 15, 16}, {1, 1, 4, 4},
                    dtype::float64)
              .requires_grad(true);
  var y = nn::max_pool2d(x, 2);
  CHECK(std::isnan(y.at(0)));  // window {1, nan, 5, 6}
  CHECK(std::isnan(y.at(1)));  // {3, 4, nan, 8}
  CHECK(y.at(2) == 14);        // {9, 10, 13, 14}
  CHECK(std::isnan(y.at(3)));  // {nan, 12, 15, 16}
  sum(y).backward();
  for (index_t i : {1, 6, 13, 10})  // each window's NaN, or its maximum
    CHECK(x.grad().at(i) == 1);
  CHECK(sum(x.grad()).item() == 4);
  var two = var::from({nan, nan, 1, 2}, {1, 1, 2, 2}).requires_grad(true);
  sum(nn::max_pool2d(two, 2)).backward();
  CHECK(two.grad().at(0) == 0);
  CHECK(two.grad().at(1) == 1);  // the last NaN wins, as PyTorch's kernel keeps updating on NaN
}

TEST_CASE("nn / max and average pooling: values, gradients, overlapping windows") {
  var x = var::from({1, 5, 2, 0, 3, 4, 9, 8, 7, 6, 2, 1, 0, 0, 0, 0}, {1, 1, 4, 4}, dtype::float64);
  var m = nn::max_pool2d(x, 2);
  CHECK(m.shape() == extents{1, 1, 2, 2});
  CHECK(m.at(0) == 5);
  CHECK(m.at(1) == 9);
  CHECK(m.at(2) == 7);
  CHECK(m.at(3) == 2);
  var a = nn::avg_pool2d(x, 2);
  CHECK(a.at(0) == doctest::Approx((1 + 5 + 3 + 4) / 4.0));
  for (index_t stride : {1, 2}) {
    INFO("stride " << stride);
    var v = leaf({2, 3, 5, 5}, -1, 1);  // distinct values: the max is unique
    check_var_gradient([=](const auto& u) { return sum(square(nn::max_pool2d(u[0], 2, stride))); },
                       {v});
    check_var_gradient([=](const auto& u) { return sum(square(nn::avg_pool2d(u[0], 3, stride))); },
                       {v});
  }
  CHECK_THROWS_WITH_AS(
      nn::max_pool2d(var::zeros({1, 1, 3, 3}), 4),
      "fg::nn::max_pool2d(): x is [1, 1, 3, 3], kernel 4, stride 4; x must be "
      "[N, C, H, W] with H and W at least the kernel, kernel and stride at least 1",
      shape_error);
}

TEST_CASE("nn / softmax, log_softmax and GELU: values and gradients") {
  var x = leaf({3, 4}, -3, 3);
  var s = nn::softmax(x, 1);
  for (index_t r = 0; r < 3; ++r) {
    double z = 0;
    for (index_t k = 0; k < 4; ++k)
      z += std::exp(x.at(r * 4 + k));
    for (index_t k = 0; k < 4; ++k)
      CHECK(s.at(r * 4 + k) == doctest::Approx(std::exp(x.at(r * 4 + k)) / z).epsilon(1e-12));
  }
  var big = var::from({1e4, -1e4, 0}, {1, 3}, dtype::float64);
  CHECK(nn::log_softmax(big).at(0) == doctest::Approx(0.0));
  CHECK(nn::log_softmax(big).at(1) == doctest::Approx(-2e4));
  CHECK(nn::gelu(var::from({1.0}, {1}, dtype::float64)).item() ==
        doctest::Approx(0.5 * (1 + std::erf(1 / std::sqrt(2.0)))));
  var w = leaf({3, 4}, -1, 1);
  check_var_gradient([](const auto& v) { return sum(nn::softmax(v[0], 0) * v[1]); }, {x, w});
  check_var_gradient([](const auto& v) { return sum(nn::log_softmax(v[0]) * v[1]); }, {x, w});
  check_var_gradient([](const auto& v) { return sum(nn::gelu(v[0]) * v[1]); }, {x, w});
}

TEST_CASE("nn / modules: PyTorch's parameter names, train/eval, state dict round trip") {
  generator g(3);
  nn::Sequential net(nn::Conv2d(1, 2, 3, g), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
                     nn::Linear(2, 4, g), nn::Tanh(), nn::Linear(4, 3, g, false));
  std::vector<std::string> names;
  for (auto& [name, p] : net.named_parameters()) {
    names.push_back(name);
    CHECK(p.requires_grad());
  }
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "4.weight", "4.bias", "6.weight"});
  CHECK(net.training());
  net.eval();
  CHECK(!net.training());
  CHECK(!net[4].training());
  var x = var::randn({2, 1, 4, 4}, g);
  const var y = net(x);
  CHECK(y.shape() == extents{2, 3});

  generator other(4);
  nn::Sequential twin(nn::Conv2d(1, 2, 3, other), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
                      nn::Linear(2, 4, other), nn::Tanh(), nn::Linear(4, 3, other, false));
  CHECK(twin(x).at(0) != y.at(0));
  twin.load_state_dict(net.state_dict());
  for (index_t i = 0; i < y.size(); ++i)
    CHECK(twin(x).at(i) == y.at(i));

  nn::state_dict sd = net.state_dict();
  sd.erase("4.bias");
  CHECK_THROWS_WITH_AS(twin.load_state_dict(sd),
                       "fg::nn::module::load_state_dict(): '4.bias' is missing from the state dict",
                       std::invalid_argument);
  sd = net.state_dict();
  sd["4.bias"] = var::zeros({5});
  CHECK_THROWS_WITH_AS(twin.load_state_dict(sd),
                       "fg::nn::module::load_state_dict(): '4.bias' is [5] float32 in the state "
                       "dict, [4] float32 in the model",
                       shape_error);
  sd = net.state_dict();
  sd["extra"] = var::zeros({1});
  CHECK_THROWS_AS(twin.load_state_dict(sd), std::invalid_argument);
}

TEST_CASE("nn / the same seed builds the same model") {
  generator a(11), b(11);
  nn::Linear la(7, 3, a), lb(7, 3, b);
  for (index_t i = 0; i < la.weight.size(); ++i)
    CHECK(la.weight.at(i) == lb.weight.at(i));
  const double bound = 1 / std::sqrt(7.0);
  for (index_t i = 0; i < la.weight.size(); ++i)
    CHECK(std::abs(la.weight.at(i)) <= bound);
}

TEST_CASE(
    "nn / dropout: zeros about p of the elements in training, scales the rest, identity in eval") {
  nn::Dropout drop(0.25, 9);
  var x = var::ones({4000}, dtype::float64).requires_grad(true);
  var y = drop(x);
  index_t zeros = 0;
  for (index_t i = 0; i < y.size(); ++i) {
    CHECK((y.at(i) == 0 || y.at(i) == doctest::Approx(1 / 0.75)));
    zeros += y.at(i) == 0;
  }
  CHECK(zeros > 900);
  CHECK(zeros < 1100);
  sum(y).backward();  // the gradient is masked and scaled the same way
  for (index_t i = 0; i < y.size(); ++i)
    CHECK(x.grad().at(i) == y.at(i));
  nn::Dropout again(0.25, 9);
  var z = again(var::ones({4000}, dtype::float64));
  for (index_t i = 0; i < 50; ++i)
    CHECK(z.at(i) == y.at(i));  // the same seed, the same masks
  drop.eval();
  CHECK(drop(x).at(3) == 1.0);
  CHECK_THROWS_AS(nn::Dropout(1.0), std::invalid_argument);
}

TEST_CASE("nn / embedding: rows by index, gradients added per row") {
  generator g(2);
  nn::Embedding emb(5, 3, g, dtype::float64);
  var idx = var::from({4, 1, 4}, {3}, dtype::int64);
  var y = emb(idx);
  CHECK(y.shape() == extents{3, 3});
  for (index_t d = 0; d < 3; ++d) {
    CHECK(y.at(d) == emb.weight.at(12 + d));
    CHECK(y.at(3 + d) == emb.weight.at(3 + d));
  }
  var w = leaf({3, 3}, -1, 1);
  sum(y * w).backward();
  CHECK(emb.weight.grad().at(12) == doctest::Approx(w.at(0) + w.at(6)));  // row 4, used twice
  CHECK(emb.weight.grad().at(0) == 0.0);
  CHECK(emb(var::from({1, 2, 3, 0}, {2, 2}, dtype::int32)).shape() == extents{2, 2, 3});
  CHECK_THROWS_WITH_AS(emb(var::from({5}, {1}, dtype::int64)),
                       "fg::nn::embedding(): index 5 is out of range for the rows of the weight "
                       "[5, 3] of size 5",
                       index_error);
  CHECK_THROWS_WITH_AS(emb(var::from({1}, {1})),
                       "fg::nn::embedding(): the indices are float32; indices must be an integer "
                       "tensor (convert them with .to(fg::int64))",
                       dtype_error);
}

#ifdef FUSEGRAD_USE_CBLAS
TEST_CASE("nn / the BLAS products agree with the library's own GEMM") {
  var x = leaf({5, 7}, -1, 1), w = leaf({3, 7}, -1, 1), b = leaf({3}, -1, 1);
  var img = leaf({2, 2, 5, 5}, -1, 1), k = leaf({3, 2, 3, 3}, -1, 1);
  auto run = [&] {
    for (var* v : {&x, &w, &b, &img, &k})
      v->zero_grad();
    var y = nn::linear(x, w, b), z = nn::conv2d(img, k, var(), 2, 1);
    (sum(square(y)) + sum(square(z))).backward();
    std::vector<double> all;
    for (const var& v : {y, z, x.grad(), w.grad(), b.grad(), img.grad(), k.grad()})
      for (index_t i = 0; i < v.size(); ++i)
        all.push_back(v.at(i));
    return all;
  };
  REQUIRE(nn::blas_enabled());
  const std::vector<double> blas = run();
  nn::blas_enabled() = false;
  const std::vector<double> own = run();
  nn::blas_enabled() = true;
  REQUIRE(blas.size() == own.size());
  for (std::size_t i = 0; i < own.size(); ++i)
    CHECK(blas[i] == doctest::Approx(own[i]).epsilon(1e-12));
}
#endif
