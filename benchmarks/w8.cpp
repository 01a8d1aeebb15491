// benchmarks/w8.cpp — W8: Fashion-MNIST training to a fixed accuracy, wall time and test accuracy
// (BENCHMARKS.md), one run each (Iterations(1)): fusegrad's nn against the same model, the same
// initial weights, the same batches and the same schedule in LibTorch.
//
//   BM_W8_fusegrad_dyn/<epochs>   the main job's recipe (examples/fashion_mnist.cpp): the W4 CNN,
//                                 Adam 2e-3 with a cosine decay per batch, batch 64
//   BM_W8_fusegrad_dyn_blas/<e>   the same, the layers' products through the linked BLAS
//   BM_W8_libtorch/<epochs>       the same in LibTorch, 1 thread
//
// Counters: test_accuracy (after the last epoch). Needs Debian's dataset-fashion-mnist and zlib;
// without the data the cases are skipped with an error that says so.
#include "bench_common.hpp"

#include <fusegrad/io/idx.hpp>
#include <fusegrad/nn.hpp>

#if FUSEGRAD_HAVE_LIBTORCH
#include <torch/torch.h>
#endif

#include <cmath>
#include <filesystem>
#include <string>

namespace {

namespace nn = fg::nn;
const std::string data_dir = "/usr/share/datasets/fashion-mnist";

nn::batch load(const char* part) {
  fg::var x = fg::io::read_idx(data_dir + "/" + part + "-images-idx3-ubyte.gz");
  fg::var y = fg::io::read_idx(data_dir + "/" + part + "-labels-idx1-ubyte.gz", fg::int64);
  const fg::index_t n = x.shape()[0];
  return {fg::reshape((x * (1.0 / 255.0) - 0.2860) * (1.0 / 0.3530), {n, 1, 28, 28}), y};
}
nn::Sequential cnn(fg::generator& g) {
  return nn::Sequential(nn::Conv2d(1, 32, 3, g), nn::ReLU(), nn::MaxPool2d(2),
                        nn::Conv2d(32, 64, 3, g), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
                        nn::Linear(1600, 10, g));
}

// The recipe both follow: `step(x, y, lr)` trains on one batch; `accuracy()` scores the test set.
template <class Step, class Accuracy>
void run(benchmark::State& state, Step step, Accuracy accuracy) {
  const int epochs = int(state.range(0));
  const nn::batch train = load("train");
  nn::DataLoader batches(train.inputs, train.targets, 64, true, 7);
  const double total = double(epochs) * double(batches.batches());
  for (auto _ : state) {
    long k = 0;
    for (int e = 0; e < epochs; ++e)
      for (auto [x, y] : batches)  // cosine from 2e-3 to 0, as nn::CosineLR steps it
        step(x, y, 2e-3 * 0.5 * (1 + std::cos(3.141592653589793 * double(k++) / total)));
  }
  state.counters["test_accuracy"] = accuracy();
}

// `blas`: the layers' products through the linked BLAS (fusegrad::blas) instead of our GEMM.
void BM_W8_fusegrad(benchmark::State& state, bool blas) {
  if (!std::filesystem::exists(data_dir))
    return state.SkipWithError("no /usr/share/datasets/fashion-mnist (dataset-fashion-mnist)");
  nn::blas_enabled() = blas;
  fg::generator g(42);
  nn::Sequential model = cnn(g);
  nn::Adam opt(model.parameters(), {.lr = 2e-3});
  const nn::batch test = load("t10k");
  nn::DataLoader test_batches(test.inputs, test.targets, 1000, false);
  run(
      state,
      [&](const fg::var& x, const fg::var& y, double lr) {
        opt.lr = lr;
        opt.zero_grad();
        nn::cross_entropy(model(x), y).backward();
        opt.step();
      },
      [&] { return nn::evaluate(model, test_batches, nn::cross_entropy).second; });
}

#if FUSEGRAD_HAVE_LIBTORCH
torch::Tensor to_torch(const fg::var& v) {  // float32 values, int64 class labels
  std::vector<std::int64_t> shape(v.shape().begin(), v.shape().end());
  if (v.dtype() == fg::int64)
    return torch::from_blob(const_cast<std::int64_t*>(v.data<std::int64_t>()), shape, torch::kInt64)
        .clone();
  return torch::from_blob(const_cast<float*>(v.data<float>()), shape, torch::kFloat32).clone();
}

void BM_W8_libtorch(benchmark::State& state) {
  if (!std::filesystem::exists(data_dir))
    return state.SkipWithError("no /usr/share/datasets/fashion-mnist (dataset-fashion-mnist)");
  torch::set_num_threads(1);
  fg::generator g(42);
  const nn::Sequential ours = cnn(g);  // the same initial weights
  torch::nn::Sequential m(torch::nn::Conv2d(1, 32, 3), torch::nn::ReLU(), torch::nn::MaxPool2d(2),
                          torch::nn::Conv2d(32, 64, 3), torch::nn::ReLU(), torch::nn::MaxPool2d(2),
                          torch::nn::Flatten(), torch::nn::Linear(1600, 10));
  {
    torch::NoGradGuard off;
    auto params = m->named_parameters();
    for (auto& [name, v] : ours.named_parameters())
      params[name].copy_(to_torch(v));
  }
  torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(2e-3));
  const nn::batch test = load("t10k");
  const torch::Tensor tx = to_torch(test.inputs), ty = to_torch(test.targets);
  run(
      state,
      [&](const fg::var& x, const fg::var& y, double lr) {
        for (auto& group : opt.param_groups())
          static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
        opt.zero_grad();
        torch::nn::functional::cross_entropy(m->forward(to_torch(x)), to_torch(y)).backward();
        opt.step();
      },
      [&] {
        torch::NoGradGuard off;
        m->eval();
        return m->forward(tx).argmax(1).eq(ty).to(torch::kFloat64).mean().item<double>();
      });
}
#endif

const bool registered = [] {
  benchmark::RegisterBenchmark("BM_W8_fusegrad_dyn", BM_W8_fusegrad, false)
      ->Arg(4)
      ->Iterations(1)
      ->Unit(benchmark::kSecond);
#ifdef FUSEGRAD_USE_CBLAS
  benchmark::RegisterBenchmark("BM_W8_fusegrad_dyn_blas", BM_W8_fusegrad, true)
      ->Arg(4)
      ->Iterations(1)
      ->Unit(benchmark::kSecond);
#endif
#if FUSEGRAD_HAVE_LIBTORCH
  benchmark::RegisterBenchmark("BM_W8_libtorch", BM_W8_libtorch)
      ->Arg(4)
      ->Iterations(1)
      ->Unit(benchmark::kSecond);
#endif
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
