// The tape: gradients through plain C++ control flow, graph lifetime, in-place changes,
// no_grad/detach, non-scalar seeds, and one graph per thread.
#include "dynamic_testing.hpp"

#include <memory_resource>
#include <new>
#include <optional>
#include <sstream>
#include <thread>

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

namespace {
// if (x + y > 0) (x + y) * z else (x + y) + z, decided on the value at run time.
var branchy(const var& x, const var& y, const var& z) {
  var s = x + y;
  if (sum(s).item() > 0)
    return sum(s * z);
  return sum(s + z);
}
}  // namespace

TEST_CASE("tape / a branch on a value gives the right gradient on both branches") {
  for (double shift : {2.0, -2.0}) {
    var x = var::from({0.5 + shift, 0.25}, {2}, dtype::float64).requires_grad(true);
    var y = var::from({0.1, 0.2}, {2}, dtype::float64).requires_grad(true);
    var z = var::from({3, -1}, {2}, dtype::float64).requires_grad(true);
    branchy(x, y, z).backward();
    if (shift > 0) {  // d/dx (x+y) z = z, d/dz = x + y
      CHECK(x.grad().at(0) == 3.0);
      CHECK(z.grad().at(1) == doctest::Approx(0.45));
    } else {  // d/dx = 1, d/dz = 1
      CHECK(x.grad().at(1) == 1.0);
      CHECK(z.grad().at(0) == 1.0);
    }
  }
}

TEST_CASE("tape / an RNN-style loop over sequences of different lengths") {
  generator g(7);
  var w = (var::randn({3, 3}, g, dtype::float64) * 0.5).detach().requires_grad(true);
  var u = (var::randn({2, 3}, g, dtype::float64) * 0.5).detach().requires_grad(true);
  for (int len : {1, 3, 6}) {  // a different graph each time
    std::vector<var> xs;
    for (int t = 0; t < len; ++t)
      xs.push_back(var::randn({1, 2}, g, dtype::float64));
    check_var_gradient(
        [&](const auto& v) {
          var h = var::zeros({1, 3}, dtype::float64);
          for (const var& x : xs)  // trip count from the data
            h = tanh(matmul(h, v[0]) + matmul(x, v[1]));
          return sum(h * h);
        },
        {w, u});
  }
}

TEST_CASE("tape / gradients accumulate until zero_grad, and a leaf used twice adds") {
  var x = var::from({2}, {1}, dtype::float64).requires_grad(true);
  sum(x * x).backward();
  sum(x * x).backward();
  CHECK(x.grad().at(0) == 8.0);
  x.zero_grad();
  CHECK(!x.grad().defined());
}

TEST_CASE("tape / a second backward through a freed graph is an error unless retained") {
  var x = var::from({1, 2}, {2}, dtype::float64).requires_grad(true);
  var y = sum(exp(x));
  y.backward(true);  // retain_graph
  y.backward();
  CHECK(x.grad().at(0) == doctest::Approx(2 * std::exp(1.0)));
  CHECK_THROWS_WITH_AS(y.backward(),
                       "fg::var::backward(): the graph through 'sum' was freed by an earlier "
                       "backward(); pass retain_graph = true to the first one to go through it "
                       "twice",
                       fg::autograd_error);
}

TEST_CASE("tape / changing a saved value in place is caught") {
  var x = var::from({1, 2}, {2}, dtype::float64).requires_grad(true);
  var y = sum(exp(x));
  x.set(0, 5.0);
  CHECK_THROWS_WITH_AS(y.backward(),
                       "fg::var::backward(): a value saved by 'exp' was modified in place after "
                       "it was used; its gradient would be wrong",
                       fg::autograd_error);
}

TEST_CASE("tape / no_grad records nothing and detach cuts the graph") {
  var x = var::from({1, 2}, {2}, dtype::float64).requires_grad(true);
  {
    no_grad off;
    var y = x * 2.0;
    CHECK(!y.requires_grad());
    CHECK(std::string(y.op_name()).empty());
  }
  var d = (x * 3.0).detach();
  CHECK(!d.requires_grad());
  CHECK_THROWS_AS(sum(d).backward(), fg::autograd_error);
  var z = sum(x * d);  // d is a constant here
  z.backward();
  CHECK(x.grad().at(1) == 6.0);
}

TEST_CASE("tape / a non-scalar output takes a seed of its shape") {
  var x = var::from({1, 2, 3}, {3}, dtype::float64).requires_grad(true);
  var y = x * x;
  CHECK_THROWS_AS(y.backward(), fg::shape_error);
  y.backward(var::from({1, 0, 2}, {3}, dtype::float64));
  CHECK(x.grad().at(0) == 2.0);
  CHECK(x.grad().at(1) == 0.0);
  CHECK(x.grad().at(2) == 12.0);
}

TEST_CASE("tape / the caller's seed is copied into .grad(), never shared with it") {
  var x = var::from({1, 2}, {2}, dtype::float64).requires_grad(true);
  var seed = var::from({3, 4}, {2}, dtype::float64);
  x.backward(seed);  // a leaf: its gradient is the seed
  seed.set(0, 100.0);
  CHECK(x.grad().at(0) == 3.0);
  (x * 1.0).backward(seed);
  seed.set(1, 100.0);
  CHECK(x.grad().at(0) == 103.0);
  CHECK(x.grad().at(1) == 8.0);
  sum(x).backward();  // its own seed of ones can be taken over: the result is the same
  CHECK(x.grad().at(1) == 9.0);
}

TEST_CASE("tape / backward()'s seed of one is shared by every walk, never taken as a gradient") {
  var a = var::scalar(2.0, dtype::float64).requires_grad(true);
  var b = var::scalar(3.0, dtype::float64).requires_grad(true);
  for (bool fused : {true, false}) {
    CAPTURE(fused);
    a.zero_grad();
    b.zero_grad();
    std::optional<no_fusion> off;
    if (!fused)
      off.emplace();
    (a + b).backward();      // add passes its gradient on to both inputs
    a.grad().set(0, 100.0);  // a write to one gradient reaches neither the other nor the seed
    CHECK(b.grad().item() == 1.0);
    a.backward();  // a leaf: its gradient grows by one
    (a * b).backward();
    CHECK(a.grad().item() == 104.0);
    CHECK(b.grad().item() == 3.0);
  }
}

TEST_CASE("var / to(fg::cuda) in a program without the CUDA backend says what to include") {
  var x = var::from({1, 2}, {2});
  CHECK(!x.on_device());
  CHECK_THROWS_WITH_AS(x.to(fg::cuda), doctest::Contains("include <fusegrad/cuda.hpp>"),
                       autograd_error);
  var h = x.to(fg::host);  // a copy
  h.set(0, 5.0);
  CHECK(x.at(0) == 1.0);
  CHECK(h.at(1) == 2.0);
}

TEST_CASE("tape / two threads with their own graphs give the results of one") {
  auto run = [](double seed_value, double* out) {
    var x = var::from({seed_value, 1.0}, {2}, dtype::float64).requires_grad(true);
    for (int i = 0; i < 200; ++i) {
      x.zero_grad();
      sum(sin(x) * exp(x)).backward();
    }
    *out = x.grad().at(0);
  };
  double alone = 0, a = 0, b = 0;
  run(0.3, &alone);
  std::thread t1(run, 0.3, &a), t2(run, 0.3, &b);
  t1.join();
  t2.join();
  CHECK(a == alone);
  CHECK(b == alone);
}

TEST_CASE("var / creation, item and printing") {
  var a = var::arange(4, dtype::float64);
  CHECK(a.at(3) == 3.0);
  CHECK(var::full({2, 2}, 1.5).at(3) == 1.5f);
  CHECK_THROWS_WITH_AS(a.item(), "fg::var::item(): the tensor has shape [4], not one element",
                       fg::shape_error);
  CHECK_THROWS_WITH_AS(var::from({1, 2, 3}, {2, 2}),
                       "fg::var::from(): 3 values given for shape [2, 2] (4 elements)",
                       fg::shape_error);
  generator g1(5), g2(5);
  var r1 = var::randn({50}, g1), r2 = var::randn({50}, g2);
  CHECK(r1.at(49) == r2.at(49));
  std::ostringstream os;
  var x = var::from({1, 2, 3, 4}, {2, 2}).requires_grad(true);
  os << x * 2.0;
  CHECK(os.str() == "var([[2., 4.],\n     [6., 8.]], shape=[2, 2], float32, op=mul)");
}

TEST_CASE("pool / a training loop's temporaries are reused, not reallocated") {
  var w = var::from({0.5, -0.25, 1.0, 2.0}, {2, 2}, dtype::float64).requires_grad(true);
  var x = var::from({1, 2, 3, 4}, {2, 2}, dtype::float64);
  auto step = [&] {
    w.zero_grad();
    sum(tanh(matmul(x, w)) * 2.0).backward();
  };
  step();  // warms the pool
  const std::size_t cached = dynamic::storage_pool::local()->cached_bytes();
  for (int i = 0; i < 10; ++i)
    step();
  CHECK(dynamic::storage_pool::local()->cached_bytes() == cached);
  CHECK(cached > 0);
}

// Destroyed after main returns, after the thread's storage pool: must not touch the pool.
fg::var kept_until_exit = fg::var::ones({16});

TEST_CASE("tape / a long chain of ops is dropped and freed without deep recursion") {
  var x = var::from({1.0}, {1}, dtype::float64).requires_grad(true);
  {
    var s = x;
    for (int i = 0; i < 300000; ++i)
      s = s * 1.0;
    (void)s;  // never backpropagated: destroyed here
  }
  var s = x;
  for (int i = 0; i < 300000; ++i)
    s = s * 1.0;
  sum(s).backward();
  CHECK(x.grad().at(0) == 1.0);
  CHECK(kept_until_exit.size() == 16);
}

TEST_CASE("tape / a refused backward changes nothing") {
  var w = var::from({1, 2}, {2}, dtype::float64).requires_grad(true);
  var u = var::from({0.5, 0.25}, {2}, dtype::float64).requires_grad(true);
  var loss = sum(w * 3.0) + sum(exp(u));
  u.set(0, 1.0);
  CHECK_THROWS_AS(loss.backward(), fg::autograd_error);
  CHECK(!w.grad().defined());
  CHECK_THROWS_WITH_AS(loss.backward(),
                       "fg::var::backward(): a value saved by 'exp' was modified in place after "
                       "it was used; its gradient would be wrong",
                       fg::autograd_error);
}

namespace {
// Memory that runs out at the k-th allocation (the walk's lists spill into the default
// resource once their stack buffer is full).
struct running_out : std::pmr::memory_resource {
  int left;
  explicit running_out(int k) : left(k) {}
  void* do_allocate(std::size_t b, std::size_t a) override {
    if (--left == 0)
      throw std::bad_alloc();
    return std::pmr::new_delete_resource()->allocate(b, a);
  }
  void do_deallocate(void* p, std::size_t b, std::size_t a) override {
    std::pmr::new_delete_resource()->deallocate(p, b, a);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
    return this == &o;
  }
};
}  // namespace

TEST_CASE("tape / a backward that runs out of memory part way leaves a graph that still works") {
  for (int k = 1;; ++k) {
    CAPTURE(k);
    no_fusion off;  // a node per op: a walk long enough to spill
    var x = var::from({1, 2}, {2}, dtype::float64).requires_grad(true);
    std::vector<var> steps{x};
    for (int i = 0; i < 200; ++i)
      steps.push_back(steps.back() * 2.0);
    var loss = sum(steps.back());
    running_out memory(k);
    std::pmr::set_default_resource(&memory);
    bool threw = false;
    try {
      loss.backward();
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    std::pmr::set_default_resource(nullptr);
    if (!threw)
      break;                     // k is past the walk's last allocation
    CHECK(!x.grad().defined());  // leaves receive nothing from a backward that failed
    // The node the walk stopped at was not freed: a backward from the latest step before it
    // runs (freed ones refuse), and reaches x.
    bool ran = false;
    for (std::size_t j = steps.size(); j-- > 1 && !ran;) {
      try {
        steps[j].backward(var::ones({2}, dtype::float64));
        ran = true;
      } catch (const fg::autograd_error&) {
      }
    }
    CHECK(ran);
    CHECK(x.grad().defined());
  }
}

TEST_CASE("var / copy_from copies the elements, tracked, converted, and refuses another shape") {
  var x = var::from({1, 2}, {2}, dtype::float64).requires_grad(true);
  var loss = sum(x * x);
  x.copy_from(var::from({5, 6}, {2}, dtype::float64));
  CHECK(x.at(1) == 6.0);
  CHECK_THROWS_AS(loss.backward(), autograd_error);  // the saved x was changed in place
  x.copy_from(var::from(std::vector<std::int64_t>{7, -8}, {2}));
  CHECK(x.dtype() == dtype::float64);
  CHECK(x.at(1) == -8.0);
  CHECK_THROWS_WITH_AS(x.copy_from(var::zeros({3}, dtype::float64)),
                       "fg::var::copy_from(): the source is [3], the tensor [2]", shape_error);
}
