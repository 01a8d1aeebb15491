// fg::var itself: creation (from spans and vectors, ranges, identity, random with a generator or
// the default one) and checked element access with negative indices, errors in words.
#include "dynamic_testing.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

using namespace fg;

TEST_CASE("var / from() a span or a vector, of any element type") {
  const std::vector<std::int64_t> ids{3, 1, 4, 1, 5, 9};
  const var a = var::from(ids, {2, 3});
  CHECK(a.dtype() == dtype::int64);
  CHECK(a(1, 2) == 9.0);
  const std::vector<float> f{0.5f, -1.5f};
  CHECK(var::from(std::span<const float>(f), {2}).dtype() == dtype::float32);
  CHECK(var::from(f, {2}, dtype::float64).at(1) == -1.5);
  const var b = var::from(std::vector<bool>{true, false, true}, {3});
  CHECK(b.dtype() == dtype::bool_);
  CHECK(b.at<int>(2) == 1);
  CHECK(var::from(std::vector<std::uint8_t>{255}, {1}).at<int>(0) == 255);
  CHECK_THROWS_WITH_AS(var::from(ids, {4}),
                       "fg::var::from(): 6 values given for shape [4] (4 elements)", shape_error);
}

TEST_CASE("var / arange, linspace and eye as in PyTorch") {
  const var r = var::arange(5);
  CHECK(r.dtype() == dtype::int64);
  CHECK(r.shape() == extents{5});
  CHECK(r.at<std::int64_t>(4) == 4);
  const var d = var::arange(10, 0, -3);
  CHECK(d.shape() == extents{4});
  CHECK(d.at<std::int64_t>(3) == 1);
  const var f = var::arange(0.0, 1.0, 0.1);
  CHECK(f.dtype() == dtype::float32);
  CHECK(f.size() == 10);
  CHECK(f.at(3) == doctest::Approx(0.3));
  CHECK(var::arange(3, dtype::float64).dtype() == dtype::float64);
  CHECK_THROWS_WITH_AS(var::arange(0, 5, -1),
                       "fg::var::arange(): from 0 to 5 by -1 is not a range (the step must be "
                       "non-zero, finite, and point from start to stop)",
                       std::invalid_argument);
  const var l = var::linspace(-1, 1, 5);
  CHECK(l.size() == 5);
  CHECK(l.at(0) == -1.0);
  CHECK(l.at(2) == 0.0);
  CHECK(l.at(4) == 1.0);
  CHECK(var::linspace(2, 3, 1).at(0) == 2.0);
  CHECK(var::linspace(2, 3, 0).size() == 0);
  const var e = var::eye(2, 3);
  CHECK(e.shape() == extents{2, 3});
  CHECK(e(1, 1) == 1.0);
  CHECK(e(1, 2) == 0.0);
  CHECK(var::eye(3, dtype::int64).dtype() == dtype::int64);
}

TEST_CASE("var / zeros_like, ones_like, full_like keep the shape, and the dtype unless given") {
  const var x = var::zeros({2, 3}, dtype::int32);
  CHECK(ones_like(x).dtype() == dtype::int32);
  CHECK(ones_like(x).at(5) == 1.0);
  CHECK(zeros_like(x, dtype::float64).dtype() == dtype::float64);
  CHECK(full_like(x, 7).at<int>(0) == 7);
  CHECK(full_like(x, 2.5, dtype::float32).at(3) == 2.5);
  CHECK(empty_like(x).shape() == extents{2, 3});
}

TEST_CASE("var / randint, randperm, rand and randn: seeded, in range, reproducible") {
  generator g(7);
  const var r = var::randint(-3, 4, {1000}, g);
  CHECK(r.dtype() == dtype::int64);
  std::vector<int> seen(7);
  for (index_t i = 0; i < r.size(); ++i) {
    const auto v = r.at<std::int64_t>(sindex_t(i));
    REQUIRE(v >= -3);
    REQUIRE(v < 4);
    ++seen[std::size_t(v + 3)];
  }
  CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c > 100; }));
  // A range past 2^32 draws 64 bits.
  const var wide = var::randint(0, std::numeric_limits<std::int64_t>::max(), {64}, g);
  bool above = false;
  for (index_t i = 0; i < wide.size(); ++i)
    above = above || wide.at<std::int64_t>(sindex_t(i)) > (std::int64_t(1) << 40);
  CHECK(above);
  const var p = var::randperm(50, g);
  std::vector<std::int64_t> v(50);
  for (std::size_t i = 0; i < 50; ++i)
    v[i] = p.at<std::int64_t>(sindex_t(i));
  std::sort(v.begin(), v.end());
  for (std::size_t i = 0; i < 50; ++i)
    REQUIRE(v[i] == std::int64_t(i));
  CHECK_THROWS_WITH_AS(var::randint(3, 3, {2}, g), "fg::var::randint(): the range [3, 3) is empty",
                       std::invalid_argument);
  // The default generator: manual_seed makes it repeat.
  manual_seed(42);
  const var a = var::randn({4}), b = var::rand({4}, dtype::float64), c = var::randperm(6);
  manual_seed(42);
  CHECK(var::randn({4}).at(3) == a.at(3));
  CHECK(var::rand({4}, dtype::float64).at(0) == b.at(0));
  CHECK(var::randperm(6).at(5) == c.at(5));
  CHECK(var::rand({3}, dtype::float16).dtype() == dtype::float16);
}

TEST_CASE("var / element access: flat or per axis, negative from the end, checked") {
  var x = var::from({0, 1, 2, 3, 4, 5}, {2, 3});
  CHECK(x.at(4) == 4.0);
  CHECK(x.at(-1) == 5.0);
  CHECK(x(1, 0) == 3.0);
  CHECK(x(-1, -2) == 4.0);
  CHECK(x.at({0, 2}) == 2.0);
  CHECK(x.at<int>({-2, 1}) == 1);
  x.set({1, -1}, 50);
  CHECK(x(1, 2) == 50.0);
  x.set(-6, 0.5);
  CHECK(x.at(0) == 0.5);
  CHECK_THROWS_WITH_AS(x.at(100),
                       "fg::var::at(): index 100 is out of range for a tensor of 6 elements "
                       "(shape [2, 3])",
                       index_error);
  CHECK_THROWS_WITH_AS(x.set(1000000, 5.0),
                       "fg::var::set(): index 1000000 is out of range for a tensor of 6 elements "
                       "(shape [2, 3])",
                       index_error);
  CHECK_THROWS_WITH_AS(x(0, 3),
                       "fg::var::operator()(): index 3 is out of range for dim 1 of size 3 "
                       "(shape [2, 3])",
                       index_error);
  CHECK_THROWS_WITH_AS(x.at({-3, 0}),
                       "fg::var::at(): index -3 is out of range for dim 0 of size 2 (shape [2, 3])",
                       index_error);
  CHECK_THROWS_WITH_AS(x.set({1}, 2.0),
                       "fg::var::set(): 1 index given for a tensor of rank 2 (shape [2, 3])",
                       index_error);
  // int64 elements are exact through at<T> and set, past double's 2^53.
  var ids = var::zeros({2}, dtype::int64);
  const std::int64_t big = (std::int64_t(1) << 62) + 1;
  ids.set(1, big);
  CHECK(ids.at<std::int64_t>(1) == big);
  CHECK(var::scalar(3, dtype::int32).item<std::int64_t>() == 3);
  CHECK_THROWS_WITH_AS(x.item(), "fg::var::item(): the tensor has shape [2, 3], not one element",
                       shape_error);
}

TEST_CASE("var / set() is tracked: a backward through the old value refuses") {
  var x = var::from({1, 2}, {2}, dtype::float64).requires_grad(true);
  var y = sum(x * x);
  var leaf_copy = x.detach();
  leaf_copy.set({1}, 3.0);
  CHECK_THROWS_AS(y.backward(), autograd_error);
}
