// Reshape, transpose, slice/select, concat/stack/split, gather and scatter on vars, with
// gradients.
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
  auto pieces = split(var::arange(0, 7), 3);  // pieces of 3, the last smaller
  REQUIRE(pieces.size() == 3);
  CHECK(pieces[2].shape() == extents{1});
  CHECK(pieces[2].at<std::int64_t>(0) == 6);
  CHECK(cat({x, x}, 1).shape() == extents{2, 6});
  var idx = var::from({2, 0, 1, 1}, {2, 2}, dtype::int64);
  var g = gather(x, 1, idx);
  CHECK(g.at(0) == 2.0);
  CHECK(g.at(3) == 40.0);
}

TEST_CASE("layout / scatter and scatter_add") {
  const var x = var::from({0, 1, 2, 3, 4, 5}, {2, 3});
  const var src = var::from({10, 20, 30, 40, 50, 60, 70, 80}, {2, 4});
  const var idx = var::from({2, 0, 1, 1}, {2, 2}, dtype::int64);
  // out[i][idx[i][j]] = src[i][j]: row 0 gets 20 at 0, 10 at 2; row 1 gets 60 at 1 (twice: the
  // later write wins)
  const var y = scatter(x, 1, idx, src);
  const double want[] = {20, 1, 10, 3, 60, 5};
  for (sindex_t i = 0; i < 6; ++i)
    CHECK(y.at(i) == want[i]);
  const var v = scatter(x, 1, idx, -1.0);
  CHECK(v.at(0) == -1.0);
  CHECK(v.at(1) == 1.0);
  CHECK(v.at(4) == -1.0);
  const var a = scatter_add(x, 1, idx, src);  // places named twice get both
  const double sums[] = {20, 1, 12, 3, 4 + 50 + 60, 5};
  for (sindex_t i = 0; i < 6; ++i)
    CHECK(a.at(i) == sums[i]);
  // Integers add wrapping around (as PyTorch), bools or.
  const var big = var::from(std::vector<std::int64_t>{INT64_MAX, 0}, {2});
  const var one = var::from(std::vector<std::int64_t>{1}, {1});
  const var at0 = var::from(std::vector<std::int64_t>{0}, {1});
  CHECK(scatter_add(big, 0, at0, one).at<std::int64_t>(0) == INT64_MIN);
  CHECK(
      scatter_add(var::zeros({2}, dtype::bool_), 0, at0, var::ones({1}, dtype::bool_)).at<bool>(0));
  // The half types add in float32.
  CHECK(scatter_add(var::ones({2}, dtype::float16), 0, at0, var::ones({1}, dtype::float16)).at(0) ==
        2.0);
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
  // scatter: x's gradient is cut where src was written, src's read back at its places
  var src = leaf({3, 3}, -1, 1);
  var rows = var::from({2, 0, 1, 3, 0, 2}, {3, 2}, dtype::int64);  // no place named twice
  check_var_gradient([&](const auto& v) { return sum(exp(scatter(v[0], 1, rows, v[1]))); },
                     {x, src});
  check_var_gradient([&](const auto& v) { return sum(exp(scatter(v[0], 1, rows, 0.5))); }, {x});
  var twice = var::from({1, 1, 0, 0, 3, 2}, {3, 2}, dtype::int64);  // places named twice
  check_var_gradient([&](const auto& v) { return sum(exp(scatter_add(v[0], 1, twice, v[1]))); },
                     {x, src});
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
  const var i64 = var::from({0, 1}, {2, 1}, dtype::int64);
  CHECK_THROWS_WITH_AS(scatter(x, 1, i64, var::zeros({2, 1}, dtype::float64)),
                       "fg::scatter(): src is float64 and x is float32; convert src with "
                       ".to(x.dtype())",
                       fg::dtype_error);
  CHECK_THROWS_WITH_AS(scatter_add(x, 0, var::zeros({1, 4}, dtype::int64), var::zeros({1, 4})),
                       "fg::scatter_add(): index [1, 4] does not fit x [2, 3] and src [1, 4] "
                       "along axis 0",
                       fg::shape_error);
  CHECK_THROWS_WITH_AS(scatter(x, 1, i64, var::zeros({1, 1})),
                       "fg::scatter(): index [2, 1] does not fit x [2, 3] and src [1, 1] along "
                       "axis 1",
                       fg::shape_error);
  CHECK_THROWS_WITH_AS(scatter(x, 1, var::from({0, 3}, {2, 1}, dtype::int64), 1.0),
                       "fg::scatter(): index 3 is out of range for axis 1 of [2, 3] of size 3",
                       fg::index_error);
  CHECK_THROWS_WITH_AS(split(x, 0, 1), "fg::split(): pieces of size 0 cannot cut axis 1 of [2, 3]",
                       fg::shape_error);
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
