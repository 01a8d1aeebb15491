// benchmarks/safetensors_load.cpp — loading a safetensors file (issue 26's 1 GiB figure). The
// peer is Python's safetensors.numpy.load_file, which cannot live in this binary:
// benchmarks/safetensors_load.py writes the file, times Python and runs this binary in the same
// rounds. The file comes from FUSEGRAD_SAFETENSORS_FILE.
//   read       load_mode::read: pread into each tensor's memory (the tensors are then in RAM,
//              as Python's arrays are)
//   map        load_mode::map: zero-copy, pages read on first touch
//   map_touch  map, then every element summed (what the first use of the weights costs)
// SPDX-License-Identifier: MIT
#include "bench_common.hpp"

#include <fusegrad/dynamic.hpp>
#include <fusegrad/io/safetensors.hpp>

#include <cstdlib>
#include <string>

namespace {

const char* file_or_skip(benchmark::State& state) {
  const char* f = std::getenv("FUSEGRAD_SAFETENSORS_FILE");
  if (!f)
    state.SkipWithError("set FUSEGRAD_SAFETENSORS_FILE (benchmarks/safetensors_load.py does)");
  return f;
}

void load(benchmark::State& state, fg::io::load_mode mode, bool touch) {
  const char* path = file_or_skip(state);
  if (!path)
    return;
  std::size_t bytes = 0;
  for (auto _ : state) {
    const fg::io::tensor_map t = fg::io::load_safetensors(path, nullptr, mode);
    double total = 0;
    bytes = 0;
    for (const auto& [name, v] : t) {
      bytes += v.size() * fg::dynamic::element_size(v.dtype());
      if (touch)
        total += fg::sum(v).item();
    }
    benchmark::DoNotOptimize(total);
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(bytes));
}

void BM_safetensors_read(benchmark::State& s) { load(s, fg::io::load_mode::read, false); }
void BM_safetensors_map(benchmark::State& s) { load(s, fg::io::load_mode::map, false); }
void BM_safetensors_map_touch(benchmark::State& s) { load(s, fg::io::load_mode::map, true); }
BENCHMARK(BM_safetensors_read)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_safetensors_map)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_safetensors_map_touch)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
