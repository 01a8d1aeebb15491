// tests/static_nn/conv2d_test.cpp — the static window layers against fg::nn's (the dynamic
// path's convolution and pools are checked against PyTorch: tests/dynamic/torch_parity)
#include <fusegrad/nn.hpp>
#include <fusegrad/static_nn.hpp>

#include <doctest/doctest.h>

#include <cmath>

namespace snn = fg::static_nn;

namespace {
// The largest difference between a static tensor and a var of the same elements.
template <class T, class S> double max_difference(const fg::tensor<T, S>& t, const fg::var& v) {
  REQUIRE(t.size() == v.size());
  const fg::var c = v.to(fg::float64);
  double worst = 0;
  for (fg::index_t i = 0; i < t.size(); ++i)
    worst = std::max(worst, std::abs(double(t[i]) - c.data<double>()[i]));
  return worst;
}
template <class T, class S> fg::var as_var(const fg::tensor<T, S>& t) {
  fg::extents e = fg::extents::of_rank(S::rank);
  for (std::size_t a = 0; a < S::rank; ++a)
    e[a] = S::static_extents[a];
  return fg::var::from(std::span<const T>(t.data(), std::size_t(t.size())), e);
}
}  // namespace

TEST_CASE("static_nn: conv2d (stride, padding, rectangular kernel) and pools are fg::nn's") {
  snn::generator g(3);
  using in_shape = fg::shape<2, 3, 7, 6>;
  fg::tensor<float, in_shape> x;
  for (fg::index_t i = 0; i < x.size(); ++i)
    x[i] = g.uniform(-1.0f, 1.0f);
  snn::conv2d<float, in_shape, 4, 3, 2, 2, 1> conv;
  for (fg::index_t i = 0; i < conv.weight.size(); ++i)
    conv.weight[i] = g.uniform(-0.5f, 0.5f);
  for (fg::index_t i = 0; i < conv.bias.size(); ++i)
    conv.bias[i] = g.uniform(-0.5f, 0.5f);
  const auto& y = conv(x);
  static_assert(std::is_same_v<std::remove_cvref_t<decltype(y)>,
                               fg::tensor<float, fg::shape<2, 4, 4, 4>>>);
  const fg::var expect = fg::nn::conv2d(as_var(x), as_var(conv.weight), as_var(conv.bias), 2, 1);
  CHECK(max_difference(y, expect) < 1e-6);

  // An expression as input (evaluated into the layer's own buffer), then the pools: on the same
  // elements, the same results.
  const fg::var yv = as_var(y);
  snn::max_pool2d<float, fg::shape<2, 4, 4, 4>, 2> max_pool;
  snn::avg_pool2d<float, fg::shape<2, 4, 4, 4>, 3, 1> avg_pool;
  const auto& m = max_pool(fg::relu(y));
  CHECK(max_difference(m, fg::nn::max_pool2d(fg::relu(yv), 2)) == 0);
  CHECK(max_difference(avg_pool(y), fg::nn::avg_pool2d(yv, 3, 1)) < 1e-6);
  const fg::tensor<float, fg::shape<2, 16>> flat = snn::flatten{}(m);
  CHECK(max_difference(flat, fg::reshape(fg::nn::max_pool2d(fg::relu(yv), 2), {2, 16})) == 0);
}
