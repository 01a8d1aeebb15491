// benchmarks/w6_adolc.cpp — W6 peers: ADOL-C (taped reverse mode), double, for sum, prod,
// logsumexp and the normal log-density (same data and references as w6.cpp).
//
// Each case tapes once, outside the timed loop, with trace_on(tag, 0, obs, lbs, vbs, tbs) and
// buffers sized to the problem (so the tape stays in memory), then times gradient(tag, n, x, g)
// (a zero-order forward sweep plus a first-order reverse sweep over the tape).
//
// BENCHMARKS.md: run each ADOL-C case in its own process (a large tape slows later small ones),
// e.g. for each case:  w6_adolc --benchmark_filter='^BM_W6sum_adolc/10$'
#include "bench_common.hpp"

#if FUSEGRAD_HAVE_ADOLC
#include <adolc/adolc.h>

#include <algorithm>
#include <numbers>
#include <vector>

namespace {

constexpr double kMu = 0.3, kSigma = 1.7;

std::vector<double> make_x(std::size_t n, double lo, double hi, std::uint64_t seed) {
  std::vector<double> x(n);
  fgbench::fill_uniform(x.data(), n, lo, hi, seed);
  return x;
}

short next_tag() {
  static short t = 0;
  return short(++t % 30000);
}

// Tape buffer elements: generous for <= 8 operations per element.
unsigned buf_size(std::size_t n) {
  return unsigned(32 * n + 4096);
}

// Tapes `f(adouble* in, n_in) -> adouble`, checks value and gradient once, then times gradient().
template <class F>
void run_case(benchmark::State& state, const std::vector<double>& x, F&& f, double ref_value,
              const std::vector<double>& ref_grad, double rtol, double atol) {
  const std::size_t n = x.size();
  const short tag = next_tag();
  const unsigned bs = buf_size(n);
  double value = 0;
  trace_on(tag, 0, bs, bs, bs, bs);
  {
    std::vector<adouble> ax(n);
    for (std::size_t i = 0; i < n; ++i)
      ax[i] <<= x[i];
    adouble y = f(ax.data(), n);
    y >>= value;
  }
  trace_off();
  std::vector<double> g(n);
  {
    std::string why;
    if (gradient(tag, int(n), x.data(), g.data()) < 0)
      return state.SkipWithError("gradient() failed");
    if (!fgbench::check_value(value, ref_value, rtol, atol, "value", why) ||
        !fgbench::close_all(g.data(), ref_grad.data(), n, rtol, atol, "g", why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    int rc = gradient(tag, int(n), x.data(), g.data());
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(g.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n) * 16);
}

void BM_W6sum_adolc(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const auto x = make_x(n, -1, 1, 11);
  long double ref = 0;
  for (double v : x)
    ref += v;
  run_case(
      state, x,
      [](adouble* a, std::size_t m) {
        adouble s = 0.;
        for (std::size_t i = 0; i < m; ++i)
          s += a[i];
        return s;
      },
      double(ref), std::vector<double>(n, 1.), 1e-10, 1e-12 * double(n));
}

void BM_W6prod_adolc(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const auto x = make_x(n, 0.9, 1.1, 12);
  long double p = 1;
  for (double v : x)
    p *= v;
  std::vector<double> g(n);
  for (std::size_t i = 0; i < n; ++i)
    g[i] = double(p / x[i]);
  run_case(
      state, x,
      [](adouble* a, std::size_t m) {
        adouble s = 1.;
        for (std::size_t i = 0; i < m; ++i)
          s *= a[i];
        return s;
      },
      double(p), g, 1e-9, 0);
}

void BM_W6logsumexp_adolc(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const auto x = make_x(n, -3, 3, 13);
  long double m = -INFINITY, s = 0;
  for (double v : x)
    m = std::max<long double>(m, v);
  for (double v : x)
    s += std::exp((long double)v - m);
  std::vector<double> g(n);
  for (std::size_t i = 0; i < n; ++i)
    g[i] = double(std::exp((long double)x[i] - m) / s);
  // The shift m is a passive constant: log sum exp(x - m) + m has the same gradient for any m.
  const double shift = *std::max_element(x.begin(), x.end());
  run_case(
      state, x,
      [shift](adouble* a, std::size_t k) {
        adouble s = 0.;
        for (std::size_t i = 0; i < k; ++i)
          s += exp(a[i] - shift);
        return shift + log(s);
      },
      double(m + std::log(s)), g, 1e-9, 0);
}

// Independents: x[0..n), mu, sigma. log(sigma) taped once, as an ADOL-C user would.
void BM_W6normal_adolc(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  auto x = make_x(n, -3, 3, 14);
  long double sz = 0, sq = 0;
  const long double mu = kMu, sg = kSigma;
  std::vector<double> g(n + 2);
  for (std::size_t i = 0; i < n; ++i) {
    const long double d = x[i] - mu;
    sz += d;
    sq += d * d;
    g[i] = double(-d / (sg * sg));
  }
  const long double nn = n;
  const long double c = 0.5L * std::log(2 * std::numbers::pi_v<long double>);
  const double value = double(-0.5L * sq / (sg * sg) - nn * (std::log(sg) + c));
  g[n] = double(sz / (sg * sg));
  g[n + 1] = double(sq / (sg * sg * sg) - nn / sg);
  x.push_back(kMu);
  x.push_back(kSigma);
  const double cd = double(c);
  run_case(
      state, x,
      [cd](adouble* a, std::size_t k) {
        const std::size_t m = k - 2;
        const adouble& mu_ = a[m];
        const adouble& sigma_ = a[m + 1];
        adouble s = 0.;
        for (std::size_t i = 0; i < m; ++i) {
          adouble z = (a[i] - mu_) / sigma_;
          s += -0.5 * z * z;
        }
        return s - double(m) * (log(sigma_) + cd);
      },
      value, g, 1e-10, 1e-10 * double(n));
}

#define W6_VEC ->Arg(10)->Arg(100)->Arg(10000)->Arg(100000)
BENCHMARK(BM_W6sum_adolc) W6_VEC;
BENCHMARK(BM_W6prod_adolc) W6_VEC;
BENCHMARK(BM_W6logsumexp_adolc) W6_VEC;
BENCHMARK(BM_W6normal_adolc) W6_VEC;

}  // namespace
#endif  // FUSEGRAD_HAVE_ADOLC

BENCHMARK_MAIN();
