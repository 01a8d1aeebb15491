// One pass, no temporaries: counted operator new calls, and the order in which fused ops run.
#include "../testing.hpp"

#include <fusegrad/static_nn.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

namespace {
std::atomic<long> allocations{0};
}
void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n ? n : 1))
    return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  ++allocations;
  const std::size_t al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al))
    return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

using namespace fg;

namespace {

// A user op that logs each call: inner and outer calls interleave only if the loop is fused.
std::vector<int>* call_log = nullptr;
template <int Id> struct logged_op {
  static constexpr const char* name = "logged";
  template <class V> static V forward(V x) {
    if (call_log)
      call_log->push_back(Id);
    return x + V(1);
  }
  template <class V> static V derivative(V, V) { return V(1); }
};

}  // namespace

TEST_CASE("a deep elementwise expression allocates nothing on the static path") {
  tensor<float, shape<1000>> a, b, c, d, out;
  fg::testing::fill_uniform(a, -1, 1);
  fg::testing::fill_uniform(b, -1, 1);
  fg::testing::fill_uniform(c, -1, 1);
  fg::testing::fill_uniform(d, -1, 1);
  const long before = allocations.load();
  out = a * b + sin(c) * exp(-d) + tanh(a - b) / (1.0f + square(c)) - sqrt(abs(d) + 1.0f);
  auto [v, ga, gb, gc, gd] = value_and_grad(sum(a * b + sin(c) * exp(-d)), a, b, c, d);
  auto rs = eval(sum(a, axes<0>{}) + max(b));
  CHECK(allocations.load() == before);
  CHECK(std::isfinite(v));
  CHECK(std::isfinite(float(rs)));
  for (int i = 0; i < 1000; ++i) {
    CHECK(gd[i] == doctest::Approx(-std::sin(c[i]) * std::exp(-d[i])).epsilon(1e-5));
  }
}

TEST_CASE("with dyn extents / an elementwise expression allocates only its result") {
  tensor<double, shape<dyn>> a(dims_t<1>{100}), b(dims_t<1>{100});
  const long before = allocations.load();
  auto y = eval(exp(a) * b + sin(a * b) - a / (b + 2.0));
  CHECK(allocations.load() == before + 1);
  CHECK(y.size() == 100);
  y = y * 2.0 + a;  // same extents: evaluated in place, nothing allocated
  CHECK(allocations.load() == before + 1);
}

TEST_CASE("nested ops run interleaved in one loop / not one loop per op") {
  std::vector<int> log;
  call_log = &log;
  tensor<double, shape<9>> x;
  tensor<double, shape<9>> y = apply<logged_op<2>>(apply<logged_op<1>>(x));
  call_log = nullptr;
  REQUIRE(log.size() % 2 == 0);
  REQUIRE(log.size() >= 2);
  for (std::size_t i = 0; i < log.size(); i += 2) {
    CHECK(log[i] == 1);
    CHECK(log[i + 1] == 2);
  }
  CHECK(y[0] == 2.0);
}

TEST_CASE("value and every gradient of sum(elementwise) come from one pass") {
  std::vector<int> log;
  tensor<double, shape<9>> x;
  call_log = &log;
  auto [v, g] = value_and_grad(sum(apply<logged_op<1>>(x) * x), x);
  call_log = nullptr;
  // One forward call per batch (and per tail element): a second pass would double the count.
  const std::size_t w = simd::width<double>;
  CHECK(log.size() == 9 / w + 9 % w);
  CHECK(v == doctest::Approx(0.0));
  for (int i = 0; i < 9; ++i)
    CHECK(g[i] == doctest::Approx(1.0));
}

TEST_CASE("kernels are trivially copyable: loops take them by value") {
  tensor<float, shape<8>> a, b;
  tensor<float, shape<>> mu;
  auto e = exp(a) * b + sum(a) - log(mu);
  exec::evaluator<decltype(e), 1> ev(e, dims_t<1>{8});
  static_assert(std::is_trivially_copyable_v<decltype(ev.kernel())>);
  CHECK(ev.dense());
}

TEST_CASE("aliasing: the target of an assignment may appear in the expression") {
  tensor<double, shape<3, 3>> x{1, 2, 3, 4, 5, 6, 7, 8, 9};
  x = x + 1.0;
  CHECK(x(0, 0) == 2.0);
  CHECK(x(2, 2) == 10.0);
  x = transpose(x);
  CHECK(x(0, 1) == 5.0);
  CHECK(x(1, 0) == 3.0);
  x = x * transpose(x);  // reads x both ways while writing it
  CHECK(x(0, 1) == 15.0);
  CHECK(x(1, 0) == 15.0);
  tensor<double, shape<3, 3>> e{1, 0, 0, 0, 1, 0, 0, 0, 1};
  tensor<double, shape<3, 3>> m{1, 2, 3, 4, 5, 6, 7, 8, 9};
  m = matmul(m, m + e);
  CHECK(m(0, 0) == 31.0);  // [1 2 3] . [2 4 7]
  tensor<double, shape<dyn>> v(dims_t<1>{4}, {1, 2, 3, 4});
  v = reshape<shape<dyn>>(transpose(reshape<shape<2, 2>>(v)), {4});
  CHECK(v[1] == 3.0);
  CHECK(v[2] == 2.0);
}

TEST_CASE("broadcast over leading and inner axes / static and dyn") {
  tensor<double, shape<2, 3>> a{1, 2, 3, 4, 5, 6};
  tensor<double, shape<3>> row{10, 20, 30};
  tensor<double, shape<2, 1>> col{100, 200};
  tensor<double, shape<2, 3>> y = a + row + col;
  CHECK(y(0, 0) == 111.0);
  CHECK(y(1, 2) == 236.0);
  tensor<double, shape<dyn, dyn>> ad(dims_t<2>{2, 3}, {1, 2, 3, 4, 5, 6});
  tensor<double, shape<dyn, 1>> cd(dims_t<2>{2, 1}, {100, 200});
  auto yd = eval(ad + row + cd);
  CHECK(yd(1, 2) == 236.0);
  fg::testing::check_gradient(
      [](auto& p, auto& r, auto& c) { return sum(exp(p * 0.1) * r + c * p); }, a, row, col);
}

TEST_CASE("large static tensors stay inline: nothing allocated for the tensors themselves") {
  static tensor<float, shape<40000>> big;  // 160 KB, beyond the evaluator's inline limit
  // Passes this long run on threads: the pool starts its workers once, at its first job (an
  // allocation per process, not per step), so that comes first.
  fg::parallel_for(0, 2, 1, [](std::size_t, std::size_t) {});
  const long before = allocations.load();
  static tensor<float, shape<40000>> other;
  CHECK(allocations.load() == before);
  big.fill(1.0f);
  other = big * 2.0f + 1.0f;
  CHECK(allocations.load() == before);
  CHECK(other[39999] == 3.0f);
  CHECK(float(eval(sum(other))) == doctest::Approx(120000.0f));
}

TEST_CASE("a trainer step with scratch beyond the inline limit still allocates nothing") {
  // The first layer's GEMM packing alone is about 140 KiB, over buffer's 64 KiB inline limit:
  // in a gradient_workspace every static buffer stays inline all the same.
  namespace nn = fg::static_nn;
  using net = nn::sequential<nn::dense<float, 256, 128>, nn::relu_layer, nn::dense<float, 128, 10>>;
  using x_t = tensor<float, shape<8, 256>>;
  using y_t = tensor<float, shape<8, 10>>;
  using trainer_t = nn::trainer<net, nn::cross_entropy, nn::adam, x_t, y_t>;
  static net model;
  static trainer_t t(model);
  static x_t x;
  static y_t y;
  nn::generator g(1);
  model.init(g);
  nn::fill_uniform(x, g, 0.0f, 1.0f);
  const int labels[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  nn::one_hot(labels, y);
  const long before = allocations.load();
  const float l0 = t.step(x, y);
  float l = l0;
  for (int i = 0; i < 20; ++i)
    l = t.step(x, y);
  CHECK(allocations.load() == before);
  CHECK(l < l0);
  static_assert(trainer_t::memory.workspace > 64 * 1024);
}
