// dtypes of fg::var: promotion as PyTorch's, conversion between any two, integer and bool
// arithmetic, comparisons giving bool, reductions of integers, and the errors in words.
#include "dynamic_testing.hpp"

#include <cstdint>
#include <limits>
#include <vector>

using namespace fg;

namespace {
var ints(std::vector<std::int64_t> v, dtype t = dtype::int64) {
  const index_t n = v.size();
  return var::from(v, {n}, t);
}
}  // namespace

TEST_CASE("dtype / promotion of two dtypes follows PyTorch's table") {
  CHECK(promote_types(dtype::int64, dtype::float32) == dtype::float32);
  CHECK(promote_types(dtype::int32, dtype::int64) == dtype::int64);
  CHECK(promote_types(dtype::uint8, dtype::int32) == dtype::int32);
  CHECK(promote_types(dtype::bool_, dtype::uint8) == dtype::uint8);
  CHECK(promote_types(dtype::float16, dtype::bfloat16) == dtype::float32);
  CHECK(promote_types(dtype::float16, dtype::float64) == dtype::float64);
  CHECK(promote_types(dtype::bool_, dtype::float16) == dtype::float16);
  CHECK(promote_types(dtype::float32, dtype::float32) == dtype::float32);
}

TEST_CASE("dtype / numbers and 0-d tensors do not widen a tensor of their kind") {
  const var f32 = var::zeros({3}), i32 = var::zeros({3}, dtype::int32),
            u8 = var::zeros({3}, dtype::uint8), b = var::zeros({3}, dtype::bool_),
            h = var::zeros({3}, dtype::float16);
  CHECK((f32 + var::scalar(1, dtype::float64)).dtype() == dtype::float32);
  CHECK((i32 + var::scalar(1, dtype::int64)).dtype() == dtype::int32);
  CHECK((i32 + var::scalar(1, dtype::float64)).dtype() == dtype::float64);  // a higher kind
  CHECK((var::scalar(1, dtype::int64) + var::scalar(1, dtype::float64)).dtype() == dtype::float64);
  CHECK((i32 + 2).dtype() == dtype::int32);
  CHECK((i32 + 2.5).dtype() == dtype::float32);
  CHECK((u8 + 1).dtype() == dtype::uint8);
  CHECK((b + 1).dtype() == dtype::int64);
  CHECK((b * 1.5).dtype() == dtype::float32);
  CHECK((h * 2.5).dtype() == dtype::float16);
  CHECK((h + f32).dtype() == dtype::float32);
  CHECK((f32 * var::zeros({3}, dtype::float64)).dtype() == dtype::float64);
}

TEST_CASE("dtype / integer arithmetic stays integral, exact, and wraps on overflow") {
  const var a = ints({7, -7, 3}), b = ints({2, 2, -4});
  const var s = a + b, d = a - b, p = a * b;
  CHECK(s.dtype() == dtype::int64);
  CHECK(s.at<std::int64_t>(0) == 9);
  CHECK(d.at<std::int64_t>(2) == 7);
  CHECK(p.at<std::int64_t>(1) == -14);
  CHECK((-a).at<std::int64_t>(0) == -7);
  CHECK(abs(a).at<std::int64_t>(1) == 7);
  CHECK(maximum(a, b).at<std::int64_t>(1) == 2);
  CHECK(relu(a).at<std::int64_t>(1) == 0);
  // Beyond float's and double's integers: exact.
  const std::int64_t big = (std::int64_t(1) << 53) + 1;
  CHECK((ints({big}) + 2).at<std::int64_t>(0) == big + 2);
  const std::int64_t top = std::numeric_limits<std::int64_t>::max();
  CHECK((ints({top}) + 1).at<std::int64_t>(0) == std::numeric_limits<std::int64_t>::min());
  // Narrow dtypes wrap in their width, as PyTorch's.
  CHECK((ints({250}, dtype::uint8) + 10).at<int>(0) == 4);
  CHECK((ints({2147483647}, dtype::int32) + 1).at<std::int64_t>(0) == -2147483648LL);
}

TEST_CASE("dtype / ops not exact on integers compute them in float32") {
  const var a = ints({7, -7, 3}), b = ints({2, 2, -4});
  const var q = a / b;
  CHECK(q.dtype() == dtype::float32);
  CHECK(q.at(0) == 3.5);
  CHECK(q.at(1) == -3.5);
  CHECK(exp(ints({0})).dtype() == dtype::float32);
  CHECK(exp(ints({0})).item() == 1.0);
  CHECK(sqrt(ints({9}, dtype::uint8)).item() == 3.0);
}

TEST_CASE("dtype / comparisons give bool, and where selects by it") {
  const var x = var::from({-1, 0, 2}, {3});
  const var m = x > 0;
  CHECK(m.dtype() == dtype::bool_);
  CHECK(m.at<bool>(2));
  CHECK(!m.at<bool>(1));
  CHECK(equal(ints({1, 2, 3}), ints({1, 5, 3})).at<bool>(0));
  CHECK((ints({1, 2, 3}) < 2.5).at<int>(1) == 1);
  const var w = where(m, ints({10, 20, 30}), ints({-1, -2, -3}));
  CHECK(w.dtype() == dtype::int64);
  CHECK(w.at<std::int64_t>(0) == -1);
  CHECK(w.at<std::int64_t>(2) == 30);
  // where with a float branch and an integer one: float32, the gradient to the float one.
  var a = var::from({1, 2, 3}, {3}, dtype::float64).requires_grad(true);
  const var y = where(m, a, ints({0, 0, 0}));
  CHECK(y.dtype() == dtype::float64);
  sum(y * y).backward();
  CHECK(a.grad().at(0) == 0.0);
  CHECK(a.grad().at(2) == 6.0);
}

TEST_CASE("dtype / bool arithmetic: + and * as or and and, - refused in words") {
  const var t = var::from({1, 0, 1, 0}, {4}, dtype::bool_),
            u = var::from({1, 1, 0, 0}, {4}, dtype::bool_);
  const var o = t + u, a = t * u;
  CHECK(o.dtype() == dtype::bool_);
  CHECK(o.at<int>(0) == 1);
  CHECK(o.at<int>(3) == 0);
  CHECK(a.at<int>(0) == 1);
  CHECK(a.at<int>(1) == 0);
  CHECK_THROWS_WITH_AS(t - u,
                       "fg::sub(): subtracting or negating bool tensors is not defined (as in "
                       "PyTorch); convert them first, e.g. x.to(fg::int64)",
                       dtype_error);
}

TEST_CASE("dtype / to() converts between any two dtypes as PyTorch does") {
  const var x = var::from({-2.7, -0.5, 0.0, 0.5, 2.7, 300.0}, {6}, dtype::float64);
  const var i = x.to(dtype::int64);
  CHECK(i.dtype() == dtype::int64);
  CHECK(i.at<std::int64_t>(0) == -2);  // toward zero
  CHECK(i.at<std::int64_t>(4) == 2);
  CHECK(x.to(dtype::bool_).at<int>(1) == 1);
  CHECK(x.to(dtype::bool_).at<int>(2) == 0);
  CHECK(ints({300, -1}).to(dtype::uint8).at<int>(0) == 44);  // integers wrap
  CHECK(ints({300, -1}).to(dtype::uint8).at<int>(1) == 255);
  CHECK(x.to(dtype::float16).at(5) == 300.0);
  CHECK(var::scalar(0.1).to(dtype::float16).item() == double(float(float16_t(0.1f))));
  CHECK(var::scalar(0.1).to(dtype::bfloat16).item() == double(float(bfloat16_t(0.1f))));
  // Where C++ leaves float-to-integer undefined, fusegrad saturates (NaN gives 0).
  const var odd = var::from({std::nan(""), 1e300, -1e300}, {3}, dtype::float64);
  CHECK(odd.to(dtype::int64).at<std::int64_t>(0) == 0);
  CHECK(odd.to(dtype::int64).at<std::int64_t>(1) == std::numeric_limits<std::int64_t>::max());
  CHECK(odd.to(dtype::int32).at<std::int64_t>(2) == std::numeric_limits<std::int32_t>::min());
  CHECK(x.to(dtype::float64).handle() == x.handle());  // its own dtype: the same tensor
}

TEST_CASE("dtype / to() between floating dtypes is differentiable") {
  var w = var::from({1.5, -2, 3}, {3}).requires_grad(true);
  var y = sum(w.to(dtype::float64) * w.to(dtype::float64));
  CHECK(y.dtype() == dtype::float64);
  y.backward();
  CHECK(w.grad().dtype() == dtype::float32);
  CHECK(w.grad().at(0) == 3.0);
  CHECK(w.grad().at(2) == 6.0);
  // float16 storage computes in float32; the gradient comes back in float16.
  var h = var::from({0.5, 4}, {2}, dtype::float16).requires_grad(true);
  var z = sum(h * h * 3.0);
  CHECK(z.dtype() == dtype::float16);
  z.backward();
  CHECK(h.grad().dtype() == dtype::float16);
  CHECK(h.grad().at(0) == 3.0);
  CHECK(h.grad().at(1) == 24.0);
  // To an integer: not differentiable (the result is a constant for the tape).
  CHECK(!w.to(dtype::int64).requires_grad());
}

TEST_CASE("dtype / reductions of integers: sum and prod in int64, max and min in their dtype") {
  const var a = var::from({1, 2, 3, 4, 5, 6}, {2, 3}, dtype::int32);
  CHECK(sum(a).dtype() == dtype::int64);
  CHECK(sum(a).item<std::int64_t>() == 21);
  CHECK(sum(a, {1}).at<std::int64_t>(1) == 15);
  CHECK(prod(a).item<std::int64_t>() == 720);
  CHECK(max(a).dtype() == dtype::int32);
  CHECK(max(a, {0}).at<int>(2) == 6);
  CHECK(min(a, {1}, true).shape() == extents{2, 1});
  CHECK(min(a, {1}, true).at<int>(1) == 4);
  CHECK(sum(var::from({1, 1, 0}, {3}, dtype::bool_)).item<std::int64_t>() == 2);
  CHECK_THROWS_WITH_AS(mean(a),
                       "fg::mean(): the tensor holds int32, and this reduction needs a floating "
                       "dtype (as in PyTorch); convert it first, e.g. x.to(fg::float32)",
                       dtype_error);
  CHECK(sum(var::from({0.5, 0.25}, {2}, dtype::float16)).dtype() == dtype::float16);
}

TEST_CASE("dtype / integers never require a gradient, and ops that compute say to convert") {
  var i = ints({1, 2});
  CHECK_THROWS_WITH_AS(i.requires_grad(true),
                       "fg::var::requires_grad(): only floating-point tensors can require a "
                       "gradient; this one holds int64 (indices, counts and masks are never "
                       "differentiated)",
                       dtype_error);
  CHECK_THROWS_WITH_AS(matmul(reshape(i, {1, 2}), reshape(i, {2, 1})),
                       "fusegrad: this op computes in float32 or float64, and the tensor holds "
                       "int64; convert it first, e.g. x.to(fg::float32)",
                       dtype_error);
  CHECK_THROWS_WITH_AS(matmul(var::zeros({1, 2}), var::zeros({2, 1}, dtype::float64)),
                       "fg::matmul(): mixed dtypes float32 float64; convert one of them first, "
                       "e.g. x.to(fg::float32)",
                       dtype_error);
  CHECK_THROWS_WITH_AS(var::rand({2}, dtype::int64),
                       "fg::var::rand(): int64 is not a floating dtype (integers: var::randint)",
                       dtype_error);
}

TEST_CASE("dtype / a mixed chain's gradient matches finite differences") {
  // float64 leaves meet int64 and bool operands: promotions on the way, none differentiated.
  const var k = ints({1, -2, 3}), m = var::from({1, 0, 1}, {3}, dtype::bool_);
  fg::testing::check_var_gradient(
      [&](const std::vector<var>& x) {
        return sum(where(m, x[0] * k, tanh(x[0])) + x[1].to(dtype::float64) * (k > 0));
      },
      {fg::testing::leaf({3}, -1, 1), fg::testing::leaf({3}, -1, 1)});
}
