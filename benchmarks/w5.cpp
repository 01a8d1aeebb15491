// benchmarks/w5.cpp — W5: tiny AD, sum(log(1 + exp(x))) value and gradient (float), n = 10
// (100 and 1000 for context). Measures per-call overhead.
//
//   BM_W5_fusegrad              fg::value_and_grad_into on fg::tensor<float, fg::shape<N>>
//                               (static), into a gradient tensor declared once outside the loop
//                               (as the hand loops write into a preallocated array)
//   BM_W5_fusegrad_dyn_extent   the same on fg::tensor<float, fg::shape<fg::dyn>> (the gradient
//                               tensor is sized on the first call, then reused)
//   BM_W5_fusegrad_dyn          the dynamic path: an fg::var, 4 recorded ops (exp, add, log,
//                               sum), backward() into .grad() (zero_grad each call)
//   BM_W5_fusegrad_dyn_kernel   the same as one fg::kernel op, sum included (one fused pass)
//   BM_W5_fusegrad_traced       the dynamic path's function through fg::function (fg::trace):
//                               the recorded graph run each call
//   BM_W5_libtorch              LibTorch eager (1 thread): a leaf with requires_grad, the same
//                               three ops and sum, backward(), grad zeroed each call
//   BM_W5_handloop              the fastest of the hand loops below: xsimd_stail (measured: at
//                               n = 10 xsimd_stail 41 ns, xsimd padded 61 ns, scalar 79 ns)
//   BM_W5_handloop_xsimd        xsimd batches, the last partial batch through a padded buffer
//   BM_W5_handloop_xsimd_stail  xsimd batches, the tail element by element (std::exp/std::log)
//   BM_W5_handloop_scalar       plain loop: expf + logf per element
#include "bench_common.hpp"

#include <fusegrad/dynamic.hpp>
#include <fusegrad/fusegrad.hpp>
#include <xsimd/xsimd.hpp>

#include <vector>

#if FUSEGRAD_HAVE_LIBTORCH
#include <torch/torch.h>
#endif

namespace {

constexpr double kLo = -3.0, kHi = 3.0;

struct reference {
  double value = 0;
  std::vector<double> g;
  explicit reference(const float* x, std::size_t n) : g(n) {
    for (std::size_t i = 0; i < n; ++i) {
      const double e = std::exp(double(x[i]));
      value += std::log(1.0 + e);
      g[i] = e / (1.0 + e);
    }
  }
};

bool check(const reference& R, double v, const float* g, std::size_t n, std::string& why) {
  return fgbench::check_value(v, R.value, 1e-5, 1e-6, "value", why) &&
         fgbench::close_all(g, R.g.data(), n, 1e-5, 1e-6, "grad", why);
}

// ---------------------------------------------------------------------------------------------
// Hand loops.

float w5_scalar(std::size_t n, const float* x, float* g) {
  float v = 0.f;
  for (std::size_t i = 0; i < n; ++i) {
    const float e = std::exp(x[i]);
    const float u = 1.f + e;
    v += std::log(u);
    g[i] = e / u;
  }
  return v;
}

float w5_xsimd(std::size_t n, const float* x, float* g) {
  using B = xsimd::batch<float>;
  constexpr std::size_t W = B::size;
  B acc(0.f);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B e = xsimd::exp(B::load_unaligned(x + i));
    const B u = B(1.f) + e;
    acc += xsimd::log(u);
    (e / u).store_unaligned(g + i);
  }
  float v = xsimd::hadd(acc);
  if (i < n) {  // the last partial batch, padded
    alignas(B::arch_type::alignment()) float buf[W] = {};
    alignas(B::arch_type::alignment()) float lv[W];
    const std::size_t r = n - i;
    for (std::size_t k = 0; k < r; ++k)
      buf[k] = x[i + k];
    const B e = xsimd::exp(B::load_aligned(buf));
    const B u = B(1.f) + e;
    xsimd::log(u).store_aligned(lv);
    (e / u).store_aligned(buf);
    for (std::size_t k = 0; k < r; ++k) {
      v += lv[k];
      g[i + k] = buf[k];
    }
  }
  return v;
}

// xsimd batches, the tail element by element with std::exp/std::log (as fusegrad's loop does).
float w5_xsimd_scalar_tail(std::size_t n, const float* x, float* g) {
  using B = xsimd::batch<float>;
  constexpr std::size_t W = B::size;
  B acc(0.f);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B e = xsimd::exp(B::load_unaligned(x + i));
    const B u = B(1.f) + e;
    acc += xsimd::log(u);
    (e / u).store_unaligned(g + i);
  }
  return xsimd::hadd(acc) + w5_scalar(n - i, x + i, g + i);
}

template <float (*Fn)(std::size_t, const float*, float*)> void BM_W5_hand(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  std::vector<float> x(n), g(n);
  fgbench::fill_uniform(x.data(), n, kLo, kHi, 7);
  const reference R(x.data(), n);
  {
    std::string why;
    const float v = Fn(n, x.data(), g.data());
    if (!check(R, v, g.data(), n, why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(x.data());
    float v = Fn(n, x.data(), g.data());
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(n));
}

// ---------------------------------------------------------------------------------------------
// fusegrad.

template <class X> void BM_W5_fg(benchmark::State& state, X& x) {
  const std::size_t n = x.size();
  fgbench::fill_uniform(x.data(), n, kLo, kHi, 7);
  const reference R(x.data(), n);
  X g;  // gradient, kept across calls
  {
    const float v = fg::value_and_grad_into(fg::sum(fg::log(1 + fg::exp(x))), std::tie(g), x);
    std::string why;
    if (!check(R, v, g.data(), n, why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(x.data());
    float v = fg::value_and_grad_into(fg::sum(fg::log(1 + fg::exp(x))), std::tie(g), x);
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(n));
}

template <std::size_t N> void BM_W5_fusegrad(benchmark::State& state) {
  fg::tensor<float, fg::shape<N>> x;
  BM_W5_fg(state, x);
}
void BM_W5_fusegrad_dyn_extent(benchmark::State& state) {
  fg::tensor<float, fg::shape<fg::dyn>> x(fg::dims_t<1>{std::size_t(state.range(0))});
  BM_W5_fg(state, x);
}

template <class Loss> void BM_W5_dyn(benchmark::State& state, Loss loss) {
  const std::size_t n = std::size_t(state.range(0));
  fg::var x = fg::var::empty({n});
  fgbench::fill_uniform(x.data<float>(), n, kLo, kHi, 7);
  const reference R(x.data<float>(), n);
  x.requires_grad(true);
  auto step = [&] {
    x.zero_grad();
    fg::var y = loss(x);
    y.backward();
    return float(y.item());
  };
  {
    const float v = step();
    std::string why;
    if (!check(R, v, x.grad().data<float>(), n, why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    float v = step();
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(n));
}
void BM_W5_fusegrad_dyn(benchmark::State& state) {
  BM_W5_dyn(state, [](const fg::var& x) { return fg::sum(fg::log(1.0 + fg::exp(x))); });
}
// The same function through fg::function: traced on the first call, the recorded graph after.
void BM_W5_fusegrad_traced(benchmark::State& state) {
  fg::function f([](const fg::var& x) { return fg::sum(fg::log(1.0 + fg::exp(x))); });
  BM_W5_dyn(state, [&](const fg::var& x) { return f(x); });
}
void BM_W5_fusegrad_dyn_kernel(benchmark::State& state) {
  static const auto w5 =
      fg::kernel("w5", [](auto x) { return fg::sum(fg::log(1.0f + fg::exp(x))); });
  BM_W5_dyn(state, [](const fg::var& x) { return w5(x); });
}

#if FUSEGRAD_HAVE_LIBTORCH
void BM_W5_libtorch(benchmark::State& state) {
  torch::set_num_threads(1);
  const std::size_t n = std::size_t(state.range(0));
  torch::Tensor x = torch::empty({std::int64_t(n)}, torch::kFloat32);
  fgbench::fill_uniform(x.data_ptr<float>(), n, kLo, kHi, 7);
  const reference R(x.data_ptr<float>(), n);
  x.requires_grad_(true);
  auto step = [&] {
    if (x.grad().defined())
      x.grad().zero_();
    torch::Tensor y = torch::log(1 + torch::exp(x)).sum();
    y.backward();
    return y.item<float>();
  };
  {
    const float v = step();
    std::string why;
    if (!check(R, v, x.grad().data_ptr<float>(), n, why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    float v = step();
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(n));
}
#endif

// Static sizes are template arguments; register them under BM_W5_fusegrad/<n> like the others.
const bool registered = [] {
  benchmark::RegisterBenchmark("BM_W5_fusegrad", BM_W5_fusegrad<10>)->Arg(10);
  benchmark::RegisterBenchmark("BM_W5_fusegrad", BM_W5_fusegrad<100>)->Arg(100);
  benchmark::RegisterBenchmark("BM_W5_fusegrad", BM_W5_fusegrad<1000>)->Arg(1000);
  for (auto* b :
       {benchmark::RegisterBenchmark("BM_W5_fusegrad_dyn_extent", BM_W5_fusegrad_dyn_extent),
        benchmark::RegisterBenchmark("BM_W5_fusegrad_dyn", BM_W5_fusegrad_dyn),
        benchmark::RegisterBenchmark("BM_W5_fusegrad_dyn_kernel", BM_W5_fusegrad_dyn_kernel),
        benchmark::RegisterBenchmark("BM_W5_fusegrad_traced", BM_W5_fusegrad_traced),
        benchmark::RegisterBenchmark("BM_W5_handloop", BM_W5_hand<w5_xsimd_scalar_tail>),
        benchmark::RegisterBenchmark("BM_W5_handloop_xsimd", BM_W5_hand<w5_xsimd>),
        benchmark::RegisterBenchmark("BM_W5_handloop_xsimd_stail",
                                     BM_W5_hand<w5_xsimd_scalar_tail>),
        benchmark::RegisterBenchmark("BM_W5_handloop_scalar", BM_W5_hand<w5_scalar>)})
    b->Arg(10)->Arg(100)->Arg(1000);
#if FUSEGRAD_HAVE_LIBTORCH
  benchmark::RegisterBenchmark("BM_W5_libtorch", BM_W5_libtorch)->Arg(10)->Arg(100)->Arg(1000);
#endif
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
