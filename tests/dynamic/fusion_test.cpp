// Pending elementwise ops: chains computed in one pass, one node on the tape, the same values
// and gradients as op-by-op evaluation, and eager semantics kept for in-place writes.
#include "dynamic_testing.hpp"

#include <optional>
#include <thread>

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

namespace {

// f(xs) evaluated fused and op by op: values and gradients agree to rounding. A non-scalar f
// is given `seed` as its gradient.
void check_fused_equals_eager(const std::function<var(const std::vector<var>&)>& f,
                              std::vector<var> xs, const var& seed = var()) {
  auto run = [&](bool fused) {
    for (var& x : xs)
      x.zero_grad();
    std::vector<double> out;
    {
      std::optional<no_fusion> off;
      if (!fused)
        off.emplace();
      var y = f(xs);
      if (seed.defined())
        y.backward(seed);
      else
        y.backward();
      for (index_t i = 0; i < y.size(); ++i)
        out.push_back(y.at(i));
    }
    for (const var& x : xs)
      for (index_t i = 0; i < x.size(); ++i)
        out.push_back(x.grad().at(i));
    return out;
  };
  const auto fused = run(true), eager = run(false);
  REQUIRE(fused.size() == eager.size());
  for (std::size_t i = 0; i < fused.size(); ++i) {
    INFO("entry " << i << " (the values first)");
    CHECK(fused[i] == doctest::Approx(eager[i]).epsilon(1e-12));
  }
}

// How many recorded nodes stand between y and the leaves.
std::size_t count_nodes(const var& y) {
  std::size_t n = 0;
  std::vector<const dynamic::node*> stack{y.get().grad_fn.get()};
  while (!stack.empty()) {
    const dynamic::node* p = stack.back();
    stack.pop_back();
    if (!p)
      continue;
    ++n;
    for (const var& in : p->inputs)
      if (in.defined())
        stack.push_back(in.get().grad_fn.get());
  }
  return n;
}

}  // namespace

TEST_CASE("fusion / a chain of elementwise ops under a sum is one node") {
  var x = leaf({10}, -2, 2);
  var y = sum(log(1.0 + exp(x)));
  CHECK(count_nodes(y) == 1);
  CHECK(std::string(y.op_name()) == "sum");
  y.backward();
  for (index_t i = 0; i < 10; ++i)
    CHECK(x.grad().at(i) == doctest::Approx(1 / (1 + std::exp(-x.at(i)))).epsilon(1e-12));
  no_fusion off;
  CHECK(count_nodes(sum(log(1.0 + exp(x)))) == 4);
}

TEST_CASE("fusion / a chain's value is computed once it is read, as one node") {
  var x = leaf({3}, -1, 1);
  var y = exp(x) * x;
  CHECK(y.get().pending());
  CHECK(y.at(1) == doctest::Approx(std::exp(x.at(1)) * x.at(1)).epsilon(1e-15));
  CHECK(!y.get().pending());
  CHECK(std::string(y.op_name()) == "mul");
  CHECK(count_nodes(y) == 1);
}

TEST_CASE("fusion / fused and op-by-op evaluation agree in value and gradient") {
  // Sizes around the chunk (256), reuse of a subexpression and of an operand, broadcast
  // numbers and one-element tensors, where, and a chain inside matmul.
  for (index_t n : {1, 7, 255, 256, 257, 1000}) {
    INFO("n = " << n);
    var a = leaf({n}, 0.5, 2), b = leaf({n}, -1, 1), s = leaf({1}, 0.5, 1.5);
    check_fused_equals_eager(
        [](const auto& v) {
          var t = sin(v[1]) * v[0];  // used twice
          return sum(t * t + exp(-v[1]) / v[0] - pow(v[0], 2.5) * v[2] + t);
        },
        {a, b, s});
    check_fused_equals_eager(
        [](const auto& v) { return mean(where(v[1], v[0] * 2.0, tanh(v[1])) * v[0]); }, {a, b});
  }
  var m = leaf({3, 4}, -1, 1), w = leaf({4, 2}, -1, 1);
  check_fused_equals_eager(
      [](const auto& v) { return sum(sigmoid(matmul(tanh(v[0]) * 2.0, v[1]) + 1.0)); }, {m, w});
}

TEST_CASE("fusion / a chain's backward from a seed, at sizes around a SIMD batch and a chunk") {
  // A chunk that is not whole batches runs on padded copies of its operands and of the seed.
  for (index_t n : {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 255, 256, 257, 300}) {
    INFO("n = " << n);
    var a = leaf({n}, 0.5, 2), b = leaf({n}, -1, 1), s = leaf({1}, 0.5, 1.5);
    var seed = leaf({n}, -1, 1).detach();
    check_fused_equals_eager(
        [](const auto& v) { return log(v[0]) * v[1] + exp(v[1]) * v[2] - v[0] / v[2]; }, {a, b, s},
        seed);
    for (dtype t : {dtype::float32, dtype::float64}) {  // the value alone, fused, written out
      var x = var::empty({n}, t);
      for (index_t i = 0; i < n; ++i)
        x.set(i, a.at(i));
      var y = sqrt(x) + 1.0;
      for (index_t i = 0; i < n; ++i)
        CHECK(y.at(i) == doctest::Approx(std::sqrt(a.at(i)) + 1).epsilon(1e-6));
    }
  }
}

TEST_CASE("fusion / gradients of fused chains against finite differences") {
  var a = leaf({300}, 0.5, 2), b = leaf({300}, -1, 1);
  check_var_gradient([](const auto& v) { return sum(log(v[0] + exp(v[1])) * v[1]); }, {a, b});
  // A seed of another value than 1 scales the gradients computed in the forward pass.
  check_var_gradient([](const auto& v) { return 0.25 * sum(sqrt(v[0]) * v[1]); }, {a, b});
  check_var_gradient([](const auto& v) { return sum(exp(v[0]) * v[1], {}, true) * 3.0; }, {a, b});
  var keep = leaf({2, 3}, -1, 1);
  var k = sum(exp(keep), {}, true);
  CHECK(k.shape() == extents{1, 1});
}

TEST_CASE("fusion / a chain longer than the limit is cut and still right") {
  var x = leaf({20}, -0.5, 0.5);
  auto f = [](const std::vector<var>& v) {
    var s = v[0];
    for (int i = 0; i < 100; ++i)
      s = sin(s) + v[0] * 0.01;
    return sum(s);
  };
  var y = f({x});  // 300 ops, cut into chains of nearly fusion_limit
  CHECK(count_nodes(y) > 1);
  CHECK(count_nodes(y) <= 2 + 300 / (dynamic::fusion_limit - 3));
  check_fused_equals_eager(f, {x});
  check_var_gradient(f, {x});
}

TEST_CASE("fusion / a retained graph runs a fused chain again for a second backward") {
  var x = leaf({5}, -1, 1);
  var y = sum(exp(x) * x);
  y.backward(true);
  std::vector<double> first;
  for (index_t i = 0; i < 5; ++i)
    first.push_back(x.grad().at(i));
  x.zero_grad();
  y.backward();
  for (index_t i = 0; i < 5; ++i)
    CHECK(x.grad().at(i) == doctest::Approx(first[std::size_t(i)]).epsilon(1e-15));
}

TEST_CASE("fusion / in-place writes see the values pending ops were given") {
  var x = var::from({1, 2}, {2}, dtype::float64);
  var y = exp(x);  // pending: reads x when computed
  x.set(0, 5.0);
  CHECK(y.at(0) == doctest::Approx(std::exp(1.0)));
  var z = x * 2.0;
  x.data<double>()[1] = 7.0;  // a raw write through data() too
  CHECK(z.at(1) == 4.0);
  var g = var::from({3}, {1}, dtype::float64).requires_grad(true);
  var u = g * 2.0;
  g.set(0, 10.0);
  CHECK(u.item() == 6.0);
}

TEST_CASE("fusion / an op made under no_grad passes no gradient inside a chain") {
  var x = var::from({0.5, 1.5}, {2}, dtype::float64).requires_grad(true);
  var e;
  {
    no_grad off;
    e = exp(x);  // a constant for what follows
  }
  sum(e * x).backward();
  for (index_t i = 0; i < 2; ++i)
    CHECK(x.grad().at(i) == doctest::Approx(std::exp(x.at(i))).epsilon(1e-15));
}

TEST_CASE("fusion / a pending var made on a thread that ended is computed when read") {
  var x = var::from({1, 2, 3}, {3}, dtype::float64);
  var y;
  std::thread([&] { y = x * x + 1.0; }).join();
  CHECK(y.get().pending());
  CHECK(y.at(2) == 10.0);
}

TEST_CASE("fusion / no tensor of the input's size is kept by a fused sum but the gradients") {
  var x = var::zeros({1 << 16}).requires_grad(true);
  x.zero_grad();
  sum(exp(x) * 2.0).backward();  // warms the pool
  auto cached = [] { return long(dynamic::storage_pool::local()->cached_bytes()); };
  const long before = cached();
  x.zero_grad();
  var y = sum(sin(x) * exp(x) + x);
  // Taken from the pool and kept: the gradient only (the chunk scratch goes back).
  CHECK(before - cached() <= long(sizeof(float)) << 16);
  y.backward();
  CHECK(x.grad().at(0) == doctest::Approx(2.0));
}

TEST_CASE("fusion / empty tensors") {
  var x = var::zeros({0}).requires_grad(true);
  var y = sum(exp(x) * x);
  CHECK(y.item() == 0.0);
  y.backward();
  CHECK(x.grad().size() == 0);
}
