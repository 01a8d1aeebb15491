#include "../testing.hpp"

using namespace fg;

TEST_CASE("fg::gradient is an expression of x's shape that composes") {
  tensor<double, shape<4>> w{1, -2, 3, 0.5};
  tensor<double, shape<4>> t{0.5, 0.5, 0.5, 0.5};
  auto loss = sum(square(w - t));
  auto g = eval(gradient(loss, w));
  for (int i = 0; i < 4; ++i)
    CHECK(g[i] == doctest::Approx(2 * (w[i] - t[i])));
  // A gradient-descent step written as one expression, with w on both sides.
  w = w - 0.25 * gradient(sum(square(w - t)), w);
  CHECK(w[0] == doctest::Approx(0.75));
  CHECK(w[1] == doctest::Approx(-0.75));
  // It is an expression: reduce it, or use it as a vjp seed.
  CHECK(double(eval(sum(gradient(sum(exp(w)), w)))) ==
        doctest::Approx(std::exp(w[0]) + std::exp(w[1]) + std::exp(w[2]) + std::exp(w[3])));
}

TEST_CASE("differentiating a gradient again says that is unsupported") {
  tensor<double, shape<3>> x{1, 2, 3};
  CHECK_THROWS_WITH_AS(grad(sum(gradient(sum(x * x * x), x)), x),
                       "fg::gradient(): differentiating a gradient (second order) is not supported",
                       unsupported_error);
}

TEST_CASE("a gradient differentiated w.r.t. any tensor its function reads is refused") {
  tensor<double, shape<3>> x{1, 2, 3}, w{0.5, -1, 2};
  CHECK_THROWS_AS(value_and_grad(sum(gradient(sum(x * w * w), x)), w), unsupported_error);
  tensor<double, shape<3>> other{1, 1, 1};
  auto g = grad(sum(gradient(sum(x * x), x) * other), other);  // constant w.r.t. `other`
  CHECK(g[2] == 6.0);
}
