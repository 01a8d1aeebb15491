// benchmarks/w6.cpp — W6: classic reverse-mode AD problems, double, value + gradient.
//
//   BM_W6sum_*        sum(x)
//   BM_W6prod_*       prod(x), x in [0.9, 1.1]            (handloop: g_i = prod / x_i)
//   BM_W6logsumexp_*  logsumexp(x)                         (handloop: max pass, exp pass, scale)
//   BM_W6normal_*     sum(-0.5((x-mu)/sigma)^2 - log(sigma) - 0.5 log(2 pi)), d/dx, d/dmu, d/dsigma
//   BM_W6matmul_*     sum(A B), d/dA, d/dB, square n x n  (handloop: colsum(A) . rowsum(B))
//   BM_W6matmulC_handloop   forms C = A B (i-k-j loop, compiler-vectorised), value = sum(C),
//                           gradients as in the handloop: context for what forming C costs
//   BM_W6lsq_*        sum((X w - y)^2), X [n x 16], d/dw
//
// fusegrad: fg::value_and_grad_into on dyn tensors, into gradient tensors declared once outside
// the timed loop (as the hand loops write into preallocated arrays). BM_W6sum_fusegrad_alloc:
// fg::value_and_grad, which returns new gradient tensors every call (context for that API's
// cost). handloop: the best hand-written adjoint, xsimd where it helps.
// ADOL-C variants are in w6_adolc.cpp (one process per case).
#include "bench_common.hpp"

#include <fusegrad/fusegrad.hpp>
#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <numbers>
#include <vector>

namespace {

using vec = fg::tensor<double, fg::shape<fg::dyn>>;
using mat = fg::tensor<double, fg::shape<fg::dyn, fg::dyn>>;
using scal = fg::tensor<double, fg::shape<>>;
using B = xsimd::batch<double>;
constexpr std::size_t W = B::size;

constexpr double kMu = 0.3, kSigma = 1.7;
const double kHalfLog2Pi = 0.5 * std::log(2.0 * std::numbers::pi);

vec make_vec(std::size_t n, double lo, double hi, std::uint64_t seed) {
  vec x(fg::dims_t<1>{n});
  fgbench::fill_uniform(x.data(), n, lo, hi, seed);
  return x;
}
mat make_mat(std::size_t r, std::size_t c, double lo, double hi, std::uint64_t seed) {
  mat m(fg::dims_t<2>{r, c});
  fgbench::fill_uniform(m.data(), r * c, lo, hi, seed);
  return m;
}

// Shared driver: `run(g...)` returns the value and writes gradients; checked once, then timed.
#define W6_CHECK(cond)                          \
  do {                                          \
    std::string why_;                           \
    if (!(cond))                                \
      return state.SkipWithError(why_.c_str()); \
  } while (0)

template <class State, class Fn> void timed(State& state, Fn&& fn) {
  for (auto _ : state) {
    auto v = fn();
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
}

// ---------------------------------------------------------------------------------------------
// Hand-written adjoints.

// Four independent accumulators: a reduction is latency-bound otherwise.
template <class Map> double xsum(std::size_t n, const double* x, Map map) {
  B a0(0.), a1(0.), a2(0.), a3(0.);
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    a0 += map(B::load_unaligned(x + i));
    a1 += map(B::load_unaligned(x + i + W));
    a2 += map(B::load_unaligned(x + i + 2 * W));
    a3 += map(B::load_unaligned(x + i + 3 * W));
  }
  for (; i + W <= n; i += W)
    a0 += map(B::load_unaligned(x + i));
  double s = xsimd::hadd((a0 + a1) + (a2 + a3));
  for (; i < n; ++i)
    s += map(x[i]);
  return s;
}

double hand_sum(std::size_t n, const double* x, double* g) {
  // one pass: read x, write g = 1
  B a0(0.), a1(0.);
  const B one(1.);
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    a0 += B::load_unaligned(x + i);
    a1 += B::load_unaligned(x + i + W);
    one.store_unaligned(g + i);
    one.store_unaligned(g + i + W);
  }
  double s = xsimd::hadd(a0 + a1);
  for (; i < n; ++i) {
    s += x[i];
    g[i] = 1.;
  }
  return s;
}

double hand_prod(std::size_t n, const double* x, double* g) {
  B p0(1.), p1(1.), p2(1.), p3(1.);
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    p0 *= B::load_unaligned(x + i);
    p1 *= B::load_unaligned(x + i + W);
    p2 *= B::load_unaligned(x + i + 2 * W);
    p3 *= B::load_unaligned(x + i + 3 * W);
  }
  for (; i + W <= n; i += W)
    p0 *= B::load_unaligned(x + i);
  alignas(32) double t[W];
  ((p0 * p1) * (p2 * p3)).store_aligned(t);
  double p = 1.;
  for (std::size_t k = 0; k < W; ++k)
    p *= t[k];
  for (; i < n; ++i)
    p *= x[i];
  const B vp(p);
  i = 0;
  for (; i + W <= n; i += W)
    (vp / B::load_unaligned(x + i)).store_unaligned(g + i);
  for (; i < n; ++i)
    g[i] = p / x[i];
  return p;
}

double hand_logsumexp(std::size_t n, const double* x, double* g) {
  B m0(-INFINITY), m1(-INFINITY);
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    m0 = xsimd::max(m0, B::load_unaligned(x + i));
    m1 = xsimd::max(m1, B::load_unaligned(x + i + W));
  }
  alignas(32) double t[W];
  xsimd::max(m0, m1).store_aligned(t);
  double m = -INFINITY;
  for (std::size_t k = 0; k < W; ++k)
    m = std::max(m, t[k]);
  for (; i < n; ++i)
    m = std::max(m, x[i]);
  // e_i = exp(x_i - m) into g, summed
  const B vm(m);
  B s0(0.), s1(0.);
  i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const B e0 = xsimd::exp(B::load_unaligned(x + i) - vm);
    const B e1 = xsimd::exp(B::load_unaligned(x + i + W) - vm);
    e0.store_unaligned(g + i);
    e1.store_unaligned(g + i + W);
    s0 += e0;
    s1 += e1;
  }
  double s = xsimd::hadd(s0 + s1);
  for (; i < n; ++i) {
    g[i] = std::exp(x[i] - m);
    s += g[i];
  }
  const double inv = 1. / s;
  const B vinv(inv);
  i = 0;
  for (; i + W <= n; i += W)
    (B::load_unaligned(g + i) * vinv).store_unaligned(g + i);
  for (; i < n; ++i)
    g[i] *= inv;
  return m + std::log(s);
}

struct normal_out {
  double value, dmu, dsigma;
};
normal_out hand_normal(std::size_t n, const double* x, double mu, double sigma, double* g) {
  const double is = 1. / sigma;
  const B vmu(mu), vis(is), vnis2(-is * is);
  B z0(0.), z1(0.), q0(0.), q1(0.);
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const B d0 = B::load_unaligned(x + i) - vmu, d1 = B::load_unaligned(x + i + W) - vmu;
    z0 += d0;
    z1 += d1;
    q0 = xsimd::fma(d0, d0, q0);
    q1 = xsimd::fma(d1, d1, q1);
    (d0 * vnis2).store_unaligned(g + i);
    (d1 * vnis2).store_unaligned(g + i + W);
  }
  double sz = xsimd::hadd(z0 + z1), sq = xsimd::hadd(q0 + q1);
  for (; i < n; ++i) {
    const double d = x[i] - mu;
    sz += d;
    sq += d * d;
    g[i] = -d * is * is;
  }
  const double nn = double(n);
  normal_out o;
  o.value = -0.5 * sq * is * is - nn * (std::log(sigma) + kHalfLog2Pi);
  o.dmu = sz * is * is;
  o.dsigma = sq * is * is * is - nn * is;
  return o;
}

// sum(A B) = colsum(A) . rowsum(B); dA[i,k] = rowsum(B)[k]; dB[k,j] = colsum(A)[k].
double hand_matmul_grads(std::size_t n, const double* a, const double* b, double* ga, double* gb,
                         double* cs, double* rs) {
  std::fill(cs, cs + n, 0.);
  for (std::size_t i = 0; i < n; ++i)  // column sums of A: rows added, vectorised over k
    for (std::size_t k = 0; k < n; ++k)
      cs[k] += a[i * n + k];
  for (std::size_t k = 0; k < n; ++k)
    rs[k] = xsum(n, b + k * n, [](auto v) { return v; });
  double v = 0.;
  for (std::size_t k = 0; k < n; ++k)
    v += cs[k] * rs[k];
  for (std::size_t i = 0; i < n; ++i)
    std::copy(rs, rs + n, ga + i * n);
  for (std::size_t k = 0; k < n; ++k)
    std::fill(gb + k * n, gb + (k + 1) * n, cs[k]);
  return v;
}

// C = A B, i-k-j (the compiler vectorises the j loop), then sum(C).
double hand_matmul_c(std::size_t n, const double* a, const double* b, double* c) {
  for (std::size_t i = 0; i < n; ++i) {
    double* ci = c + i * n;
    std::fill(ci, ci + n, 0.);
    for (std::size_t k = 0; k < n; ++k) {
      const double aik = a[i * n + k];
      const double* bk = b + k * n;
      for (std::size_t j = 0; j < n; ++j)
        ci[j] += aik * bk[j];
    }
  }
  return xsum(n * n, c, [](auto v) { return v; });
}

// loss = sum((X w - y)^2), gw = 2 X^T (X w - y); X row-major [m x 16].
constexpr std::size_t kLsqK = 16;
double hand_lsq(std::size_t m, const double* X, const double* w, const double* y, double* gw) {
  constexpr std::size_t NB = kLsqK / W;
  B wv[NB], gv[NB];
  for (std::size_t q = 0; q < NB; ++q) {
    wv[q] = B::load_unaligned(w + q * W);
    gv[q] = B(0.);
  }
  double loss = 0.;
  for (std::size_t i = 0; i < m; ++i) {
    const double* xi = X + i * kLsqK;
    B xv[NB];
    B dot(0.);
    for (std::size_t q = 0; q < NB; ++q) {
      xv[q] = B::load_unaligned(xi + q * W);
      dot = xsimd::fma(xv[q], wv[q], dot);
    }
    const double r = xsimd::hadd(dot) - y[i];
    loss += r * r;
    const B r2(2. * r);
    for (std::size_t q = 0; q < NB; ++q)
      gv[q] = xsimd::fma(r2, xv[q], gv[q]);
  }
  for (std::size_t q = 0; q < NB; ++q)
    gv[q].store_unaligned(gw + q * W);
  return loss;
}

// ---------------------------------------------------------------------------------------------
// Reference values, in long double where summation matters.

constexpr double kRtol = 1e-10, kAtol = 1e-12;

// ---------------------------------------------------------------------------------------------
// sum

void BM_W6sum_fusegrad(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const vec x = make_vec(n, -1, 1, 11);
  long double ref = 0;
  for (std::size_t i = 0; i < n; ++i)
    ref += x[i];
  const std::vector<double> one(n, 1.);
  vec g;
  auto run = [&] { return fg::value_and_grad_into(fg::sum(x), std::tie(g), x); };
  {
    const double v = run();
    W6_CHECK(fgbench::check_value(v, double(ref), kRtol, 1e-12 * double(n), "value", why_) &&
             fgbench::close_all(g.data(), one.data(), n, 0, 0, "g", why_));
  }
  timed(state, run);
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n) * 16);
}
// Context: fg::value_and_grad, a new gradient tensor every call.
void BM_W6sum_fusegrad_alloc(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const vec x = make_vec(n, -1, 1, 11);
  long double ref = 0;
  for (std::size_t i = 0; i < n; ++i)
    ref += x[i];
  const std::vector<double> one(n, 1.);
  {
    auto [v, g] = fg::value_and_grad(fg::sum(x), x);
    W6_CHECK(fgbench::check_value(v, double(ref), kRtol, 1e-12 * double(n), "value", why_) &&
             fgbench::close_all(g.data(), one.data(), n, 0, 0, "g", why_));
  }
  timed(state, [&] {
    auto [v, g] = fg::value_and_grad(fg::sum(x), x);
    benchmark::DoNotOptimize(g.data());
    return v;
  });
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n) * 16);
}
void BM_W6sum_handloop(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const vec x = make_vec(n, -1, 1, 11);
  vec g(fg::dims_t<1>{n});
  long double ref = 0;
  for (std::size_t i = 0; i < n; ++i)
    ref += x[i];
  const std::vector<double> one(n, 1.);
  {
    const double v = hand_sum(n, x.data(), g.data());
    W6_CHECK(fgbench::check_value(v, double(ref), kRtol, 1e-12 * double(n), "value", why_) &&
             fgbench::close_all(g.data(), one.data(), n, 0, 0, "g", why_));
  }
  timed(state, [&] { return hand_sum(n, x.data(), g.data()); });
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n) * 16);
}

// ---------------------------------------------------------------------------------------------
// prod

struct prod_ref {
  double value;
  std::vector<double> g;
  explicit prod_ref(const vec& x) : g(x.size()) {
    long double p = 1;
    for (std::size_t i = 0; i < x.size(); ++i)
      p *= x[i];
    value = double(p);
    for (std::size_t i = 0; i < x.size(); ++i)
      g[i] = double(p / x[i]);
  }
};
constexpr double kProdRtol = 1e-9;  // 1e5 rounded products

void BM_W6prod_fusegrad(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const vec x = make_vec(n, 0.9, 1.1, 12);
  const prod_ref R(x);
  vec g;
  auto run = [&] { return fg::value_and_grad_into(fg::prod(x), std::tie(g), x); };
  {
    const double v = run();
    W6_CHECK(fgbench::check_value(v, R.value, kProdRtol, 0, "value", why_) &&
             fgbench::close_all(g.data(), R.g.data(), n, kProdRtol, 0, "g", why_));
  }
  timed(state, run);
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n) * 16);
}
void BM_W6prod_handloop(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const vec x = make_vec(n, 0.9, 1.1, 12);
  const prod_ref R(x);
  vec g(fg::dims_t<1>{n});
  {
    const double v = hand_prod(n, x.data(), g.data());
    W6_CHECK(fgbench::check_value(v, R.value, kProdRtol, 0, "value", why_) &&
             fgbench::close_all(g.data(), R.g.data(), n, kProdRtol, 0, "g", why_));
  }
  timed(state, [&] { return hand_prod(n, x.data(), g.data()); });
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n) * 16);
}

// ---------------------------------------------------------------------------------------------
// logsumexp

struct lse_ref {
  double value;
  std::vector<double> g;
  explicit lse_ref(const vec& x) : g(x.size()) {
    long double m = -INFINITY, s = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      m = std::max<long double>(m, x[i]);
    for (std::size_t i = 0; i < x.size(); ++i)
      s += std::exp((long double)x[i] - m);
    value = double(m + std::log(s));
    for (std::size_t i = 0; i < x.size(); ++i)
      g[i] = double(std::exp((long double)x[i] - m) / s);
  }
};

void BM_W6logsumexp_fusegrad(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const vec x = make_vec(n, -3, 3, 13);
  const lse_ref R(x);
  vec g;
  auto run = [&] { return fg::value_and_grad_into(fg::logsumexp(x), std::tie(g), x); };
  {
    const double v = run();
    W6_CHECK(fgbench::check_value(v, R.value, kRtol, 0, "value", why_) &&
             fgbench::close_all(g.data(), R.g.data(), n, 1e-9, 0, "g", why_));
  }
  timed(state, run);
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n) * 16);
}
void BM_W6logsumexp_handloop(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const vec x = make_vec(n, -3, 3, 13);
  const lse_ref R(x);
  vec g(fg::dims_t<1>{n});
  {
    const double v = hand_logsumexp(n, x.data(), g.data());
    W6_CHECK(fgbench::check_value(v, R.value, kRtol, 0, "value", why_) &&
             fgbench::close_all(g.data(), R.g.data(), n, 1e-9, 0, "g", why_));
  }
  timed(state, [&] { return hand_logsumexp(n, x.data(), g.data()); });
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n) * 16);
}

// ---------------------------------------------------------------------------------------------
// normal log-density

struct normal_ref {
  double value, dmu, dsigma;
  std::vector<double> g;
  explicit normal_ref(const vec& x) : g(x.size()) {
    long double sz = 0, sq = 0;
    const long double mu = kMu, s = kSigma;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const long double d = x[i] - mu;
      sz += d;
      sq += d * d;
      g[i] = double(-d / (s * s));
    }
    const long double n = x.size();
    value = double(-0.5L * sq / (s * s) -
                   n * (std::log(s) + 0.5L * std::log(2 * std::numbers::pi_v<long double>)));
    dmu = double(sz / (s * s));
    dsigma = double(sq / (s * s * s) - n / s);
  }
  bool check(double v, double gm, double gs, const double* gx, double rtol,
             std::string& why) const {
    const double scale = double(g.size());
    return fgbench::check_value(v, value, rtol, rtol * scale, "value", why) &&
           fgbench::check_value(gm, dmu, rtol, rtol * scale, "dmu", why) &&
           fgbench::check_value(gs, dsigma, rtol, rtol * scale, "dsigma", why) &&
           fgbench::close_all(gx, g.data(), g.size(), rtol, 1e-15, "dx", why);
  }
};

void BM_W6normal_fusegrad(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const vec x = make_vec(n, -3, 3, 14);
  const scal mu{kMu}, sigma{kSigma};
  const normal_ref R(x);
  vec gx;
  scal gmu, gsigma;
  auto f = [&] {
    return fg::value_and_grad_into(
        fg::sum(-0.5 * fg::square((x - mu) / sigma) - fg::log(sigma) - kHalfLog2Pi),
        std::tie(gx, gmu, gsigma), x, mu, sigma);
  };
  {
    const double v = f();
    W6_CHECK(R.check(v, gmu, gsigma, gx.data(), 1e-10, why_));
  }
  timed(state, [&] {
    const double v = f();
    benchmark::DoNotOptimize(gmu.data());
    benchmark::DoNotOptimize(gsigma.data());
    return v;
  });
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n) * 16);
}
void BM_W6normal_handloop(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const vec x = make_vec(n, -3, 3, 14);
  const normal_ref R(x);
  vec g(fg::dims_t<1>{n});
  {
    const auto o = hand_normal(n, x.data(), kMu, kSigma, g.data());
    W6_CHECK(R.check(o.value, o.dmu, o.dsigma, g.data(), 1e-10, why_));
  }
  timed(state, [&] {
    const auto o = hand_normal(n, x.data(), kMu, kSigma, g.data());
    return o.value + o.dmu + o.dsigma;
  });
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n) * 16);
}

// ---------------------------------------------------------------------------------------------
// sum(A B)

struct matmul_case {
  std::size_t n;
  mat a, b;
  double value;
  std::vector<double> ga, gb;
  explicit matmul_case(std::size_t n_)
      : n(n_),
        a(make_mat(n_, n_, -1, 1, 15)),
        b(make_mat(n_, n_, -1, 1, 16)),
        ga(n_ * n_),
        gb(n_ * n_) {
    std::vector<long double> cs(n, 0), rs(n, 0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t k = 0; k < n; ++k)
        cs[k] += a(i, k), rs[i] += b(i, k);
    long double v = 0;
    for (std::size_t k = 0; k < n; ++k)
      v += cs[k] * rs[k];
    value = double(v);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t k = 0; k < n; ++k)
        ga[i * n + k] = double(rs[k]), gb[k * n + i] = double(cs[k]);
  }
  bool check(double v, const double* pa, const double* pb, std::string& why) const {
    const double tol = 1e-12 * double(n * n);
    return fgbench::check_value(v, value, 1e-10, tol, "value", why) &&
           fgbench::close_all(pa, ga.data(), n * n, 1e-10, tol, "dA", why) &&
           fgbench::close_all(pb, gb.data(), n * n, 1e-10, tol, "dB", why);
  }
};

void BM_W6matmul_fusegrad(benchmark::State& state) {
  const matmul_case M(std::size_t(state.range(0)));
  const mat &A = M.a, &Bm = M.b;
  mat ga, gb;
  auto run = [&] {
    return fg::value_and_grad_into(fg::sum(fg::matmul(A, Bm)), std::tie(ga, gb), A, Bm);
  };
  {
    const double v = run();  // first: it sizes ga and gb
    W6_CHECK(M.check(v, ga.data(), gb.data(), why_));
  }
  timed(state, run);
}
void BM_W6matmul_handloop(benchmark::State& state) {
  const matmul_case M(std::size_t(state.range(0)));
  const std::size_t n = M.n;
  std::vector<double> ga(n * n), gb(n * n), cs(n), rs(n);
  auto run = [&] {
    return hand_matmul_grads(n, M.a.data(), M.b.data(), ga.data(), gb.data(), cs.data(), rs.data());
  };
  W6_CHECK(M.check(run(), ga.data(), gb.data(), why_));
  timed(state, run);
}
void BM_W6matmulC_handloop(benchmark::State& state) {
  const matmul_case M(std::size_t(state.range(0)));
  const std::size_t n = M.n;
  std::vector<double> ga(n * n), gb(n * n), cs(n), rs(n), c(n * n);
  auto run = [&] {
    const double v = hand_matmul_c(n, M.a.data(), M.b.data(), c.data());
    hand_matmul_grads(n, M.a.data(), M.b.data(), ga.data(), gb.data(), cs.data(), rs.data());
    return v;
  };
  W6_CHECK(M.check(run(), ga.data(), gb.data(), why_));
  timed(state, run);
}

// ---------------------------------------------------------------------------------------------
// least squares

struct lsq_case {
  std::size_t m;
  mat X, w, y;
  double value;
  std::vector<double> g;
  explicit lsq_case(std::size_t m_)
      : m(m_),
        X(make_mat(m_, kLsqK, -1, 1, 17)),
        w(make_mat(kLsqK, 1, -1, 1, 18)),
        y(make_mat(m_, 1, -1, 1, 19)),
        g(kLsqK) {
    long double loss = 0;
    std::vector<long double> gl(kLsqK, 0);
    for (std::size_t i = 0; i < m; ++i) {
      long double r = -(long double)y(i, 0);
      for (std::size_t k = 0; k < kLsqK; ++k)
        r += (long double)X(i, k) * w(k, 0);
      loss += r * r;
      for (std::size_t k = 0; k < kLsqK; ++k)
        gl[k] += 2 * r * X(i, k);
    }
    value = double(loss);
    for (std::size_t k = 0; k < kLsqK; ++k)
      g[k] = double(gl[k]);
  }
  bool check(double v, const double* gw, std::string& why) const {
    const double tol = 1e-12 * double(m);
    return fgbench::check_value(v, value, 1e-10, tol, "value", why) &&
           fgbench::close_all(gw, g.data(), kLsqK, 1e-10, tol, "dw", why);
  }
};

void BM_W6lsq_fusegrad(benchmark::State& state) {
  const lsq_case L(std::size_t(state.range(0)));
  const mat &X = L.X, &w = L.w, &y = L.y;
  mat gw;
  auto run = [&] {
    return fg::value_and_grad_into(fg::sum(fg::square(fg::matmul(X, w) - y)), std::tie(gw), w);
  };
  {
    const double v = run();  // first: it sizes gw
    W6_CHECK(L.check(v, gw.data(), why_));
  }
  timed(state, run);
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(L.m) * (kLsqK + 1) * 8);
}
void BM_W6lsq_handloop(benchmark::State& state) {
  const lsq_case L(std::size_t(state.range(0)));
  std::vector<double> gw(kLsqK);
  auto run = [&] { return hand_lsq(L.m, L.X.data(), L.w.data(), L.y.data(), gw.data()); };
  W6_CHECK(L.check(run(), gw.data(), why_));
  timed(state, run);
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(L.m) * (kLsqK + 1) * 8);
}

#define W6_VEC ->Arg(10)->Arg(100)->Arg(10000)->Arg(100000)
#define W6_MAT ->Arg(2)->Arg(8)->Arg(32)->Arg(128)->Arg(256)
BENCHMARK(BM_W6sum_fusegrad) W6_VEC;
BENCHMARK(BM_W6sum_fusegrad_alloc) W6_VEC;
BENCHMARK(BM_W6sum_handloop) W6_VEC;
BENCHMARK(BM_W6prod_fusegrad) W6_VEC;
BENCHMARK(BM_W6prod_handloop) W6_VEC;
BENCHMARK(BM_W6logsumexp_fusegrad) W6_VEC;
BENCHMARK(BM_W6logsumexp_handloop) W6_VEC;
BENCHMARK(BM_W6normal_fusegrad) W6_VEC;
BENCHMARK(BM_W6normal_handloop) W6_VEC;
BENCHMARK(BM_W6matmul_fusegrad) W6_MAT;
BENCHMARK(BM_W6matmul_handloop) W6_MAT;
BENCHMARK(BM_W6matmulC_handloop) W6_MAT;
BENCHMARK(BM_W6lsq_fusegrad) W6_VEC;
BENCHMARK(BM_W6lsq_handloop) W6_VEC;

}  // namespace

BENCHMARK_MAIN();
