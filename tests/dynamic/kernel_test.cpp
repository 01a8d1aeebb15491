// fg::kernel: a static expression as one dynamic op agrees with the same formula built from
// primitive ops, in value and gradient, and runs as one fused loop each way.
#include "dynamic_testing.hpp"

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

namespace {
auto formula = [](const auto& x, const auto& y, const auto& w) {
  return log1p(exp(x * w)) * y + sin(x) * w - square(y);
};
}  // namespace

TEST_CASE("kernel / value and gradients equal the primitive-op version") {
  var x = leaf({4, 9}, -1, 1), y = leaf({4, 9}, -1, 1), w = leaf({4, 9}, -1, 1);
  auto fused = kernel("softplus_mix", [](auto a, auto b, auto c) { return formula(a, b, c); });
  var k = fused(x, y, w);
  CHECK(std::string(k.op_name()) == "softplus_mix");
  var p = formula(x, y, w);
  for (index_t i = 0; i < k.size(); ++i)
    CHECK(k.at(i) == doctest::Approx(p.at(i)).epsilon(1e-12));
  sum(k * k).backward();
  const var gx = x.grad(), gy = y.grad(), gw = w.grad();
  x.zero_grad();
  y.zero_grad();
  w.zero_grad();
  sum(p * p).backward();
  for (index_t i = 0; i < x.size(); ++i) {
    CHECK(gx.at(i) == doctest::Approx(x.grad().at(i)).epsilon(1e-10));
    CHECK(gy.at(i) == doctest::Approx(y.grad().at(i)).epsilon(1e-10));
    CHECK(gw.at(i) == doctest::Approx(w.grad().at(i)).epsilon(1e-10));
  }
  check_var_gradient([&](const auto& v) { return sum(fused(v[0], v[1], v[2]) * v[1]); }, {x, y, w});
}

TEST_CASE("kernel / an input named twice, and inputs that need no gradient") {
  var x = leaf({5}, -1, 1);
  var c = var::from({1, 2, 3, 4, 5}, {5}, dtype::float64);  // a constant
  auto f = kernel([](auto a, auto b, auto k) { return a * b + k * a; });
  check_var_gradient([&](const auto& v) { return sum(f(v[0], v[0], c)); }, {x});
}

namespace {
std::vector<int>* order = nullptr;
template <int Id> struct logged_op {
  static constexpr const char* name = "logged";
  template <class V> static V forward(V x) {
    if (order)
      order->push_back(Id);
    return x + V(1);
  }
  template <class V> static V derivative(V, V) { return V(1); }
};
}  // namespace

TEST_CASE("kernel / forward is one fused loop: inner and outer ops interleave") {
  std::vector<int> log;
  var x = var::zeros({3}, dtype::float64);
  auto f = kernel([](auto a) { return apply<logged_op<2>>(apply<logged_op<1>>(a)); });
  order = &log;
  var y = f(x);
  order = nullptr;
  REQUIRE(log.size() >= 2);
  CHECK(log[0] == 1);
  CHECK(log[1] == 2);  // the outer op ran before the inner op's next element: one loop
  CHECK(y.at(2) == 2.0);
}

TEST_CASE("kernel / inputs of different shapes are refused with the shapes") {
  auto f = kernel("pair", [](auto a, auto b) { return a + b; });
  CHECK_THROWS_WITH_AS(f(var::zeros({2, 3}), var::zeros({3})),
                       "fg::pair(): a kernel's inputs must share one shape; [2, 3] [3]",
                       fg::shape_error);
}

TEST_CASE("kernel / a body that sums: one op, value and gradients from one pass") {
  var x = leaf({6}, -1, 1), y = leaf({6}, -1, 1);
  auto loss = kernel("loss", [](auto a, auto b) { return sum(a * b + exp(-a)); });
  var l = loss(x, y);
  CHECK(l.shape() == extents{});
  var ref = sum(x * y + exp(-x));
  CHECK(l.item() == doctest::Approx(ref.item()).epsilon(1e-12));
  check_var_gradient([&](const auto& v) { return loss(v[0], v[1]) * 3.0; }, {x, y});
}

TEST_CASE("kernel / a scalar kernel's gradient computed with its value is handed over once") {
  var x = leaf({5}, -1, 1);
  auto loss = kernel([](auto a) { return sum(sin(a) * a); });
  var l = loss(x);
  l.backward(true);  // seed 1: the gradient computed in the forward pass
  const var first = x.grad();
  std::vector<double> g1;
  for (index_t i = 0; i < 5; ++i) {
    g1.push_back(first.at(i));
    CHECK(first.at(i) == doctest::Approx(std::cos(x.at(i)) * x.at(i) + std::sin(x.at(i))));
  }
  x.zero_grad();
  l.backward();  // retained graph, second backward: recomputed by the gradient pass
  for (index_t i = 0; i < 5; ++i)
    CHECK(x.grad().at(i) == doctest::Approx(g1[std::size_t(i)]).epsilon(1e-12));
}

TEST_CASE("kernel / a detached copy or an alias of an input is not the input") {
  var a = var::from({2}, {1}, dtype::float64).requires_grad(true);
  auto f = kernel([](auto x, auto y) { return x * y * y; });
  f(a, a.detach()).backward(var::ones({1}, dtype::float64));
  CHECK(a.grad().at(0) == 4.0);            // d/dx x y^2 = y^2, y constant
  var b = a.detach().requires_grad(true);  // another leaf over the same elements
  a.zero_grad();
  f(a, b).backward(var::ones({1}, dtype::float64));
  CHECK(a.grad().at(0) == 4.0);
  CHECK(b.grad().at(0) == 8.0);  // 2 x y
  a.zero_grad();
  f(a, a).backward(var::ones({1}, dtype::float64));  // the same var twice: 3 x^2
  CHECK(a.grad().at(0) == 12.0);
}
