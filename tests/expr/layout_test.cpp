#include "../testing.hpp"

using namespace fg;

TEST_CASE("transpose and reshape of tensors are views and of expressions / boundaries") {
  tensor<double, shape<2, 3>> a{1, 2, 3, 4, 5, 6};
  tensor<double, shape<3, 2>> t = transpose(a);
  CHECK(t(2, 1) == 6.0);
  CHECK(t(0, 1) == 4.0);
  tensor<double, shape<3, 2>> r = reshape<shape<3, 2>>(a);
  CHECK(r(1, 0) == 3.0);
  tensor<double, shape<3, 2>> te = transpose(a * 2.0);
  CHECK(te(2, 1) == 12.0);
  tensor<double, shape<6>> flat = reshape<shape<6>>(transpose(a));
  CHECK(flat[1] == 4.0);
  tensor<double, shape<2, 3, 4>> c;
  fg::testing::fill_uniform(c, -1, 1);
  tensor<double, shape<4, 3, 2>> ct = transpose(c);
  CHECK(ct(3, 2, 1) == c(1, 2, 3));
}

TEST_CASE("gradients through transpose and reshape") {
  tensor<double, shape<3, 4>> a;
  tensor<double, shape<4, 3>> w;
  fg::testing::fill_uniform(a, -1, 1);
  fg::testing::fill_uniform(w, -1, 1);
  fg::testing::check_gradient([&](auto& x) { return sum(transpose(x) * w); }, a);
  fg::testing::check_gradient([&](auto& x) { return sum(transpose(exp(x)) * w); }, a);
  fg::testing::check_gradient([&](auto& x) { return sum(reshape<shape<4, 3>>(x) * w); }, a);
  fg::testing::check_gradient([&](auto& x) { return sum(reshape<shape<4, 3>>(sin(x)) * w); }, a);
  fg::testing::check_gradient(
      [&](auto& x) { return sum(max(reshape<shape<2, 6>>(x * x), axes<1>{})); }, a);
}

TEST_CASE("reshape errors name the sizes") {
  tensor<double, shape<dyn>> v(dims_t<1>{5});
  auto bad = [&] { return reshape<shape<dyn, 2>>(v, {3, 2}); };
  CHECK_THROWS_WITH_AS(bad(), "fg::reshape(): cannot view 5 elements as [3, 2]", shape_error);
}
