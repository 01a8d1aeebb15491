// Every elementwise op of the table on the dynamic path, from the same lists as the static
// tests: value against the op applied to each double, gradient against finite differences, with
// and without broadcasting.
#include "../ops/op_table.hpp"
#include "dynamic_testing.hpp"

#include <optional>

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

namespace {
template <class Op> void check_unary_var() {
  const auto dom = op_traits<Op>::domain(0);
  var x = leaf({3, 7}, dom.lo, dom.hi);
  var y = apply<Op>(x);
  CHECK(std::string(y.op_name()) == Op::name);
  for (index_t i = 0; i < x.size(); ++i)
    CHECK(y.at(i) == doctest::Approx(Op::forward(x.at(i))).epsilon(1e-12));
  check_var_gradient([](const auto& v) { return sum(apply<Op>(v[0]) * v[0]); }, {x});
}
template <class Op> void check_binary_var() {
  const auto da = op_traits<Op>::domain(0), db = op_traits<Op>::domain(1);
  var a = leaf({4, 5}, da.lo, da.hi), b = leaf({4, 5}, db.lo, db.hi);
  var y = apply<Op>(a, b);
  for (index_t i = 0; i < y.size(); ++i)
    CHECK(y.at(i) == doctest::Approx(Op::forward(a.at(i), b.at(i))).epsilon(1e-12));
  check_var_gradient([](const auto& v) { return sum(apply<Op>(v[0], v[1]) * v[0]); }, {a, b});
  // Broadcast: [4, 1] against [5], and a 0-d scalar; the gradients are summed back.
  var col = leaf({4, 1}, da.lo, da.hi), row = leaf({5}, db.lo, db.hi);
  check_var_gradient([](const auto& v) { return sum(apply<Op>(v[0], v[1])); }, {col, row});
  var s = leaf({}, db.lo + 0.1, db.lo + 0.2);
  check_var_gradient([](const auto& v) { return sum(apply<Op>(v[0], v[1])); }, {a, s});
}
}  // namespace

TEST_CASE("dynamic / every unary op: value and gradient") {
  fg::testing::for_each_op(ops::unary_ops{}, []<class Op>() {
    CAPTURE(Op::name);
    check_unary_var<Op>();
  });
}

TEST_CASE("dynamic / every binary op: value and gradient with broadcasting") {
  fg::testing::for_each_op(ops::binary_ops{}, []<class Op>() {
    CAPTURE(Op::name);
    check_binary_var<Op>();
  });
}

TEST_CASE("dynamic / comparisons give 0 or 1 and where selects") {
  var a = var::from({1, 5, 3}, {3}), b = var::from({2, 2, 3}, {3});
  var lt = a < b, eq = equal(a, b);
  CHECK(lt.at(0) == 1.0);
  CHECK(lt.at(1) == 0.0);
  CHECK(eq.at(2) == 1.0);
  var x = leaf({3}, -1, 1), y = leaf({3}, -1, 1);
  var c = var::from({1, 0, 1}, {3}, dtype::float64);
  check_var_gradient([&](const auto& v) { return sum(where(c, v[0], v[1] * v[1])); }, {x, y});
}

TEST_CASE("dynamic / where with a number for a branch, as torch.where(cond, x, 0.0)") {
  auto elements = [](const var& v) {
    std::vector<double> e;
    for (index_t i = 0; i < v.size(); ++i)
      e.push_back(v.at(i));
    return e;
  };
  const var x = var::from({-1.5, 2, 0.5}, {3}), pos = x > 0;
  const var zeroed = where(pos, x, 0.0);
  CHECK(zeroed.dtype() == dtype::float32);
  CHECK(elements(zeroed) == std::vector<double>{0, 2, 0.5});
  CHECK(elements(where(pos, 1.0, x)) == std::vector<double>{-1.5, 1, 1});
  const var i = var::from({3, -4, 5}, {3}, dtype::int64);
  const var clipped = where(i > 0, i, 0);  // an integral number keeps int64
  CHECK(clipped.dtype() == dtype::int64);
  CHECK(elements(clipped) == std::vector<double>{3, 0, 5});
  CHECK(where(i > 0, i, 0.5).dtype() == dtype::float32);  // a float number promotes, as torch
  var w = leaf({3}, -1, 1);
  check_var_gradient([&](const auto& v) { return sum(where(v[0] > 0, v[0] * 2.0, -1.0)); }, {w});
}

TEST_CASE("dynamic / numbers in expressions: many values and both dtypes, each its own") {
  // The numbers of `x * c` are shared per thread; more of them than are kept must not mix up.
  for (dtype t : {dtype::float32, dtype::float64}) {
    var x = var::from({1, 2}, {2}, t);
    for (int round = 0; round < 2; ++round)
      for (int k = -20; k <= 20; ++k) {
        const double c = k * 0.25;
        var y = (x * c + c) - 1.0;  // 0-d numbers of x's dtype, deferred and computed
        CHECK(y.dtype() == t);
        CHECK(y.at(0) == doctest::Approx(2 * c - 1));
        CHECK(y.at(1) == doctest::Approx(3 * c - 1));
      }
    var z = 2.0 / var::from({4}, {1}, t);  // the number on the left
    CHECK(z.at(0) == 0.5);
  }
}

TEST_CASE("dynamic / a shape mismatch names the op and both shapes") {
  var a = var::zeros({2, 3}), b = var::zeros({4});
  CHECK_THROWS_WITH_AS(a + b, "fg::add(): cannot broadcast shapes [2, 3] and [4]", fg::shape_error);
}

TEST_CASE("dynamic / broadcast_to copies along the grown axes and sums the gradient back") {
  var b = var::from({1, 2, 3}, {3}, dtype::float64), c = var::from({10, 20}, {2, 1});
  var y = broadcast_to(b, {2, 3});
  CHECK(y.shape() == extents{2, 3});
  CHECK(std::string(broadcast_to(b.requires_grad(true), {2, 3}).op_name()) == "broadcast_to");
  for (index_t i = 0; i < 6; ++i)
    CHECK(y.at(i) == double(i % 3 + 1));
  var z = broadcast_to(c, {2, 2, 3});
  for (index_t i = 0; i < 12; ++i)
    CHECK(z.at(i) == (i / 3 % 2 == 0 ? 10.0 : 20.0));
  check_var_gradient(
      [](const auto& v) {
        return sum(broadcast_to(v[0], {4, 2, 3}) * v[1]);
      },
      {leaf({2, 1}, -1, 1), leaf({4, 2, 3}, -1, 1)});
  check_var_gradient(
      [](const auto& v) {
        return sum(exp(broadcast_to(v[0], {3, 4})));
      },
      {leaf({}, -1, 1)});
  CHECK_THROWS_WITH_AS(broadcast_to(b, {3, 2}),
                       "fg::broadcast_to(): cannot broadcast shapes [3] and [3, 2]", shape_error);
  CHECK_THROWS_WITH_AS(broadcast_to(c, {2}),
                       "fg::broadcast_to(): cannot broadcast shape [2, 1] to [2] (only its axes of "
                       "extent 1 can grow)",
                       shape_error);
}

TEST_CASE("dynamic / clamp: bounds included in the gradient, NaN kept, integers stay integers") {
  var x = var::from({-2, -1, 0, 1, 2, NAN}, {6}, dtype::float64).requires_grad(true);
  var y = clamp(x, -1, 1);
  CHECK(y.at(0) == -1.0);
  CHECK(y.at(4) == 1.0);
  CHECK(std::isnan(y.at(5)));
  sum(y * var::from({1, 2, 3, 4, 5, 6}, {6}, dtype::float64)).backward();
  CHECK(x.grad().at(0) == 0.0);
  CHECK(x.grad().at(1) == 2.0);  // at the bound: passes, as PyTorch's
  CHECK(x.grad().at(3) == 4.0);
  CHECK(x.grad().at(4) == 0.0);
  const var i = clamp(var::from({-5, 3, 9}, {3}, dtype::int64), 0, 4);
  CHECK(i.dtype() == dtype::int64);
  CHECK(i.at<std::int64_t>(0) == 0);
  CHECK(i.at<std::int64_t>(2) == 4);
  CHECK(clamp(var::from({0, 5}, {2}), 3, 1).at(0) == 1.0);  // lo > hi: hi, as PyTorch
  CHECK(clamp(var::from({1, 2}, {2}, dtype::float16), 0, 1.5).dtype() == dtype::float16);
}

TEST_CASE("dynamic / NaN != x is true in SIMD lanes and scalar tails alike") {
  // 19 elements: whole AVX batches and a scalar tail, fused and op by op.
  var x = var::full({19}, NAN, dtype::float64);
  for (const bool fused : {true, false}) {
    std::optional<no_fusion> off;
    if (!fused)
      off.emplace();
    const var n = not_equal(x, 0.0), e = equal(x, x);
    for (sindex_t i = 0; i < 19; ++i) {
      CHECK(n.at<bool>(i));
      CHECK(!e.at<bool>(i));
    }
  }
}
