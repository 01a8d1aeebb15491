// Every reduction of the table on the dynamic path: over all elements and over axes, keepdim.
#include "../ops/op_table.hpp"
#include "dynamic_testing.hpp"

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

TEST_CASE("dynamic / every reduction: all elements and each axis, with keepdim") {
  fg::testing::for_each_op(ops::reductions{}, []<class Red>() {
    CAPTURE(Red::name);
    const auto dom = op_traits<Red>::domain(0);
    var x = leaf({3, 4, 5}, dom.lo, dom.hi);
    check_var_gradient([](const auto& v) { return reduce<Red>(v[0]); }, {x});
    check_var_gradient([](const auto& v) { return sum(reduce<Red>(v[0], {1}) * 1.7); }, {x});
    check_var_gradient([](const auto& v) { return sum(square(reduce<Red>(v[0], {0, -1}))); }, {x});
    var k = reduce<Red>(x, {1}, true);
    CHECK(k.shape() == extents{3, 1, 5});
    CHECK(reduce<Red>(x, {1}).shape() == extents{3, 5});
  });
}

TEST_CASE("dynamic / reduction values") {
  var x = var::from({1, 2, 3, 4, 5, 6}, {2, 3}, dtype::float64);
  CHECK(sum(x).item() == 21.0);
  CHECK(mean(x, {0}).at(2) == 4.5);
  CHECK(max(x, {1}).at(0) == 3.0);
  CHECK(prod(x, {1}).at(1) == 120.0);
  CHECK(logsumexp(x, {1}).at(0) ==
        doctest::Approx(std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0))));
  CHECK_THROWS_WITH_AS(sum(x, {2}), "fg::sum(): axis 2 is out of range for shape [2, 3]",
                       fg::shape_error);
}

TEST_CASE("dynamic / max shares its gradient among ties") {
  var x = var::from({1, 3, 3}, {3}, dtype::float64).requires_grad(true);
  max(x).backward();
  CHECK(x.grad().at(0) == 0.0);
  CHECK(x.grad().at(1) == 0.5);
  CHECK(x.grad().at(2) == 0.5);
}

TEST_CASE("reduce / count_nonzero, any and all, over every element or axes") {
  const var x = var::from({0, 1, 2, 0, 0, 0}, {2, 3});
  CHECK(count_nonzero(x).dtype() == dtype::int64);
  CHECK(count_nonzero(x).item<std::int64_t>() == 2);
  CHECK(count_nonzero(x, {0}).at<std::int64_t>(1) == 1);
  CHECK(any(x).dtype() == dtype::bool_);
  CHECK(any(x).item<bool>());
  CHECK(!all(x).item<bool>());
  CHECK(any(x, {1}).at<bool>(0));
  CHECK(!any(x, {1}).at<bool>(1));
  CHECK(all(var::from({1, 2}, {2}, dtype::int32)).item<bool>());
  CHECK(all(x, {0}, true).shape() == extents{1, 3});
}
