// Reshape, transpose, slice/select, concat/stack/split and gather on vars, with gradients.
#include "dynamic_testing.hpp"

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

TEST_CASE("layout / values") {
  var x = var::from({0, 1, 2, 3, 4, 5}, {2, 3});
  var r = reshape(x, {3, 2});
  CHECK(r.at(4) == 4.0);
  x.set(4, 40.0);
  CHECK(r.at(4) == 40.0);  // a view
  var t = transpose(x);
  CHECK(t.shape() == extents{3, 2});
  CHECK(t.at(1) == 3.0);  // t(0, 1) = x(1, 0)
  CHECK(slice(x, 1, 1, 3).at(2) == 40.0);
  CHECK(select(x, 0, 1).shape() == extents{3});
  var c = concat({x, x}, 0);
  CHECK(c.shape() == extents{4, 3});
  CHECK(stack({x, x}, 1).shape() == extents{2, 2, 3});
  auto parts = split(x, {1, 2}, 1);
  CHECK(parts[1].shape() == extents{2, 2});
  var idx = var::from({2, 0, 1, 1}, {2, 2}, dtype::int64);
  var g = gather(x, 1, idx);
  CHECK(g.at(0) == 2.0);
  CHECK(g.at(3) == 40.0);
}

TEST_CASE("layout / gradients against finite differences") {
  var x = leaf({3, 4}, -1, 1), y = leaf({3, 2}, -1, 1);
  check_var_gradient([](const auto& v) { return sum(sin(reshape(v[0], {2, 6})) * 1.5); }, {x});
  check_var_gradient([](const auto& v) { return sum(sin(transpose(v[0])) * 1.5); }, {x});
  check_var_gradient([](const auto& v) { return sum(exp(slice(v[0], 1, 1, 3))); }, {x});
  check_var_gradient([](const auto& v) { return sum(exp(select(v[0], 0, 2))); }, {x});
  check_var_gradient([](const auto& v) { return sum(square(concat({v[0], v[1]}, 1))); }, {x, y});
  check_var_gradient([](const auto& v) { return sum(sin(stack({v[0], v[0] * 2.0}, 0))); }, {x});
  check_var_gradient(
      [](const auto& v) {
        auto p = split(v[0], {1, 3}, 1);
        return sum(p[0] * 3.0) + sum(cos(p[1]));
      },
      {x});
  var idx = var::from({0, 3, 3, 1, 2, 2}, {3, 2}, dtype::int32);
  check_var_gradient([&](const auto& v) { return sum(exp(gather(v[0], 1, idx))); }, {x});
}

TEST_CASE("layout / errors name the shapes") {
  var x = var::zeros({2, 3});
  CHECK_THROWS_WITH_AS(reshape(x, {4, 2}),
                       "fg::reshape(): cannot view [2, 3] (6 elements) as [4, 2]", fg::shape_error);
  CHECK_THROWS_WITH_AS(slice(x, 1, 2, 5),
                       "fg::slice(): [2, 5) is out of range for axis 1 of shape [2, 3]",
                       fg::shape_error);
  CHECK_THROWS_WITH_AS(concat({x, var::zeros({3, 3})}, 1),
                       "fg::concat(): along axis 1, shapes [2, 3] [3, 3] do not fit together",
                       fg::shape_error);
  CHECK_THROWS_WITH_AS(gather(x, 1, var::from({0, 7}, {2, 1}, dtype::int64)),
                       "fg::gather(): index 7 is out of range for axis 1 of [2, 3] of size 3",
                       fg::index_error);
  CHECK_THROWS_WITH_AS(gather(x, 1, var::from({0, 1}, {2, 1})),
                       "fg::gather(): the indices are float32; indices must be an integer tensor "
                       "(convert them with .to(fg::int64))",
                       fg::dtype_error);
}

TEST_CASE("layout / nonzero: the indices of non-zero elements, row-major") {
  const var n = nonzero(var::from({0, 3, 0, 0, -1, 2}, {2, 3}));
  CHECK(n.dtype() == dtype::int64);
  CHECK(n.shape() == extents{3, 2});
  CHECK(n.at<std::int64_t>({0, 1}) == 1);
  CHECK(n.at<std::int64_t>({1, 0}) == 1);
  CHECK(n.at<std::int64_t>({2, 1}) == 2);
  CHECK(nonzero(var::zeros({4})).shape() == extents{0, 1});
}
