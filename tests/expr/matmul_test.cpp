#include "../testing.hpp"

using namespace fg;

TEST_CASE("matmul value / static and dyn") {
  tensor<double, shape<2, 3>> a{1, 2, 3, 4, 5, 6};
  tensor<double, shape<3, 2>> b{7, 8, 9, 10, 11, 12};
  tensor<double, shape<2, 2>> c = matmul(a, b);
  CHECK(c(0, 0) == 58.0);
  CHECK(c(1, 1) == 154.0);
  tensor<double, shape<dyn, dyn>> ad(dims_t<2>{2, 3}, {1, 2, 3, 4, 5, 6});
  auto cd = eval(matmul(ad, transpose(ad)));
  CHECK(cd(0, 1) == 32.0);
}

TEST_CASE("matmul gradients through expressions on both sides") {
  tensor<double, shape<4, 5>> a;
  tensor<double, shape<5, 3>> b;
  tensor<double, shape<3>> bias;
  fg::testing::fill_uniform(a, -1, 1);
  fg::testing::fill_uniform(b, -1, 1);
  fg::testing::fill_uniform(bias, -1, 1);
  fg::testing::check_gradient([](auto& x, auto& y) { return sum(matmul(x, y)); }, a, b);
  fg::testing::check_gradient(
      [](auto& x, auto& y, auto& z) { return sum(tanh(matmul(sin(x), y * 2.0) + z)); }, a, b, bias);
  // A leaf on both sides of one product, and a transposed operand.
  tensor<double, shape<4, 4>> s;
  fg::testing::fill_uniform(s, -1, 1);
  fg::testing::check_gradient([](auto& x) { return sum(square(matmul(x, transpose(x)))); }, s);
}

TEST_CASE("sum and mean of a product are rewritten to column and row sums") {
  tensor<double, shape<dyn, dyn>> a(dims_t<2>{7, 5}), b(dims_t<2>{5, 3});
  fg::testing::fill_uniform(a, -1, 1);
  fg::testing::fill_uniform(b, -1, 1);
  const double via_product = eval(sum(matmul(a, b) * 1.0));  // `* 1.0` keeps the GEMM
  CHECK(double(eval(sum(matmul(a, b)))) == doctest::Approx(via_product).epsilon(1e-12));
  CHECK(double(eval(mean(matmul(a, b)))) == doctest::Approx(via_product / 21).epsilon(1e-12));
  auto [ga, gb] = grad(sum(matmul(a, b)), a, b);
  auto [ga2, gb2] = grad(sum(matmul(a, b) * 1.0), a, b);
  for (index_t i = 0; i < ga.size(); ++i)
    CHECK(ga[i] == doctest::Approx(ga2[i]));
  for (index_t i = 0; i < gb.size(); ++i)
    CHECK(gb[i] == doctest::Approx(gb2[i]));
  fg::testing::check_gradient([](auto& x, auto& y) { return mean(matmul(x, y)); }, a, b);
}

TEST_CASE("matmul shape errors") {
  tensor<double, shape<dyn, dyn>> a(dims_t<2>{3, 4}), b(dims_t<2>{5, 2});
  CHECK_THROWS_WITH_AS(matmul(a, b),
                       "fg::matmul(): A is [3, 4], B is [5, 2]; A's columns must equal B's rows",
                       shape_error);
}
