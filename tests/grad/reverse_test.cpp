// grad/reverse.hpp's planner (which occurrence stores, which adds, what is zeroed first, a tensor
// named twice) and exec/boundary.hpp's reductions inside a gradient (max ties, prod zeros), by
// their results. Both headers come in through fusegrad.hpp; they are named here so that a change
// to either is seen to be tested here.
#include "../testing.hpp"

#include <fusegrad/exec/boundary.hpp>
#include <fusegrad/grad/reverse.hpp>

using namespace fg;

TEST_CASE("a leaf used several times accumulates and an absent one gets zeros") {
  tensor<double, shape<5>> x{1, 2, 3, 4, 5}, unused{1, 1, 1, 1, 1};
  auto [gx, gu] = grad(sum(x * x + exp(x) * x - x), x, unused);
  for (int i = 0; i < 5; ++i) {
    const double xi = x[i];
    CHECK(gx[i] == doctest::Approx(2 * xi + std::exp(xi) * (xi + 1) - 1));
    CHECK(gu[i] == 0.0);
  }
}

TEST_CASE("mean at the root scales the seed") {
  tensor<double, shape<4>> x{1, 2, 3, 4};
  auto [v, g] = value_and_grad(mean(x * x), x);
  CHECK(v == doctest::Approx(7.5));
  CHECK(g[3] == doctest::Approx(2.0));
}

TEST_CASE("vjp: a seed tensor or seed expression / broadcast bias gradient") {
  tensor<double, shape<3, 2>> x{1, 2, 3, 4, 5, 6};
  tensor<double, shape<2>> b{0.5, -0.5};
  tensor<double, shape<3, 2>> seed{1, 0, 0, 1, 2, 2};
  auto [gx, gb] = vjp(x * x + b, seed, x, b);
  CHECK(gx(0, 0) == 2.0);
  CHECK(gx(0, 1) == 0.0);
  CHECK(gx(2, 1) == 24.0);
  CHECK(gb[0] == 3.0);
  CHECK(gb[1] == 3.0);
  auto gx2 = vjp(sin(x), seed * 2.0, x);
  CHECK(gx2(2, 0) == doctest::Approx(4 * std::cos(5.0)));
}

TEST_CASE("gradients of a scalar parameter broadcast over a dyn vector") {
  tensor<double, shape<dyn>> x(dims_t<1>{101});
  fg::testing::fill_uniform(x, -1, 1);
  tensor<double, shape<>> mu{0.3}, sigma{1.7};
  // Normal log-density: the W6 problem.
  fg::testing::check_gradient(
      [](auto& v, auto& m, auto& s) {
        return sum(-0.5 * square((v - m) / s) - log(s) - 0.9189385332046727);
      },
      x, mu, sigma);
}

TEST_CASE("grad of a non-sum root: max / prod and nested reductions") {
  tensor<double, shape<2, 3>> a;
  fg::testing::fill_uniform(a, 0.5, 1.5);
  fg::testing::check_gradient([](auto& x) { return max(x * 2.0); }, a);
  fg::testing::check_gradient([](auto& x) { return exp(sum(x)) * prod(x); }, a);
  fg::testing::check_gradient([](auto& x) { return logsumexp(sum(x, axes<0>{}) * mean(x)); }, a);
}

TEST_CASE("max ties share the gradient evenly") {
  tensor<double, shape<4>> x{1, 3, 3, 2};
  auto g = grad(max(x), x);
  CHECK(g[0] == 0.0);
  CHECK(g[1] == 0.5);
  CHECK(g[2] == 0.5);
}

TEST_CASE("logsumexp is stable at large inputs") {
  tensor<double, shape<3>> x{1000, 1000, -1000};
  auto [v, g] = value_and_grad(logsumexp(x), x);
  CHECK(v == doctest::Approx(1000 + std::log(2.0)));
  CHECK(g[0] == doctest::Approx(0.5));
  CHECK(g[2] == doctest::Approx(0.0));
}

TEST_CASE("prod gradients at zeros are the product of the others") {
  tensor<double, shape<4>> one_zero{2, 0, 3, 4}, two_zeros{2, 0, 0, 4};
  auto g1 = grad(prod(one_zero), one_zero);
  CHECK(g1[0] == 0.0);
  CHECK(g1[1] == 24.0);  // 2 * 3 * 4
  CHECK(g1[2] == 0.0);
  auto g2 = grad(prod(two_zeros), two_zeros);
  for (int i = 0; i < 4; ++i)
    CHECK(g2[i] == 0.0);
  // Per slice, with ties for max alongside.
  tensor<double, shape<2, 3>> m{1, 0, 5, 2, 3, 4};
  auto gm = grad(sum(prod(m, axes<1>{}) * 2.0), m);
  CHECK(gm(0, 1) == 10.0);
  CHECK(gm(0, 0) == 0.0);
  CHECK(gm(1, 0) == 24.0);
  CHECK(gm(1, 2) == 12.0);
}

TEST_CASE("a tensor named twice gets its gradient twice") {
  tensor<double, shape<3>> x{1, 2, 3};
  auto [g1, g2] = grad(sum(x * x), x, x);
  for (int i = 0; i < 3; ++i) {
    CHECK(g1[i] == 2 * x[i]);
    CHECK(g2[i] == 2 * x[i]);
  }
}

TEST_CASE("edge cases - empty passes and one-element subtrees read twice and NaN and infinities") {
  // An empty minibatch leaves the broadcast bias gradient at zero, not stale.
  tensor<double, shape<dyn, dyn>> xb(dims_t<2>{0, 3});
  tensor<double, shape<3>> bias{1, 2, 3}, gbias{5, 5, 5};
  tensor<double, shape<dyn, dyn>> gxb;
  value_and_grad_into(sum(square(xb + bias)), std::tie(gxb, gbias), xb, bias);
  for (int i = 0; i < 3; ++i)
    CHECK(gbias[i] == 0.0);
  // A one-element tensor read as a uniform leaf and through a dyn reshape: both count.
  tensor<double, shape<1>> w{3};
  CHECK(grad(sum(w * reshape<shape<dyn>>(w, {1})), w)[0] == 6.0);
  // NaN propagates through max/min/relu in SIMD lanes and scalar tails alike.
  tensor<float, shape<19>> x;
  for (int i = 0; i < 19; ++i)
    x[i] = float(i);
  x[3] = NAN;
  CHECK(std::isnan(float(eval(max(x)))));
  CHECK(std::isnan(float(eval(min(x)))));
  CHECK(std::isnan(eval(relu(x))[3]));
  x[3] = 3;
  x[18] = NAN;
  CHECK(std::isnan(float(eval(max(x)))));
  // Infinities are ordinary values for max/min.
  tensor<double, shape<3>> inf{-INFINITY, 1, INFINITY};
  CHECK(double(eval(max(inf))) == INFINITY);
  CHECK(double(eval(min(inf))) == -INFINITY);
}

TEST_CASE("a dyn tensor takes expressions mixing static and dyn extents") {
  tensor<double, shape<dyn, dyn>> a(dims_t<2>{2, 3}, {1, 2, 3, 4, 5, 6});
  tensor<double, shape<3>> w{1, 2, 3};
  tensor<double, shape<dyn, dyn>> b = a * w;
  CHECK(b(1, 2) == 18.0);
  tensor<double, shape<dyn>> v(dims_t<1>{3}, {1, 2, 3});
  tensor<double, shape<dyn, dyn>> c;
  c = v * 2.0;  // rank 1 into rank 2: a leading axis of 1, as NumPy broadcasting
  CHECK(c.extent(0) == 1);
  CHECK(c(0, 2) == 6.0);
  CHECK(vjp(a * a, w, a)(1, 2) == 36.0);
  CHECK(eval(reduce<ops::sum_red>(a, axes<>{})).size() == 6);  // no axes: nothing reduced
}
