// PyTorch's indexing on vars: values, gradients against finite differences, and the errors.
#include "dynamic_testing.hpp"

#include <cstdint>
#include <vector>

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

namespace {
std::vector<double> values(const var& v) {
  std::vector<double> out;
  for (index_t i = 0; i < v.size(); ++i)
    out.push_back(v.at(sindex_t(i)));
  return out;
}
using dv = std::vector<double>;
// 0, 1, ..., n - 1 as float64 of extents e.
var iota(const extents& e) {
  return reshape(var::arange(0, sindex_t(e.size()), 1, dtype::float64), e);
}
}  // namespace

TEST_CASE("indexing / stepped slice, narrow, index_select, flip") {
  const var x = iota({2, 5});
  CHECK(values(slice(x, 1, 0, 5, 2)) == dv{0, 2, 4, 5, 7, 9});
  CHECK(values(slice(x, 1, -3, 100, 2)) == dv{2, 4, 7, 9});  // clamped, from the end
  CHECK(slice(x, 1, 4, 1, 1).shape() == extents{2, 0});
  CHECK(values(narrow(x, 1, -2, 2)) == dv{3, 4, 8, 9});
  CHECK(values(index_select(x, 1, var::from({4, 0, 4}, {3}, dtype::int64))) ==
        dv{4, 0, 4, 9, 5, 9});
  CHECK(values(flip(x, {0, 1})) == dv{9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
  CHECK(values(flip(var::arange(4), {0})) == dv{3, 2, 1, 0});  // integers move too
  CHECK_THROWS_WITH_AS(slice(x, 1, 0, 5, 0), "fg::slice(): step 0 must be positive (as in PyTorch)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      narrow(x, 1, 3, 4),
      "fg::narrow(): 4 elements from 3 do not fit in dim 1 of size 5 (shape [2, 5])", index_error);
  CHECK_THROWS_WITH_AS(index_select(x, 0, var::from({2}, {1}, dtype::int64)),
                       "fg::index_select(): index 2 is out of range for dim 0 of [2, 5] of size 2",
                       index_error);
}

TEST_CASE("indexing / permute, squeeze, unsqueeze, repeat, expand") {
  const var x = iota({2, 3, 4});
  const var p = permute(x, {2, 0, 1});
  CHECK(p.shape() == extents{4, 2, 3});
  CHECK(p(3, 1, 2) == x(1, 2, 3));
  CHECK(permute(x, {1, 2, 0})(2, 3, 1) == x(1, 2, 3));
  CHECK_THROWS_WITH_AS(
      permute(x, {0, 0, 1}),
      "fg::permute(): the dims given are not a permutation of the 3 axes of [2, 3, 4]",
      shape_error);
  CHECK(squeeze(var::zeros({1, 3, 1})).shape() == extents{3});
  CHECK(squeeze(var::zeros({1, 3, 1}), -1).shape() == extents{1, 3});
  CHECK(squeeze(var::zeros({2, 3}), 0).shape() == extents{2, 3});
  CHECK(unsqueeze(var::zeros({2, 3}), 1).shape() == extents{2, 1, 3});
  CHECK(unsqueeze(var::zeros({2, 3}), -1).shape() == extents{2, 3, 1});
  const var r = repeat(var::from({1, 2}, {2}), {2, 3});
  CHECK(r.shape() == extents{2, 6});
  CHECK(values(r) == dv{1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2});
  const var e = expand(var::from({1, 2, 3}, {3, 1}), {-1, 4});
  CHECK(e.shape() == extents{3, 4});
  CHECK(e(2, 3) == 3.0);
}

TEST_CASE("indexing / pad: constant, reflect, replicate, from the last axis") {
  const var x = var::from({1, 2, 3}, {1, 3});
  CHECK(values(pad(x, {2, 1})) == dv{0, 0, 1, 2, 3, 0});
  CHECK(values(pad(x, {1, 1}, pad_mode::constant, -1)) == dv{-1, 1, 2, 3, -1});
  CHECK(values(pad(x, {2, 2}, pad_mode::reflect)) == dv{3, 2, 1, 2, 3, 2, 1});
  CHECK(values(pad(x, {2, 1}, pad_mode::replicate)) == dv{1, 1, 1, 2, 3, 3});
  CHECK(pad(x, {0, 0, 1, 1}).shape() == extents{3, 3});
  CHECK_THROWS_WITH_AS(pad(x, {3, 0}, pad_mode::reflect),
                       "fg::pad(): reflect padding of 3 and 0 must be less than the 3 elements of "
                       "dim 1 of [1, 3]",
                       shape_error);
  CHECK_THROWS_AS(pad(x, {1, 1, 1}), shape_error);
  CHECK_THROWS_WITH_AS(pad(x, {1, 1}, pad_mode(3)),
                       "fg::pad(): padding mode 3 is none of fusegrad's", std::invalid_argument);
}

TEST_CASE("indexing / masked_fill, masked_select, chunk") {
  const var x = iota({2, 3});
  const var m = var::from({1, 0, 1}, {3}, dtype::bool_);
  CHECK(values(masked_fill(x, m, -7)) == dv{-7, 1, -7, -7, 4, -7});
  CHECK(values(masked_select(x, m)) == dv{0, 2, 3, 5});
  CHECK(masked_select(x, x > 10.0).shape() == extents{0});
  CHECK_THROWS_WITH_AS(masked_fill(x, var::from({1, 0, 1}, {3}), 0),
                       "fg::masked_fill(): the mask is float32; it must be bool (e.g. x > 0)",
                       dtype_error);
  const auto parts = chunk(iota({7}), 3);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].shape() == extents{3});
  CHECK(parts[2].shape() == extents{1});
  CHECK(chunk(iota({2}), 4).size() == 2);
}

TEST_CASE("indexing / gradients against finite differences") {
  const var idx = var::from({2, 0, 2}, {3}, dtype::int64);
  const var w = iota({2, 6}) * 0.1;
  const var m = var::from({1, 0, 0, 1, 1, 0}, {6}, dtype::bool_);
  auto check = [&](auto f) { check_var_gradient(f, {leaf({2, 3}, -1, 1)}); };
  check([](const auto& v) { return sum(sin(slice(v[0], 1, 0, 3, 2))); });
  check([](const auto& v) { return sum(sin(narrow(v[0], 0, 1, 1))); });
  check([&](const auto& v) { return sum(sin(index_select(v[0], 1, idx))); });
  check([](const auto& v) { return sum(sin(flip(v[0], {1})) * iota({2, 3})); });
  check([](const auto& v) { return sum(sin(permute(v[0], {1, 0})) * iota({3, 2})); });
  check([](const auto& v) { return sum(sin(unsqueeze(squeeze(v[0]), 0)) * iota({1, 2, 3})); });
  check([&](const auto& v) { return sum(sin(repeat(v[0], {1, 2})) * w); });
  check([](const auto& v) { return sum(sin(expand(unsqueeze(v[0], 0), {2, -1, -1}))); });
  check([](const auto& v) {
    return sum(sin(pad(v[0], {2, 2}, pad_mode::reflect)) * iota({2, 7}));
  });
  check([](const auto& v) {
    return sum(sin(pad(v[0], {1, 2, 1, 0}, pad_mode::replicate)) * iota({3, 6}));
  });
  check([](const auto& v) { return sum(sin(pad(v[0], {1, 1}, pad_mode::constant, 3.0))); });
  check([&](const auto& v) { return sum(sin(masked_fill(reshape(v[0], {6}), m, 2.0))); });
  check([&](const auto& v) {
    return sum(sin(masked_select(reshape(v[0], {6}), m)) *
               var::from({1, 2, 3}, {3}, dtype::float64));
  });
  check([](const auto& v) { return sum(sin(chunk(v[0], 2, 1)[1])); });
}
