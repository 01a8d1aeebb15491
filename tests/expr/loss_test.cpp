// fg::softmax_cross_entropy: value, gradients against finite differences, stability, errors, and
// that the logits' subtree runs once.
#include "../testing.hpp"

#include <limits>

using namespace fg;

TEST_CASE("softmax_cross_entropy / value equals logsumexp minus the target's logit") {
  tensor<double, shape<3, 4>> z, y;
  fg::testing::fill_uniform(z, -2, 2);
  for (index_t r = 0; r < 3; ++r)
    y(r, (r + 1) % 4) = 1.0;
  tensor<double, shape<3>> ce = softmax_cross_entropy(z, y);
  tensor<double, shape<3>> ref = logsumexp(z, axes<1>{}) - sum(z * y, axes<1>{});
  for (index_t r = 0; r < 3; ++r)
    CHECK(ce[r] == doctest::Approx(ref[r]).epsilon(1e-12));
}

TEST_CASE("softmax_cross_entropy / gradients of logits and soft targets match differences") {
  tensor<double, shape<3, 5>> z, y;
  fg::testing::fill_uniform(z, -3, 3);
  fg::testing::fill_uniform(y, 0.1, 1);  // soft, unnormalised targets exercise sum(y) != 1
  tensor<double, shape<3>> w{0.5, -1.0, 2.0};
  fg::testing::check_gradient(
      [&](auto& zz, auto& yy) { return sum(softmax_cross_entropy(zz * 1.5, yy) * w); }, z, y);
}

TEST_CASE("softmax_cross_entropy / dyn extents, through a matmul and a bias") {
  tensor<double, shape<dyn, dyn>> x(dims_t<2>{4, 3}), w(dims_t<2>{3, 6}), y(dims_t<2>{4, 6});
  tensor<double, shape<dyn>> b(dims_t<1>{6});
  fg::testing::fill_uniform(x, -1, 1);
  fg::testing::fill_uniform(w, -1, 1);
  fg::testing::fill_uniform(b, -1, 1);
  for (index_t r = 0; r < 4; ++r)
    y(r, r) = 1.0;
  fg::testing::check_gradient(
      [&](auto& ww, auto& bb) { return mean(softmax_cross_entropy(matmul(x, ww) + bb, y)); }, w, b);
}

TEST_CASE("softmax_cross_entropy / finite with exact gradients at logits of +-1e4") {
  tensor<float, shape<2, 3>> z{1e4f, -1e4f, 0.0f, -1e4f, -1e4f, 1e4f};
  tensor<float, shape<2, 3>> y{0, 1, 0, 0, 0, 1};
  auto [v, g] = value_and_grad(sum(softmax_cross_entropy(z, y)), z);
  CHECK(std::isfinite(float(v)));
  CHECK(float(v) == doctest::Approx(2e4f));  // row 0: 1e4 - (-1e4); row 1: 0
  const float expect[] = {1, -1, 0, 0, 0, 0};
  for (int i = 0; i < 6; ++i)
    CHECK(g[i] == doctest::Approx(expect[i]));
}

namespace {
int logit_calls = 0;
struct counted_op {  // identity that counts its forward calls
  static constexpr const char* name = "counted";
  template <class V> static V forward(V x) {
    logit_calls += int(fg::simd::lanes<V>);  // elements, whatever the SIMD width
    return x;
  }
  template <class V> static V derivative(V, V) { return V(1); }
};
}  // namespace

TEST_CASE("softmax_cross_entropy / the logits' subtree runs once forward") {
  tensor<double, shape<4, 3>> z, y;
  fg::testing::fill_uniform(z, -1, 1);
  y(0, 0) = y(1, 1) = y(2, 2) = y(3, 0) = 1;
  logit_calls = 0;
  auto [v, g] = value_and_grad(mean(softmax_cross_entropy(apply<counted_op>(z), y)), z);
  const int fused = logit_calls;
  logit_calls = 0;
  auto zc = [&] { return apply<counted_op>(z); };
  auto [u, h] = value_and_grad(mean(logsumexp(zc(), axes<1>{}) - sum(zc() * y, axes<1>{})), z);
  // Once forward and once in the backward pass (which recomputes the op's value for its
  // derivative); the formula written with the logits twice runs them at least twice as often.
  CHECK(fused == 2 * 12);
  CHECK(logit_calls >= 2 * fused);
  CHECK(double(v) == doctest::Approx(double(u)));
  CHECK(g[5] == doctest::Approx(h[5]));
  CHECK(std::isfinite(double(v)));
  CHECK(g[0] == doctest::Approx(
                    (std::exp(z[0]) / (std::exp(z[0]) + std::exp(z[1]) + std::exp(z[2])) - 1) / 4));
}

TEST_CASE("softmax_cross_entropy / a shape mismatch names both shapes") {
  tensor<float, shape<dyn, 3>> z(dims_t<2>{2, 3}), y(dims_t<2>{4, 3});
  CHECK_THROWS_WITH_AS(
      softmax_cross_entropy(z, y),
      "fg::softmax_cross_entropy(): logits are [2, 3], targets are [4, 3]; they must have the "
      "same shape",
      fg::shape_error);
}

TEST_CASE("softmax_cross_entropy / zero classes is an error, not a read past the end") {
  tensor<float, shape<dyn, dyn>> z(dims_t<2>{2, 0}), y(dims_t<2>{2, 0});
  CHECK_THROWS_WITH_AS(softmax_cross_entropy(z, y),
                       "fg::softmax_cross_entropy(): there must be at least one class",
                       fg::shape_error);
}
