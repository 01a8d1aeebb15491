// The static path's passes on several threads (exec/pass.hpp): values and gradients bit-identical
// at 1, 2, 3 and 4 threads (3 and 4 oversubscribe this project's 2 vCPUs on purpose), and equal
// to a double-precision reference, for passes long enough to be cut into chunks: W1's fused value
// and gradients, a one-element operand whose adjoint each chunk sums, row passes (a transposed
// operand), a broadcast operand (whose gradient keeps the pass on one thread), total and per-row
// reductions, assignments, and fg::kernel over a dynamic extent. A *_tsan_test: it runs again
// under ThreadSanitizer.
#include "../testing.hpp"

#include <fusegrad/dynamic.hpp>

#include <cstring>
#include <functional>
#include <vector>

using namespace fg;

namespace {

using vec = tensor<double, shape<dyn>>;
using mat = tensor<double, shape<dyn, dyn>>;

std::vector<double> concat(std::initializer_list<std::pair<const double*, index_t>> parts) {
  std::vector<double> out;
  for (auto [p, n] : parts)
    out.insert(out.end(), p, p + n);
  return out;
}

// run() at 1 thread, then at 2, 3 and 4: the same bits each time. Returns the 1-thread result.
std::vector<double> same_at_every_thread_count(const std::function<std::vector<double>()>& run) {
  const int before = get_num_threads();
  set_num_threads(1);
  const auto one = run();
  REQUIRE(!one.empty());
  for (int threads : {2, 3, 4}) {
    CAPTURE(threads);
    set_num_threads(threads);
    const auto r = run();
    REQUIRE(r.size() == one.size());
    CHECK(std::memcmp(r.data(), one.data(), one.size() * sizeof(double)) == 0);
  }
  set_num_threads(before);
  return one;
}

vec random_vec(index_t n, double lo, double hi) {
  vec v(dims_t<1>{n});
  testing::fill_uniform(v, lo, hi);
  return v;
}

}  // namespace

TEST_CASE("threads / static W1: value and 4 gradients, and a 0-d operand's gradient") {
  const index_t n = 300007;  // 64 chunks and a ragged end
  const vec a = random_vec(n, -1, 1), b = random_vec(n, -1, 1), c = random_vec(n, -3, 3),
            d = random_vec(n, -1, 1);
  tensor<double, shape<>> s;
  s() = 0.75;
  const auto r = same_at_every_thread_count([&] {
    vec ga, gb, gc, gd;
    tensor<double, shape<>> gs;
    const double v = value_and_grad_into(sum(a * b + sin(c) * exp(-d) * s),
                                         std::tie(ga, gb, gc, gd, gs), a, b, c, d, s);
    return concat({{&v, 1}, {&gs(), 1}, {ga.data(), n}, {gc.data(), n}, {gd.data(), n}});
  });
  double value = 0, gsum = 0;
  for (index_t i = 0; i < n; ++i) {
    const double se = std::sin(c[i]) * std::exp(-d[i]);
    value += a[i] * b[i] + se * 0.75;
    gsum += se;
  }
  CHECK(r[0] == doctest::Approx(value).epsilon(1e-12));
  CHECK(r[1] == doctest::Approx(gsum).epsilon(1e-12));
  for (index_t i = 0; i < n; i += 9973) {
    CHECK(r[2 + i] == b[i]);
    CHECK(r[2 + 2 * n + i] ==
          doctest::Approx(-std::sin(c[i]) * std::exp(-d[i]) * 0.75).epsilon(1e-14));
  }
}

TEST_CASE("threads / row passes: a transposed operand, and a broadcast one kept on one thread") {
  const index_t m = 301, k = 257;
  mat x(dims_t<2>{m, k}), y(dims_t<2>{k, m}), bias(dims_t<2>{1, k});
  testing::fill_uniform(x, -1, 1);
  testing::fill_uniform(y, -1, 1);
  testing::fill_uniform(bias, -1, 1);
  const auto r = same_at_every_thread_count([&] {
    mat gx, gy, gb;
    const double v = value_and_grad_into(sum(square(x - transpose(y)) + x * bias),
                                         std::tie(gx, gy, gb), x, y, bias);
    return concat({{&v, 1}, {gx.data(), m * k}, {gy.data(), m * k}, {gb.data(), k}});
  });
  double value = 0;
  std::vector<double> gb(k, 0.0);
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < k; ++j) {
      const double diff = x(i, j) - y(j, i);
      value += diff * diff + x(i, j) * bias(0, j);
      gb[j] += x(i, j);
    }
  CHECK(r[0] == doctest::Approx(value).epsilon(1e-12));
  const double* gx = r.data() + 1;
  const double* gy = gx + m * k;
  for (index_t i = 0; i < m; i += 17)
    for (index_t j = 0; j < k; j += 13) {
      CHECK(gx[i * k + j] == doctest::Approx(2 * (x(i, j) - y(j, i)) + bias(0, j)));
      CHECK(gy[j * m + i] == doctest::Approx(-2 * (x(i, j) - y(j, i))));
    }
  for (index_t j = 0; j < k; ++j)
    CHECK(r[1 + 2 * m * k + j] == doctest::Approx(gb[j]).epsilon(1e-12));
}

TEST_CASE("threads / reductions and assignments") {
  const index_t m = 513, k = 1001;
  mat x(dims_t<2>{m, k});
  testing::fill_uniform(x, -2, 2);
  const vec a = random_vec(m * k, -1, 1);
  same_at_every_thread_count([&] {
    const double total = eval(sum(x * x));                 // total, flat
    const auto rows = eval(logsumexp(x, axes<1>{}));       // each row a slot
    const auto cols = eval(sum(exp(x * 0.1), axes<0>{}));  // rows share slots
    const auto t = eval(transpose(x) * 2.0 + 1.0);         // a row pass
    const vec e = eval(a * a - 3.0);                       // a flat pass
    double lse_ref = 0;
    for (index_t j = 0; j < k; ++j)
      lse_ref += std::exp(x(7, j));
    CHECK(rows[7] == doctest::Approx(std::log(lse_ref)).epsilon(1e-12));
    double col_ref = 0;
    for (index_t i = 0; i < m; ++i)
      col_ref += std::exp(x(i, 11) * 0.1);
    CHECK(cols[11] == doctest::Approx(col_ref).epsilon(1e-12));
    CHECK(t(5, 3) == x(3, 5) * 2.0 + 1.0);
    CHECK(e[m * k - 1] == a[m * k - 1] * a[m * k - 1] - 3.0);
    return concat(
        {{&total, 1}, {rows.data(), m}, {cols.data(), k}, {t.data(), m * k}, {e.data(), m * k}});
  });
}

TEST_CASE("threads / fg::kernel over a dynamic extent: value, backward given a gradient") {
  static const auto terms = fg::kernel("terms", [](auto p, auto q) { return p * sin(q) + q; });
  static const auto loss = fg::kernel("loss", [](auto p, auto q) { return sum(p * exp(-q)); });
  generator g(3);
  const var p0 = var::randn({200003}, g, dtype::float64),
            q0 = var::randn({200003}, g, dtype::float64);
  same_at_every_thread_count([&] {
    var p = p0.detach().requires_grad(true), q = q0.detach().requires_grad(true);
    var y = terms(p, q);
    var l = loss(y, q);
    l.backward();
    std::vector<double> out{l.at(0)};
    for (const var& v : {y, p.grad(), q.grad()})
      for (index_t i = 0; i < v.size(); ++i)
        out.push_back(v.at(sindex_t(i)));
    return out;
  });
}
