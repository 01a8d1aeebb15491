// Selection and sorting: argmax/argmin (ties first, NaN wins), stable sort and argsort, topk;
// int64 indices, differentiable values, errors in words.
#include "dynamic_testing.hpp"

#include <fusegrad/dynamic/sort.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

namespace {
std::vector<std::int64_t> ints(const var& v) {
  std::vector<std::int64_t> out;
  for (index_t i = 0; i < v.size(); ++i)
    out.push_back(v.at<std::int64_t>(sindex_t(i)));
  return out;
}
using iv = std::vector<std::int64_t>;
}  // namespace

TEST_CASE("sort / argmax and argmin: flat or along a dim, ties to the first, NaN wins") {
  const var x = var::from({3, 7, 7, -1, 0, 2}, {2, 3});
  CHECK(argmax(x).dtype() == dtype::int64);
  CHECK(argmax(x).rank() == 0);
  CHECK(argmax(x).item<std::int64_t>() == 1);  // the first of the two 7s
  CHECK(argmin(x).item<std::int64_t>() == 3);
  CHECK(ints(argmax(x, 1)) == iv{1, 2});
  CHECK(ints(argmin(x, 0)) == iv{1, 1, 1});
  CHECK(argmax(x, -1, true).shape() == extents{2, 1});
  const var n = var::from({1, NAN, 5}, {3});
  CHECK(argmax(n).item<std::int64_t>() == 1);
  CHECK(argmin(n).item<std::int64_t>() == 1);
  const var ids =
      var::from(std::vector<std::int64_t>{(std::int64_t(1) << 60) + 1, std::int64_t(1) << 60}, {2});
  CHECK(argmax(ids).item<std::int64_t>() == 0);  // exact past double's 2^53
  CHECK_THROWS_WITH_AS(argmax(var::zeros({0})),
                       "fg::argmax(): the tensor [0] has no elements to choose from", shape_error);
}

TEST_CASE("sort / stable, ascending or descending, NaN as the largest") {
  const var x = var::from({2, 1, 2, NAN, 1, 0}, {6});
  auto [v, i] = sort(x);
  CHECK(ints(i) == iv{5, 1, 4, 0, 2, 3});  // equal values keep their order
  CHECK(v.at(0) == 0.0);
  CHECK(std::isnan(v.at(5)));
  auto [vd, id] = sort(x, 0, true);
  CHECK(ints(id) == iv{3, 0, 2, 1, 4, 5});
  CHECK(ints(argsort(var::from({3, 1, 2, 1, 3, 2}, {2, 3}), 1)) == iv{1, 2, 0, 0, 2, 1});
  const auto [vi, ii] = sort(var::from({5, -2, 9}, {3}, dtype::int32));
  CHECK(vi.dtype() == dtype::int32);
  CHECK(vi.at<int>(0) == -2);
  CHECK(ints(ii) == iv{1, 0, 2});
}

TEST_CASE("sort / topk: the first k of the stable sort, largest or smallest") {
  const var x = var::from({4, 9, 1, 9, 7, 4}, {2, 3});
  auto [v, i] = topk(x, 2);
  CHECK(v.shape() == extents{2, 2});
  CHECK(ints(i) == iv{1, 0, 0, 1});
  CHECK(v.at(0) == 9.0);
  CHECK(v.at(3) == 7.0);
  auto [vs, is] = topk(x, 1, 0, false);
  CHECK(ints(is) == iv{0, 1, 0});
  CHECK(topk(var::from({1, 1, 1}, {3}), 2).indices.at<int>(1) == 1);
  CHECK_THROWS_WITH_AS(topk(x, 4),
                       "fg::topk(): k = 4 is more than the 3 elements along dim 1 of [2, 3]",
                       index_error);
}

TEST_CASE("sort / the values of sort and topk are differentiable") {
  check_var_gradient(
      [](const auto& v) {
        return sum(sort(v[0], 1).values * var::from({1, 2, 3, 4}, {4}, dtype::float64));
      },
      {leaf({3, 4}, -1, 1)});
  check_var_gradient([](const auto& v) { return sum(exp(topk(v[0], 2, 0).values)); },
                     {leaf({4, 3}, -1, 1)});
}
