// benchmarks/nn_training.cpp — W2, W3, W4: training steps of an MLP, an LSTM and a CNN (float,
// BENCHMARKS.md), fusegrad's nn layers on the dynamic path against LibTorch in the same binary.
//
//   BM_W2_fusegrad_dyn/1   MLP 784-256-256-10, ReLU, softmax cross-entropy, SGD step; batch 128
//   BM_W3_fusegrad_dyn/1   LSTM 64 -> 128 over 32 steps, batch 16: forward, sum, backward
//   BM_W4_fusegrad_dyn/1   CNN step (conv 1->32 3x3, ReLU, pool 2; conv 32->64 3x3, ReLU, pool 2;
//                          linear 1600->10), softmax cross-entropy, SGD; batch 64
//   BM_W<k>_fusegrad_traced/t  W2 and W4 with the loss through fg::function: traced on the first
//                          step, its planned graph run after
//   BM_encoder_fusegrad_{dyn,traced}/t  a Transformer-encoder step: 2 pre-norm blocks (E = 128,
//                          4 heads, MLP 512, GELU) on [32, 64, 128], MSE to a fixed target, SGD;
//                          eager and traced
//   BM_W<k>_fusegrad_dyn_blas/1  the same with the layers' products through the linked BLAS
//                          (fusegrad::blas: OpenBLAS on Debian; run with OMP_NUM_THREADS=1)
//   BM_W<k>_libtorch/<t>   the same in LibTorch with t threads (1 and 2); fusegrad runs on one
//
// Before timing, each LibTorch case is given fusegrad's initial weights and must produce the same
// loss and the same first-layer gradient (a wrong fast answer is worthless).
#include "bench_common.hpp"

#include <fusegrad/nn.hpp>

#if FUSEGRAD_HAVE_LIBTORCH
#include <torch/torch.h>
#endif

#include <string>
#include <vector>

namespace {

namespace nn = fg::nn;

struct workload {
  nn::Sequential (*model)(fg::generator&);
  fg::extents input;
  fg::index_t classes;
};

nn::Sequential mlp(fg::generator& g) {
  return nn::Sequential(nn::Linear(784, 256, g), nn::ReLU(), nn::Linear(256, 256, g), nn::ReLU(),
                        nn::Linear(256, 10, g));
}
nn::Sequential cnn(fg::generator& g) {
  return nn::Sequential(nn::Conv2d(1, 32, 3, g), nn::ReLU(), nn::MaxPool2d(2),
                        nn::Conv2d(32, 64, 3, g), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
                        nn::Linear(1600, 10, g));
}
const workload W2{mlp, {128, 784}, 10}, W4{cnn, {64, 1, 28, 28}, 10};

fg::var inputs(const fg::extents& e) {
  fg::var x = fg::var::empty(e);
  fgbench::fill_uniform(x.data<float>(), std::size_t(x.size()), -1, 1, 3);
  return x;
}
fg::var labels(fg::index_t n, fg::index_t classes) {
  fg::var y = fg::var::empty({n}, fg::int64);
  for (fg::index_t i = 0; i < n; ++i)
    y.data<std::int64_t>()[i] = std::int64_t((i * 7 + 3) % classes);
  return y;
}

// A classifier's loss on a batch, as a function of its inputs and labels.
auto classifier_loss(nn::module& m) {
  return [&m](const fg::var& x, const fg::var& y) { return nn::cross_entropy(m(x), y); };
}

// One SGD training step of `loss` (a function of the inputs and labels); returns the loss.
template <class Loss>
double step(Loss& loss_of, nn::optimizer& opt, const fg::var& x, const fg::var& y) {
  opt.zero_grad();
  fg::var loss = loss_of(x, y);
  loss.backward();
  opt.step();
  return loss.item();
}

enum class path { eager, blas, traced };

// Times SGD steps of `loss` on (x, y): as written, or through fg::function when `p` is traced.
template <class Loss>
void time_steps(benchmark::State& state, path p, Loss loss, nn::optimizer& opt, const fg::var& x,
                const fg::var& y) {
  if (p != path::traced) {
    for (auto _ : state)
      benchmark::DoNotOptimize(step(loss, opt, x, y));
    return;
  }
  fg::function traced(loss);
  for (auto _ : state)
    benchmark::DoNotOptimize(step(traced, opt, x, y));
}

// `blas`: the layers' products through the linked BLAS (fusegrad::blas) instead of our GEMM;
// `traced`: the loss through fg::function (traced on the first step, its planned graph after).
// The argument: fusegrad's threads (fg::set_num_threads), as LibTorch's are torch's.
void BM_classifier_fusegrad(benchmark::State& state, const workload* w, path p) {
  nn::blas_enabled() = p == path::blas;
  fg::set_num_threads(int(state.range(0)));
  fg::generator g(1);
  nn::Sequential m = w->model(g);
  nn::SGD opt(m.parameters(), {.lr = 0.01});
  const fg::var x = inputs(w->input), y = labels(w->input[0], w->classes);
  time_steps(state, p, classifier_loss(m), opt, x, y);
}

void BM_W3_fusegrad(benchmark::State& state, bool blas) {
  nn::blas_enabled() = blas;
  fg::set_num_threads(int(state.range(0)));
  fg::generator g(1);
  nn::LSTM lstm(64, 128, g);
  const fg::var x = inputs({32, 16, 64});
  for (auto _ : state) {
    lstm.zero_grad();
    fg::var loss = fg::sum(lstm.run(x).output);
    loss.backward();
    benchmark::DoNotOptimize(loss.item());
  }
}

// A pre-norm Transformer encoder block: x + attention(norm(x)), then + MLP(norm(.)).
class encoder_block : public nn::module {
 public:
  encoder_block(fg::index_t embed, fg::index_t heads, fg::generator& g)
      : ln1(register_module("ln1", std::make_shared<nn::LayerNorm>(embed))),
        attn(register_module("attn", std::make_shared<nn::MultiheadAttention>(embed, heads, g))),
        ln2(register_module("ln2", std::make_shared<nn::LayerNorm>(embed))),
        up(register_module("up", std::make_shared<nn::Linear>(embed, 4 * embed, g))),
        down(register_module("down", std::make_shared<nn::Linear>(4 * embed, embed, g))) {}
  fg::var forward(const fg::var& x) override {
    const fg::var n = ln1->forward(x);
    const fg::var h = x + attn->attend(n, n, n);
    return h + down->forward(nn::gelu(up->forward(ln2->forward(h))));
  }

 private:
  std::shared_ptr<nn::LayerNorm> ln1;
  std::shared_ptr<nn::MultiheadAttention> attn;
  std::shared_ptr<nn::LayerNorm> ln2;
  std::shared_ptr<nn::Linear> up, down;
};

// A Transformer-encoder training step: 2 blocks (E = 128, 4 heads) on [32, 64, 128], the mean
// squared error to a fixed target, SGD; eager or with the loss through fg::function.
void BM_encoder_fusegrad(benchmark::State& state, path p) {
  nn::blas_enabled() = false;  // (our GEMM, as the other cases' eager and traced rows)
  fg::set_num_threads(int(state.range(0)));
  fg::generator g(1);
  nn::Sequential m(encoder_block(128, 4, g), encoder_block(128, 4, g));
  nn::SGD opt(m.parameters(), {.lr = 0.01});
  const fg::var x = inputs({32, 64, 128}), target = inputs({32, 64, 128}) * 0.5;
  time_steps(
      state, p, [&](const fg::var& a, const fg::var& b) { return fg::mean(fg::square(m(a) - b)); },
      opt, x, target);
}

#if FUSEGRAD_HAVE_LIBTORCH
torch::Tensor to_torch(const fg::var& v) {  // float32 values, int64 class labels
  std::vector<std::int64_t> shape(v.shape().begin(), v.shape().end());
  if (v.dtype() == fg::int64)
    return torch::from_blob(const_cast<std::int64_t*>(v.data<std::int64_t>()), shape, torch::kInt64)
        .clone();
  return torch::from_blob(const_cast<float*>(v.data<float>()), shape, torch::kFloat32).clone();
}
// Copies fusegrad's parameters into the torch module's of the same names.
void copy_weights(const nn::module& from, torch::nn::Module& to) {
  torch::NoGradGuard off;
  auto params = to.named_parameters();
  for (auto& [name, v] : from.named_parameters())
    params[name].copy_(to_torch(v));
}
torch::nn::Sequential torch_mlp() {
  return torch::nn::Sequential(torch::nn::Linear(784, 256), torch::nn::ReLU(),
                               torch::nn::Linear(256, 256), torch::nn::ReLU(),
                               torch::nn::Linear(256, 10));
}
torch::nn::Sequential torch_cnn() {
  return torch::nn::Sequential(torch::nn::Conv2d(1, 32, 3), torch::nn::ReLU(),
                               torch::nn::MaxPool2d(2), torch::nn::Conv2d(32, 64, 3),
                               torch::nn::ReLU(), torch::nn::MaxPool2d(2), torch::nn::Flatten(),
                               torch::nn::Linear(1600, 10));
}

void BM_classifier_libtorch(benchmark::State& state, const workload* w,
                            torch::nn::Sequential (*make)()) {
  torch::set_num_threads(int(state.range(0)));
  fg::generator g(1);
  nn::Sequential ours = w->model(g);
  torch::nn::Sequential m = make();
  copy_weights(ours, *m);
  const fg::var fx = inputs(w->input), fy = labels(w->input[0], w->classes);
  const torch::Tensor x = to_torch(fx), y = to_torch(fy);
  torch::optim::SGD opt(m->parameters(), torch::optim::SGDOptions(0.01));
  auto run = [&] {
    opt.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(m->forward(x), y);
    loss.backward();
    opt.step();
    return loss.item<double>();
  };
  {  // the same loss and first-layer weight gradient as fusegrad's, before any step
    nn::SGD still(ours.parameters(), {.lr = 0});
    auto loss_of = classifier_loss(ours);
    const double want = step(loss_of, still, fx, fy);
    opt.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(m->forward(x), y);
    loss.backward();
    std::string why;
    const fg::var gw = ours.named_parameters()[0].second.grad();
    const torch::Tensor tg = m->named_parameters()["0.weight"].grad().contiguous();
    if (!fgbench::check_value(loss.item<double>(), want, 1e-4, 1e-6, "loss", why) ||
        !fgbench::close_all(tg.data_ptr<float>(), gw.data<float>(), std::size_t(gw.size()), 2e-3,
                            1e-5, "0.weight grad", why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state)
    benchmark::DoNotOptimize(run());
}

void BM_W3_libtorch(benchmark::State& state) {
  torch::set_num_threads(int(state.range(0)));
  fg::generator g(1);
  nn::LSTM ours(64, 128, g);
  torch::nn::LSTM m(torch::nn::LSTMOptions(64, 128));
  copy_weights(ours, *m);
  const fg::var fx = inputs({32, 16, 64});
  const torch::Tensor x = to_torch(fx);
  {
    const double want = fg::sum(ours.run(fx).output).item();
    const double got = std::get<0>(m->forward(x)).sum().item<double>();
    std::string why;
    if (!fgbench::check_value(got, want, 1e-4, 1e-4, "sum of outputs", why))
      return state.SkipWithError(why.c_str());
  }
  for (auto _ : state) {
    m->zero_grad();
    torch::Tensor loss = std::get<0>(m->forward(x)).sum();
    loss.backward();
    benchmark::DoNotOptimize(loss.item<double>());
  }
}
#endif

const bool registered = [] {
  std::vector<benchmark::internal::Benchmark*> all{
      benchmark::RegisterBenchmark("BM_W2_fusegrad_dyn", BM_classifier_fusegrad, &W2, path::eager)
          ->Arg(1)
          ->Arg(2),
      benchmark::RegisterBenchmark("BM_W2_fusegrad_traced", BM_classifier_fusegrad, &W2,
                                   path::traced)
          ->Arg(1)
          ->Arg(2),
      benchmark::RegisterBenchmark("BM_W3_fusegrad_dyn", BM_W3_fusegrad, false)->Arg(1)->Arg(2),
      benchmark::RegisterBenchmark("BM_W4_fusegrad_dyn", BM_classifier_fusegrad, &W4, path::eager)
          ->Arg(1)
          ->Arg(2),
      benchmark::RegisterBenchmark("BM_W4_fusegrad_traced", BM_classifier_fusegrad, &W4,
                                   path::traced)
          ->Arg(1)
          ->Arg(2),
      benchmark::RegisterBenchmark("BM_encoder_fusegrad_dyn", BM_encoder_fusegrad, path::eager)
          ->Arg(1)
          ->Arg(2),
      benchmark::RegisterBenchmark("BM_encoder_fusegrad_traced", BM_encoder_fusegrad, path::traced)
          ->Arg(1)
          ->Arg(2)};
#ifdef FUSEGRAD_USE_CBLAS  // threads: OpenBLAS's own (OMP_NUM_THREADS=1 for one)
  all.push_back(benchmark::RegisterBenchmark("BM_W2_fusegrad_dyn_blas", BM_classifier_fusegrad, &W2,
                                             path::blas));
  all.push_back(benchmark::RegisterBenchmark("BM_W3_fusegrad_dyn_blas", BM_W3_fusegrad, true));
  all.push_back(benchmark::RegisterBenchmark("BM_W4_fusegrad_dyn_blas", BM_classifier_fusegrad, &W4,
                                             path::blas));
  for (std::size_t k = 7; k < all.size(); ++k)
    all[k]->Arg(1);
#endif
  [[maybe_unused]] const std::size_t first_torch = all.size();
#if FUSEGRAD_HAVE_LIBTORCH
  all.push_back(
      benchmark::RegisterBenchmark("BM_W2_libtorch", BM_classifier_libtorch, &W2, torch_mlp));
  all.push_back(benchmark::RegisterBenchmark("BM_W3_libtorch", BM_W3_libtorch));
  all.push_back(
      benchmark::RegisterBenchmark("BM_W4_libtorch", BM_classifier_libtorch, &W4, torch_cnn));
  for (std::size_t k = first_torch; k < all.size(); ++k)
    all[k]->Arg(1)->Arg(2);
#endif
  for (auto* b : all)
    b->Unit(benchmark::kMillisecond);
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
