// W7: W1 on CUDA — y = sum(a*b + sin(c)*exp(-d)) and its gradient with respect to a, b, c, d,
// float, n = 1e6, 1e7, 1e8. fusegrad's fused pass (one kernel) beside the best hand-written
// kernel (one pass: 4 reads, 4 writes per element, a block reduction) and a device-to-device
// copy of the same 32 bytes per element, the bandwidth floor. PyTorch eager and torch.compile
// run from benchmarks/cuda/w7_torch.py on the same machine.
//
// Without a device every case reports "no CUDA device" and the binary exits 0.
#include "../bench_common.hpp"

#include <fusegrad/cuda.hpp>

#include <memory>
#include <string>
#include <vector>

namespace {

using DV = fg::device_tensor<float, fg::shape<fg::dyn>>;

// The hand loop: what a CUDA programmer writes for this function by hand.
__global__ void __launch_bounds__(256)
    hand_kernel(const float* __restrict__ a, const float* __restrict__ b,
                const float* __restrict__ c, const float* __restrict__ d, float* __restrict__ ga,
                float* __restrict__ gb, float* __restrict__ gc, float* __restrict__ gd,
                std::size_t n, float* total) {
  float acc = 0;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const float ai = a[i], bi = b[i], ci = c[i], di = d[i];
    float s, co;
    sincosf(ci, &s, &co);
    const float e = expf(-di);
    acc += ai * bi + s * e;
    ga[i] = bi;
    gb[i] = ai;
    gc[i] = co * e;
    gd[i] = -s * e;
  }
  for (int o = 16; o > 0; o /= 2)
    acc += __shfl_down_sync(0xffffffffu, acc, o);
  __shared__ float warp_sums[8];
  if (threadIdx.x % 32 == 0)
    warp_sums[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x < 32) {
    acc = threadIdx.x < 8 ? warp_sums[threadIdx.x] : 0.f;
    for (int o = 16; o > 0; o /= 2)
      acc += __shfl_down_sync(0xffffffffu, acc, o);
    if (threadIdx.x == 0)
      atomicAdd(total, acc);
  }
}

struct problem {
  std::size_t n;
  DV a, b, c, d, ga, gb, gc, gd;
  float* total = nullptr;
  explicit problem(std::size_t size) : n(size) {
    fg::tensor<float, fg::shape<fg::dyn>> h(fg::dims_t<1>{n});
    DV* in[] = {&a, &b, &c, &d};
    for (int k = 0; k < 4; ++k) {
      fgbench::fill_uniform(h.data(), n, -1.0, 1.0, 100 + k);
      *in[k] = h.to(fg::cuda);
    }
    for (DV* g : {&ga, &gb, &gc, &gd})
      *g = DV(fg::uninitialized, {n});
    fg::gpu::check(cudaMalloc(&total, sizeof(float)), "cudaMalloc");
  }
  ~problem() { (void)cudaFree(total); }
  float fused() {
    return fg::gpu::value_and_grad_into(fg::sum(a * b + fg::sin(c) * fg::exp(-d)),
                                        std::tie(ga, gb, gc, gd), a, b, c, d);
  }
  float hand() {
    int sms = fg::gpu::multiprocessors();
    const unsigned blocks = unsigned(std::min<std::size_t>((n + 255) / 256, std::size_t(sms) * 8));
    fg::gpu::check(cudaMemsetAsync(total, 0, sizeof(float)), "cudaMemsetAsync");
    hand_kernel<<<blocks, 256>>>(a.data(), b.data(), c.data(), d.data(), ga.data(), gb.data(),
                                 gc.data(), gd.data(), n, total);
    fg::gpu::check(cudaGetLastError(), "hand_kernel launch");
    float v = 0;
    fg::gpu::check(cudaMemcpy(&v, total, sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
    return v;
  }
};

problem& problem_for(std::size_t n) {
  static std::vector<std::unique_ptr<problem>> cache;
  for (auto& p : cache)
    if (p->n == n)
      return *p;
  cache.clear();  // one size at a time: 1e8 floats x 8 arrays is 3.2 GB
  cache.push_back(std::make_unique<problem>(n));
  return *cache.back();
}

// The fused result must equal the hand kernel's before anything is timed.
bool verify(problem& p, std::string& why) {
  const float vf = p.fused();
  const auto fa = p.ga.to(fg::host), fb = p.gb.to(fg::host), fc = p.gc.to(fg::host),
             fd = p.gd.to(fg::host);
  const float vh = p.hand();
  const auto ha = p.ga.to(fg::host), hb = p.gb.to(fg::host), hc = p.gc.to(fg::host),
             hd = p.gd.to(fg::host);
  if (!fgbench::close(vf, vh, 1e-3)) {
    why = "value " + std::to_string(vf) + ", hand kernel " + std::to_string(vh);
    return false;
  }
  return fgbench::close_all(fa.data(), ha.data(), p.n, 1e-5, 1e-6, "da", why) &&
         fgbench::close_all(fb.data(), hb.data(), p.n, 1e-5, 1e-6, "db", why) &&
         fgbench::close_all(fc.data(), hc.data(), p.n, 1e-5, 1e-6, "dc", why) &&
         fgbench::close_all(fd.data(), hd.data(), p.n, 1e-5, 1e-6, "dd", why);
}

bool ready(benchmark::State& state) {
  if (!fg::gpu::available()) {
    state.SkipWithError("no CUDA device");
    return false;
  }
  static bool checked = false;
  if (!checked) {
    std::string why;
    problem p(1 << 20);
    if (!verify(p, why)) {
      state.SkipWithError(("fusegrad differs from the hand kernel: " + why).c_str());
      return false;
    }
    checked = true;
  }
  return true;
}

void report(benchmark::State& state, std::size_t n) {
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n) * 32);
  state.counters["n"] = double(n);
}

// One step of `step` (fusegrad's fused pass, or the hand kernel) per iteration.
template <float (problem::*step)()> void W7_step(benchmark::State& state) {
  if (!ready(state))
    return;
  auto& p = problem_for(std::size_t(state.range(0)));
  for (auto _ : state)
    benchmark::DoNotOptimize((p.*step)());
  report(state, p.n);
}
// The floor: a device-to-device copy of 4n floats moves the same 32 bytes per element.
void W7_copy_d2d(benchmark::State& state) {
  if (!ready(state))
    return;
  auto& p = problem_for(std::size_t(state.range(0)));
  void *src = nullptr, *dst = nullptr;
  const std::size_t bytes = 4 * p.n * sizeof(float);
  fg::gpu::check(cudaMalloc(&src, bytes), "cudaMalloc");
  fg::gpu::check(cudaMalloc(&dst, bytes), "cudaMalloc");
  for (auto _ : state) {
    fg::gpu::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
    fg::gpu::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }
  (void)cudaFree(src);
  (void)cudaFree(dst);
  report(state, p.n);
}

void sizes(benchmark::internal::Benchmark* b) {
  b->Arg(1'000'000)
      ->Arg(10'000'000)
      ->Arg(100'000'000)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}
BENCHMARK(W7_step<&problem::fused>)->Name("W7_fusegrad")->Apply(sizes);
BENCHMARK(W7_step<&problem::hand>)->Name("W7_handloop")->Apply(sizes);
BENCHMARK(W7_copy_d2d)->Apply(sizes);

}  // namespace

BENCHMARK_MAIN();
