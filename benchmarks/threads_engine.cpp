// benchmarks/threads_engine.cpp — the threading engine behind fg::parallel_for, against the two
// existing engines a header-only library could sit on, in one binary (docs/threads.md has the
// figures and the choice):
//   pool  fg::parallel_for (core/parallel.hpp)
//   omp   OpenMP, `#pragma omp parallel for` (libgomp with g++ -fopenmp)
//   tbb   oneTBB's tbb::parallel_for (libtbb)
// BM_empty: a parallel region with nothing to do, one iteration per thread (the fixed cost each
// parallel op pays), back to back; BM_empty_after_idle: the same 1 ms after the last region
// (workers gone to sleep), manual time. BM_work: 2^20 elements of tanh(x) * exp(-x), about
// 20 ms on one core, in chunks of 16384. BM_steps: 32 ops of 2^14 elements each, chunks of 2048
// (about 10 ms on one core), as a training step's many small ops. Threads: FUSEGRAD_NUM_THREADS /
// OMP_NUM_THREADS, the same for all. The busy-core case is this binary run beside a spinning
// process pinned to one CPU. SPDX-License-Identifier: MIT
#include "bench_common.hpp"

#include <fusegrad/core/parallel.hpp>

#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#if FUSEGRAD_HAVE_OPENMP
#include <omp.h>
#endif
#if FUSEGRAD_HAVE_TBB
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#endif

namespace {

constexpr std::size_t n = std::size_t(1) << 20, grain = 16384;

struct data {
  std::vector<float> x = std::vector<float>(n), y = std::vector<float>(n);
  data() { fgbench::fill_uniform(x.data(), n, -2, 2, 1); }
  void run(std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i)
      y[i] = std::tanh(x[i]) * std::exp(-x[i]);
  }
};

// Times one call of region() made 1 ms after the previous one.
template <class Region> void after_idle(benchmark::State& state, Region region) {
  for (auto _ : state) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const auto t0 = std::chrono::steady_clock::now();
    region();
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
}

constexpr std::size_t step_ops = 32, op_n = std::size_t(1) << 14, op_grain = 2048;

void BM_work_serial(benchmark::State& state) {
  data d;
  for (auto _ : state) {
    d.run(0, n);
    benchmark::ClobberMemory();
  }
}
void BM_steps_serial(benchmark::State& state) {
  data d;
  for (auto _ : state)
    d.run(0, step_ops * op_n);
}
BENCHMARK(BM_work_serial)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_steps_serial)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_empty_pool(benchmark::State& state) {
  const std::size_t t = std::size_t(fg::get_num_threads());
  for (auto _ : state)
    fg::parallel_for(0, t, 1, [](std::size_t, std::size_t) {});
  state.counters["threads"] = double(t);
}
void BM_work_pool(benchmark::State& state) {
  data d;
  for (auto _ : state) {
    fg::parallel_for(0, n, grain, [&](std::size_t lo, std::size_t hi) { d.run(lo, hi); });
    benchmark::ClobberMemory();
  }
  state.counters["threads"] = fg::get_num_threads();
}
void BM_empty_after_idle_pool(benchmark::State& state) {
  const std::size_t t = std::size_t(fg::get_num_threads());
  after_idle(state, [&] { fg::parallel_for(0, t, 1, [](std::size_t, std::size_t) {}); });
}
void BM_steps_pool(benchmark::State& state) {
  data d;
  for (auto _ : state)
    for (std::size_t op = 0; op < step_ops; ++op)
      fg::parallel_for(op * op_n, (op + 1) * op_n, op_grain,
                       [&](std::size_t lo, std::size_t hi) { d.run(lo, hi); });
}
BENCHMARK(BM_empty_pool)->UseRealTime();
BENCHMARK(BM_empty_after_idle_pool)->UseManualTime()->Iterations(1000);
BENCHMARK(BM_work_pool)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_steps_pool)->Unit(benchmark::kMillisecond)->UseRealTime();

#if FUSEGRAD_HAVE_OPENMP
void BM_empty_omp(benchmark::State& state) {
  const int t = fg::get_num_threads();
  omp_set_num_threads(t);
  for (auto _ : state) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < t; ++i)
      benchmark::DoNotOptimize(i);
  }
  state.counters["threads"] = t;
}
void BM_work_omp(benchmark::State& state) {
  data d;
  omp_set_num_threads(fg::get_num_threads());
  const long chunks = long(n / grain);
  for (auto _ : state) {
#pragma omp parallel for schedule(dynamic, 1)
    for (long k = 0; k < chunks; ++k)
      d.run(std::size_t(k) * grain, std::size_t(k + 1) * grain);
    benchmark::ClobberMemory();
  }
  state.counters["threads"] = fg::get_num_threads();
}
void BM_empty_after_idle_omp(benchmark::State& state) {
  const int t = fg::get_num_threads();
  omp_set_num_threads(t);
  after_idle(state, [&] {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < t; ++i)
      benchmark::DoNotOptimize(i);
  });
}
void BM_steps_omp(benchmark::State& state) {
  data d;
  omp_set_num_threads(fg::get_num_threads());
  const long chunks = long(op_n / op_grain);
  for (auto _ : state)
    for (std::size_t op = 0; op < step_ops; ++op) {
#pragma omp parallel for schedule(dynamic, 1)
      for (long k = 0; k < chunks; ++k)
        d.run(op * op_n + std::size_t(k) * op_grain, op * op_n + std::size_t(k + 1) * op_grain);
    }
}
BENCHMARK(BM_empty_omp)->UseRealTime();
BENCHMARK(BM_empty_after_idle_omp)->UseManualTime()->Iterations(1000);
BENCHMARK(BM_work_omp)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_steps_omp)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

#if FUSEGRAD_HAVE_TBB
void BM_empty_tbb(benchmark::State& state) {
  const int t = fg::get_num_threads();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, std::size_t(t));
  for (auto _ : state)
    tbb::parallel_for(0, t, [](int i) { benchmark::DoNotOptimize(i); });
  state.counters["threads"] = t;
}
void BM_work_tbb(benchmark::State& state) {
  data d;
  const int t = fg::get_num_threads();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, std::size_t(t));
  for (auto _ : state) {
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, n, grain),
        [&](const tbb::blocked_range<std::size_t>& r) { d.run(r.begin(), r.end()); },
        tbb::simple_partitioner());
    benchmark::ClobberMemory();
  }
  state.counters["threads"] = t;
}
void BM_empty_after_idle_tbb(benchmark::State& state) {
  const int t = fg::get_num_threads();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, std::size_t(t));
  after_idle(state, [&] { tbb::parallel_for(0, t, [](int i) { benchmark::DoNotOptimize(i); }); });
}
void BM_steps_tbb(benchmark::State& state) {
  data d;
  const int t = fg::get_num_threads();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, std::size_t(t));
  for (auto _ : state)
    for (std::size_t op = 0; op < step_ops; ++op)
      tbb::parallel_for(
          tbb::blocked_range<std::size_t>(op * op_n, (op + 1) * op_n, op_grain),
          [&](const tbb::blocked_range<std::size_t>& r) { d.run(r.begin(), r.end()); },
          tbb::simple_partitioner());
}
BENCHMARK(BM_empty_tbb)->UseRealTime();
BENCHMARK(BM_empty_after_idle_tbb)->UseManualTime()->Iterations(1000);
BENCHMARK(BM_work_tbb)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_steps_tbb)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

}  // namespace

BENCHMARK_MAIN();
