// Where an op has no derivative, or its value is a special case, fusegrad follows PyTorch: pow's
// special values and partials, abs'(0) = 0, relu' at 0 and NaN, maximum/minimum ties and NaN.
// The same op structs serve every path, so each grid of special values runs on the static path
// (SIMD lanes and a scalar tail), on fg::var fused and unfused, and through fg::kernel, and all
// must agree bitwise before the values are checked against PyTorch's (1.13, printed by
// tests/dynamic/torch_parity.py, which checks the same grids).
#include "../testing.hpp"

#include <fusegrad/dynamic.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace fg;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double qnan = std::numeric_limits<double>::quiet_NaN();

// Values and the gradient of sum(f) for each argument, as doubles.
struct run {
  std::vector<double> value;
  std::vector<std::vector<double>> grad;
};

bool same(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || a == b;
}

// Bitwise agreement (NaN with NaN), or within a relative tol where float32 rounds a result.
void check_same(const run& got, const run& want, const std::string& path, double tol = 0) {
  auto near = [&](double a, double b) {
    return same(a, b) || (std::isfinite(a) && std::abs(a - b) <= tol * std::abs(b));
  };
  INFO("path: " << path);
  REQUIRE(got.value.size() == want.value.size());
  for (std::size_t i = 0; i < want.value.size(); ++i) {
    INFO("element " << i);
    CHECK_MESSAGE(near(got.value[i], want.value[i]), got.value[i], " != ", want.value[i]);
    for (std::size_t k = 0; k < want.grad.size(); ++k)
      CHECK_MESSAGE(near(got.grad[k][i], want.grad[k][i]), "gradient ", k, ": ", got.grad[k][i],
                    " != ", want.grad[k][i]);
  }
}

template <index_t N, class T, class F>
run on_static(F f, const std::vector<double>* in[], int args) {
  using tensor_t = tensor<T, shape<N>>;
  tensor_t x[2];
  for (int k = 0; k < args; ++k)
    for (index_t i = 0; i < N; ++i)
      x[k][i] = T((*in[k])[std::size_t(i)]);
  run r;
  tensor_t y = f(x[0], x[args - 1]);
  for (index_t i = 0; i < N; ++i)
    r.value.push_back(double(y[i]));
  auto collect = [&](const auto&... g) { (r.grad.emplace_back(g.data(), g.data() + N), ...); };
  if (args == 1)
    std::apply([&](auto, const auto&... g) { collect(g...); },
               value_and_grad(sum(f(x[0], x[0])), x[0]));
  else
    std::apply([&](auto, const auto&... g) { collect(g...); },
               value_and_grad(sum(f(x[0], x[1])), x[0], x[1]));
  return r;
}

template <class F> run on_var(F f, const std::vector<double>* in[], int args, dtype t) {
  std::vector<var> x;
  for (int k = 0; k < args; ++k)
    x.push_back(var::from(*in[k], {index_t(in[k]->size())}, t).requires_grad(true));
  const var y = args == 1 ? f(x[0], x[0]) : f(x[0], x[1]);
  sum(y).backward();
  run r;
  for (index_t i = 0; i < y.size(); ++i)
    r.value.push_back(y.at(sindex_t(i)));
  for (int k = 0; k < args; ++k) {
    r.grad.emplace_back();
    for (index_t i = 0; i < y.size(); ++i)
      r.grad.back().push_back(x[std::size_t(k)].grad().at(sindex_t(i)));
  }
  return r;
}

// f on every path, in float64 and float32; returns the float64 run after checking the others.
template <index_t N, class F> run every_path(F f, const std::vector<double>* in[], int args) {
  const run want = on_static<N, double>(f, in, args);
  check_same(on_var(f, in, args, dtype::float64), want, "fg::var float64");
  {
    no_fusion unfused;
    check_same(on_var(f, in, args, dtype::float64), want, "fg::var float64, no_fusion");
  }
  const auto k = kernel([&](auto a, auto b) { return f(a, b); });
  check_same(on_var(k, in, args, dtype::float64), want, "fg::kernel float64");
  // float32: bitwise the same across its paths, and the same special values as float64
  const run want32 = on_static<N, float>(f, in, args);
  check_same(on_var(f, in, args, dtype::float32), want32, "fg::var float32");
  check_same(on_var(k, in, args, dtype::float32), want32, "fg::kernel float32");
  check_same(want32, want, "static float32 against float64", 1e-6);
  return want;
}

const std::vector<double> pow_bases = {0, -0.0, 1, -1, 2, -2, 0.5, inf, -inf, qnan};
const std::vector<double> pow_exponents = {0, -0.0, 1, -1, 2, 3, 0.5, -0.5, inf, -inf, qnan};

}  // namespace

TEST_CASE("conventions / pow's special values and partials, on every path") {
  std::vector<double> a, b;  // every pair: 110 elements, SIMD lanes and a tail
  for (double x : pow_bases)
    for (double y : pow_exponents) {
      a.push_back(x);
      b.push_back(y);
    }
  const std::vector<double>* in[] = {&a, &b};
  const run r = every_path<110>([](const auto& x, const auto& y) { return pow(x, y); }, in, 2);
  auto at = [&](double x, double y) {
    for (std::size_t i = 0; i < a.size(); ++i)
      if (same(a[i], x) && same(b[i], y) && std::signbit(a[i]) == std::signbit(x))
        return i;
    FAIL("no such pair");
    return std::size_t(0);
  };
  struct expect {
    double x, y, value, dx, dy;  // PyTorch 1.13
  };
  const expect cases[] = {{0, -1, inf, -inf, -inf},
                          {0, 0, 1, 0, 0},
                          {0, 0.5, 0, inf, 0},
                          {0, 2, 0, 0, 0},
                          {0, 1, 0, 1, 0},
                          {-2, 2, 4, -4, qnan},
                          {-2, 0.5, qnan, qnan, qnan},
                          {-2, 3, -8, 12, qnan},
                          {-0.0, -1, -inf, -inf, inf},
                          {qnan, 0, 1, 0, qnan},
                          {1, qnan, 1, qnan, 0},
                          {-1, inf, 1, inf, qnan},
                          {inf, 0, 1, 0, inf},
                          {2, 0, 1, 0, std::log(2.0)}};
  for (const expect& e : cases) {
    const std::size_t i = at(e.x, e.y);
    INFO("pow(" << e.x << ", " << e.y << ")");
    CHECK(same(r.value[i], e.value));
    CHECK(same(r.grad[0][i], e.dx));
    CHECK(same(r.grad[1][i], e.dy));
  }
}

TEST_CASE("conventions / abs, relu and sqrt at 0, -0 and NaN, on every path") {
  const std::vector<double> x = {
      0,    -0.0, qnan, 1,  -1,  2.5,  -2.5, inf,  -inf, 0,
      -0.0, qnan, 1,    -1, 2.5, -2.5, inf,  -inf, 0};  // lanes and a tail
  const std::vector<double>* in[] = {&x};
  const run ab = every_path<19>([](const auto& v, const auto&) { return abs(v); }, in, 1);
  const run re = every_path<19>([](const auto& v, const auto&) { return relu(v); }, in, 1);
  const run sq = every_path<19>([](const auto& v, const auto&) { return sqrt(v); }, in, 1);
  for (std::size_t i : {std::size_t(0), std::size_t(9), std::size_t(18)}) {  // 0: no kink grad
    CHECK(ab.grad[0][i] == 0.0);
    CHECK(re.grad[0][i] == 0.0);
    CHECK(sq.grad[0][i] == inf);
  }
  CHECK(ab.grad[0][1] == 0.0);  // -0
  CHECK(sq.grad[0][1] == -inf);
  for (std::size_t i : {std::size_t(2), std::size_t(11)}) {  // NaN: PyTorch's sgn(NaN) = 0
    CHECK(std::isnan(ab.value[i]));
    CHECK(ab.grad[0][i] == 0.0);
    CHECK(std::isnan(re.value[i]));
    CHECK(re.grad[0][i] == 1.0);  // threshold_backward: NaN <= 0 is false
  }
  CHECK(ab.grad[0][4] == -1.0);
  CHECK(re.grad[0][3] == 1.0);
  CHECK(re.grad[0][4] == 0.0);
}

TEST_CASE("conventions / maximum and minimum: ties split the gradient, NaN passes it to both") {
  std::vector<double> a, b;
  for (int rep = 0; rep < 4; ++rep) {  // 20 elements
    a.insert(a.end(), {1, 2, 1, qnan, 1});
    b.insert(b.end(), {1, 1, 2, 1, qnan});
  }
  const std::vector<double>* in[] = {&a, &b};
  const run mx = every_path<20>([](const auto& x, const auto& y) { return maximum(x, y); }, in, 2);
  const run mn = every_path<20>([](const auto& x, const auto& y) { return minimum(x, y); }, in, 2);
  for (std::size_t base = 0; base < 20; base += 5) {
    CHECK(mx.grad[0][base] == 0.5);  // tie
    CHECK(mx.grad[1][base] == 0.5);
    CHECK(mn.grad[0][base] == 0.5);
    CHECK(mn.grad[1][base] == 0.5);
    CHECK(mx.grad[0][base + 1] == 1.0);
    CHECK(mx.grad[1][base + 1] == 0.0);
    CHECK(mn.grad[0][base + 1] == 0.0);
    CHECK(mn.grad[1][base + 1] == 1.0);
    for (std::size_t i : {base + 3, base + 4}) {
      CHECK(std::isnan(mx.value[i]));
      CHECK(std::isnan(mn.value[i]));
      CHECK(mx.grad[0][i] == 1.0);
      CHECK(mx.grad[1][i] == 1.0);
      CHECK(mn.grad[0][i] == 1.0);
      CHECK(mn.grad[1][i] == 1.0);
    }
  }
}
