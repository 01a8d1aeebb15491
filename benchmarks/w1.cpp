// benchmarks/w1.cpp — W1: y = sum(a*b + sin(c)*exp(-d)) and its gradient w.r.t. a, b, c, d (float)
// SPDX-License-Identifier: MIT
//
//   BM_W1_fusegrad          value + 4 gradients: fg::value_and_grad_into on dyn tensors, into
//                           gradient tensors kept across calls (as a training loop keeps them,
//                           and as the hand loop writes into preallocated arrays)
//   BM_W1_fusegrad_alloc    the same through fg::value_and_grad, which returns 4 new gradient
//                           tensors every call: the allocation is part of that API's cost
//   BM_W1_handloop          value + 4 gradients: one xsimd pass, 4 reads + 4 writes per element
//                           (xsimd::sincos: one range reduction for sin and cos)
//   BM_W1_handloop_sin_cos  diagnostic: the same loop with xsimd::sin and xsimd::cos called
//                           separately (two range reductions)
//   BM_W1fwd_fusegrad       forward only: fg::eval(fg::sum(...))
//   BM_W1fwd_handloop       forward only: one xsimd pass
//   BM_W1_fusegrad_dyn      the dynamic path: fg::var inputs, 6 recorded ops, backward() into
//                           .grad() (zero_grad each step, as a training loop does)
//   BM_W1_fusegrad_traced   the dynamic path's function through fg::function (fg::trace): its
//                           planned graph run each step
//   BM_W1_fusegrad_dyn_kernel  the whole loss, sum included, as one fg::kernel op: value and
//                           gradients from one fused pass, as on the static path
//   BM_W1_fusegrad_dyn_kernel_map  the elementwise terms as one fg::kernel op, then fg::sum
//   BM_W1_libtorch          LibTorch eager (1 thread): leaves with requires_grad, the same ops,
//                           backward(), grads zeroed each step
//   BM_W1_eigen             FORWARD ONLY (Eigen has no AD): ArrayXf expression, .sum()
//                           -> compare it with BM_W1fwd_*, not with BM_W1_*
//
// Arguments: n, then threads t (fg::set_num_threads(t), torch::set_num_threads(t)). The hand
// loops at t > 1 cut [0, n) into t equal parts run on fusegrad's pool (fg::parallel_reduce, one
// part per thread, as OpenMP's static schedule would): the best a hand-written t-thread loop
// does, so the ratio to it measures what the fused pass costs beyond its arithmetic. Eigen runs
// on one thread.
#include "bench_common.hpp"

#include <fusegrad/dynamic.hpp>
#include <fusegrad/fusegrad.hpp>
#include <xsimd/xsimd.hpp>

#include <map>
#include <memory>
#include <vector>

#if FUSEGRAD_HAVE_EIGEN
#include <Eigen/Core>
#endif
#if FUSEGRAD_HAVE_LIBTORCH
#include <torch/torch.h>
#endif

namespace {

using vec = fg::tensor<float, fg::shape<fg::dyn>>;

struct w1_data {
  std::size_t n;
  vec a, b, c, d;
  double value = 0, abs_sum = 0;  // reference (double), and sum of |terms| for the tolerance
  std::vector<double> gc, gd;     // reference gradients (ga = b, gb = a exactly)
  explicit w1_data(std::size_t n_)
      : n(n_),
        a(fg::dims_t<1>{n_}),
        b(fg::dims_t<1>{n_}),
        c(fg::dims_t<1>{n_}),
        d(fg::dims_t<1>{n_}),
        gc(n_),
        gd(n_) {
    fgbench::fill_uniform(a.data(), n, -1.0, 1.0, 1);
    fgbench::fill_uniform(b.data(), n, -1.0, 1.0, 2);
    fgbench::fill_uniform(c.data(), n, -3.0, 3.0, 3);
    fgbench::fill_uniform(d.data(), n, -1.0, 1.0, 4);
    for (std::size_t i = 0; i < n; ++i) {
      const double ai = a[i], bi = b[i], ci = c[i], di = d[i];
      const double e = std::exp(-di), s = std::sin(ci);
      const double t = ai * bi + s * e;
      value += t;
      abs_sum += std::fabs(ai * bi) + std::fabs(s * e);
      gc[i] = std::cos(ci) * e;
      gd[i] = -s * e;
    }
  }
};

w1_data& data(std::size_t n) {
  static std::map<std::size_t, std::unique_ptr<w1_data>> cache;
  auto& p = cache[n];
  if (!p)
    p = std::make_unique<w1_data>(n);
  return *p;
}

// Summation of 1e7 floats: allow 1e-5 of the sum of magnitudes; gradients are per element.
constexpr double kValueTol = 1e-5, kGradRtol = 1e-5, kGradAtol = 1e-6;

bool check_grads(const w1_data& D, const float* ga, const float* gb, const float* gc,
                 const float* gd, std::string& why) {
  return fgbench::close_all(ga, D.b.data(), D.n, 0, 0, "ga", why) &&
         fgbench::close_all(gb, D.a.data(), D.n, 0, 0, "gb", why) &&
         fgbench::close_all(gc, D.gc.data(), D.n, kGradRtol, kGradAtol, "gc", why) &&
         fgbench::close_all(gd, D.gd.data(), D.n, kGradRtol, kGradAtol, "gd", why);
}
bool check_value(const w1_data& D, double v, std::string& why) {
  return fgbench::check_value(v, D.value, 0, kValueTol * D.abs_sum, "value", why);
}

// ---------------------------------------------------------------------------------------------
// Hand loops: xsimd 8.1, one pass.

template <bool Grad, bool SinCos = true>
float w1_hand(std::size_t n, const float* a, const float* b, const float* c, const float* d,
              float* ga, float* gb, float* gc, float* gd) {
  using B = xsimd::batch<float>;
  constexpr std::size_t W = B::size;
  B acc(0.f);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B va = B::load_unaligned(a + i), vb = B::load_unaligned(b + i);
    const B vc = B::load_unaligned(c + i), vd = B::load_unaligned(d + i);
    const B e = xsimd::exp(-vd);
    if constexpr (Grad) {
      B sn, cs;
      if constexpr (SinCos) {
        const auto sc = xsimd::sincos(vc);
        sn = sc.first, cs = sc.second;
      } else {  // diagnostic: two range reductions, as fusegrad's sin_op forward + derivative do
        sn = xsimd::sin(vc), cs = xsimd::cos(vc);
      }
      const B se = sn * e;
      acc = xsimd::fma(va, vb, acc + se);
      vb.store_unaligned(ga + i);
      va.store_unaligned(gb + i);
      (cs * e).store_unaligned(gc + i);
      (-se).store_unaligned(gd + i);
    } else {
      acc = xsimd::fma(va, vb, xsimd::fma(xsimd::sin(vc), e, acc));
    }
  }
  float tail = 0.f;
  for (; i < n; ++i) {
    const float e = std::exp(-d[i]);
    const float s = std::sin(c[i]);
    tail += a[i] * b[i] + s * e;
    if constexpr (Grad) {
      ga[i] = b[i];
      gb[i] = a[i];
      gc[i] = std::cos(c[i]) * e;
      gd[i] = -s * e;
    }
  }
  return xsimd::hadd(acc) + tail;
}

void BM_W1_fusegrad(benchmark::State& state) {
  fg::set_num_threads(int(state.range(1)));
  auto& D = data(std::size_t(state.range(0)));
  const vec &a = D.a, &b = D.b, &c = D.c, &d = D.d;
  vec ga, gb, gc, gd;  // kept across steps, as a training loop keeps its gradients
  auto run = [&] {
    return fg::value_and_grad_into(fg::sum(a * b + fg::sin(c) * fg::exp(-d)),
                                   std::tie(ga, gb, gc, gd), a, b, c, d);
  };
  {
    const float v = run();
    std::string why;
    if (!check_value(D, v, why) || !check_grads(D, ga.data(), gb.data(), gc.data(), gd.data(), why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    float v = run();
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(D.n) * 8 * 4);
}

void BM_W1_fusegrad_alloc(benchmark::State& state) {
  fg::set_num_threads(int(state.range(1)));
  auto& D = data(std::size_t(state.range(0)));
  const vec &a = D.a, &b = D.b, &c = D.c, &d = D.d;
  {
    auto [v, ga, gb, gc, gd] =
        fg::value_and_grad(fg::sum(a * b + fg::sin(c) * fg::exp(-d)), a, b, c, d);
    std::string why;
    if (!check_value(D, v, why) || !check_grads(D, ga.data(), gb.data(), gc.data(), gd.data(), why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    auto [v, ga, gb, gc, gd] =
        fg::value_and_grad(fg::sum(a * b + fg::sin(c) * fg::exp(-d)), a, b, c, d);
    benchmark::DoNotOptimize(v);
    benchmark::DoNotOptimize(ga.data());
    benchmark::DoNotOptimize(gb.data());
    benchmark::DoNotOptimize(gc.data());
    benchmark::DoNotOptimize(gd.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(D.n) * 8 * 4);
}

// The hand loop over [0, n) on `threads` threads: equal parts, partial sums added in order.
template <class Loop> float hand_parallel(std::size_t n, int threads, Loop loop) {
  if (threads == 1)
    return loop(std::size_t(0), n);
  const std::size_t part = (n + std::size_t(threads) - 1) / std::size_t(threads);
  return fg::parallel_reduce(std::size_t(0), n, part, 0.f, loop,
                             [](float x, float y) { return x + y; });
}

template <bool SinCos> void BM_W1_hand(benchmark::State& state) {
  fg::set_num_threads(int(state.range(1)));
  auto& D = data(std::size_t(state.range(0)));
  vec ga(fg::dims_t<1>{D.n}), gb(fg::dims_t<1>{D.n}), gc(fg::dims_t<1>{D.n}),
      gd(fg::dims_t<1>{D.n});
  auto run = [&] {
    return hand_parallel(D.n, int(state.range(1)), [&](std::size_t lo, std::size_t hi) {
      return w1_hand<true, SinCos>(hi - lo, D.a.data() + lo, D.b.data() + lo, D.c.data() + lo,
                                   D.d.data() + lo, ga.data() + lo, gb.data() + lo, gc.data() + lo,
                                   gd.data() + lo);
    });
  };
  {
    const float v = run();
    std::string why;
    if (!check_value(D, v, why) || !check_grads(D, ga.data(), gb.data(), gc.data(), gd.data(), why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    float v = run();
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(D.n) * 8 * 4);
}

void BM_W1_handloop(benchmark::State& state) {
  BM_W1_hand<true>(state);
}
void BM_W1_handloop_sin_cos(benchmark::State& state) {
  BM_W1_hand<false>(state);
}

void BM_W1fwd_fusegrad(benchmark::State& state) {
  fg::set_num_threads(int(state.range(1)));
  auto& D = data(std::size_t(state.range(0)));
  const vec &a = D.a, &b = D.b, &c = D.c, &d = D.d;
  {
    const float v = fg::eval(fg::sum(a * b + fg::sin(c) * fg::exp(-d)));
    std::string why;
    if (!check_value(D, v, why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    float v = fg::eval(fg::sum(a * b + fg::sin(c) * fg::exp(-d)));
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(D.n) * 4 * 4);
}

void BM_W1fwd_handloop(benchmark::State& state) {
  fg::set_num_threads(int(state.range(1)));
  auto& D = data(std::size_t(state.range(0)));
  auto run = [&] {
    return hand_parallel(D.n, int(state.range(1)), [&](std::size_t lo, std::size_t hi) {
      return w1_hand<false>(hi - lo, D.a.data() + lo, D.b.data() + lo, D.c.data() + lo,
                            D.d.data() + lo, nullptr, nullptr, nullptr, nullptr);
    });
  };
  {
    std::string why;
    if (!check_value(D, run(), why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    float v = run();
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(D.n) * 4 * 4);
}

#define W1_SIZES                                             \
  ->ArgsProduct({{1000, 100000, 1000000, 10000000}, {1, 2}}) \
      ->ArgNames({"n", "threads"})                           \
      ->Unit(benchmark::kMicrosecond)
// ---------------------------------------------------------------------------------------------
// The dynamic path.

fg::var to_var(const vec& t) {
  fg::var v = fg::var::empty({t.size()});
  std::copy(t.data(), t.data() + t.size(), v.data<float>());
  return v.requires_grad(true);
}

template <class Loss> void run_dyn(benchmark::State& state, Loss loss) {
  fg::set_num_threads(int(state.range(1)));
  auto& D = data(std::size_t(state.range(0)));
  fg::var a = to_var(D.a), b = to_var(D.b), c = to_var(D.c), d = to_var(D.d);
  auto step = [&] {
    for (fg::var* x : {&a, &b, &c, &d})
      x->zero_grad();
    fg::var y = loss(a, b, c, d);
    y.backward();
    return float(y.item());
  };
  {
    const float v = step();
    std::string why;
    if (!check_value(D, v, why) ||
        !check_grads(D, a.grad().data<float>(), b.grad().data<float>(), c.grad().data<float>(),
                     d.grad().data<float>(), why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    float v = step();
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(D.n) * 8 * 4);
}

void BM_W1_fusegrad_dyn(benchmark::State& state) {
  run_dyn(state, [](const fg::var& a, const fg::var& b, const fg::var& c, const fg::var& d) {
    return fg::sum(a * b + fg::sin(c) * fg::exp(-d));
  });
}
// The same function through fg::function: traced on the first call, its planned graph after.
void BM_W1_fusegrad_traced(benchmark::State& state) {
  fg::function f([](const fg::var& a, const fg::var& b, const fg::var& c, const fg::var& d) {
    return fg::sum(a * b + fg::sin(c) * fg::exp(-d));
  });
  run_dyn(state, [&](const fg::var& a, const fg::var& b, const fg::var& c, const fg::var& d) {
    return f(a, b, c, d);
  });
}
void BM_W1_fusegrad_dyn_kernel(benchmark::State& state) {
  static const auto w1 = fg::kernel("w1", [](auto a, auto b, auto c, auto d) {
    return fg::sum(a * b + fg::sin(c) * fg::exp(-d));
  });
  run_dyn(state, [](const fg::var& a, const fg::var& b, const fg::var& c, const fg::var& d) {
    return w1(a, b, c, d);
  });
}
void BM_W1_fusegrad_dyn_kernel_map(benchmark::State& state) {
  static const auto terms = fg::kernel(
      "w1_terms", [](auto a, auto b, auto c, auto d) { return a * b + fg::sin(c) * fg::exp(-d); });
  run_dyn(state, [](const fg::var& a, const fg::var& b, const fg::var& c, const fg::var& d) {
    return fg::sum(terms(a, b, c, d));
  });
}

#if FUSEGRAD_HAVE_LIBTORCH
void BM_W1_libtorch(benchmark::State& state) {
  torch::set_num_threads(int(state.range(1)));
  auto& D = data(std::size_t(state.range(0)));
  auto leaf = [&](const vec& t) {
    torch::Tensor x = torch::empty({std::int64_t(D.n)}, torch::kFloat32);
    std::copy(t.data(), t.data() + D.n, x.data_ptr<float>());
    return x.requires_grad_(true);
  };
  torch::Tensor a = leaf(D.a), b = leaf(D.b), c = leaf(D.c), d = leaf(D.d);
  auto step = [&] {
    for (torch::Tensor* x : {&a, &b, &c, &d})
      if (x->grad().defined())
        x->grad().zero_();
    torch::Tensor y = (a * b + torch::sin(c) * torch::exp(-d)).sum();
    y.backward();
    return y.item<float>();
  };
  {
    const float v = step();
    std::string why;
    if (!check_value(D, v, why) ||
        !check_grads(D, a.grad().data_ptr<float>(), b.grad().data_ptr<float>(),
                     c.grad().data_ptr<float>(), d.grad().data_ptr<float>(), why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    float v = step();
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(D.n) * 8 * 4);
}
BENCHMARK(BM_W1_libtorch) W1_SIZES;
#endif

BENCHMARK(BM_W1_fusegrad) W1_SIZES;
BENCHMARK(BM_W1_fusegrad_alloc) W1_SIZES;
BENCHMARK(BM_W1_fusegrad_dyn) W1_SIZES;
BENCHMARK(BM_W1_fusegrad_traced) W1_SIZES;
BENCHMARK(BM_W1_fusegrad_dyn_kernel) W1_SIZES;
BENCHMARK(BM_W1_fusegrad_dyn_kernel_map) W1_SIZES;
BENCHMARK(BM_W1_handloop) W1_SIZES;
BENCHMARK(BM_W1_handloop_sin_cos) W1_SIZES;
BENCHMARK(BM_W1fwd_fusegrad) W1_SIZES;
BENCHMARK(BM_W1fwd_handloop) W1_SIZES;

#if FUSEGRAD_HAVE_EIGEN
// Forward only.
void BM_W1_eigen(benchmark::State& state) {
  auto& D = data(std::size_t(state.range(0)));
  const Eigen::Index n = Eigen::Index(D.n);
  Eigen::ArrayXf a = Eigen::Map<const Eigen::ArrayXf>(D.a.data(), n);
  Eigen::ArrayXf b = Eigen::Map<const Eigen::ArrayXf>(D.b.data(), n);
  Eigen::ArrayXf c = Eigen::Map<const Eigen::ArrayXf>(D.c.data(), n);
  Eigen::ArrayXf d = Eigen::Map<const Eigen::ArrayXf>(D.d.data(), n);
  {
    const float v = (a * b + c.sin() * (-d).exp()).sum();
    std::string why;
    if (!check_value(D, v, why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    float v = (a * b + c.sin() * (-d).exp()).sum();
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(D.n) * 4 * 4);
  state.SetLabel("forward only");
}
BENCHMARK(BM_W1_eigen)
    ->Args({1000, 1})
    ->Args({100000, 1})
    ->Args({1000000, 1})
    ->Args({10000000, 1})
    ->ArgNames({"n", "threads"})
    ->Unit(benchmark::kMicrosecond);
#endif

}  // namespace

BENCHMARK_MAIN();
