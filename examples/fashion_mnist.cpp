// examples/fashion_mnist.cpp — the main job: train the W4 CNN on Fashion-MNIST to at least 90%
// test accuracy, save it as safetensors, reload it into a fresh model and check that it scores
// the same.
//
//   fashion_mnist [epochs = 3] [data dir = /usr/share/datasets/fashion-mnist] [out =
//   model.safetensors]
//
// The data is Debian's `dataset-fashion-mnist` package (IDX files, gzip). Exit status 1 when the
// reloaded model is below 90% or differs from the trained one.
#include <fusegrad/io/idx.hpp>
#include <fusegrad/io/safetensors.hpp>
#include <fusegrad/nn.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace nn = fg::nn;

// conv 1->32 3x3, ReLU, maxpool 2; conv 32->64 3x3, ReLU, maxpool 2; linear 1600->10.
nn::Sequential make_model(fg::generator& g) {
  return nn::Sequential(nn::Conv2d(1, 32, 3, g), nn::ReLU(), nn::MaxPool2d(2),
                        nn::Conv2d(32, 64, 3, g), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
                        nn::Linear(1600, 10, g));
}

// Images as [N, 1, 28, 28], standardised with the training set's mean and deviation of the
// pixel values (0.2860 and 0.3530); labels as [N] int64.
nn::batch load(const std::string& dir, const char* part) {
  fg::var x = fg::io::read_idx(dir + "/" + part + "-images-idx3-ubyte.gz");
  fg::var y = fg::io::read_idx(dir + "/" + part + "-labels-idx1-ubyte.gz", fg::int64);
  const fg::index_t n = x.shape()[0];
  return {fg::reshape((x * (1.0 / 255.0) - 0.2860) * (1.0 / 0.3530), {n, 1, 28, 28}), y};
}

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::atoi(argv[1]) : 4;
  const std::string dir = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
  const std::string out = argc > 3 ? argv[3] : "model.safetensors";
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(clock::now() - t0).count(); };

  const nn::batch train = load(dir, "train"), test = load(dir, "t10k");  // the test set validates
  std::printf("Fashion-MNIST: %lld training and %lld test images\n",
              (long long)train.inputs.shape()[0], (long long)test.inputs.shape()[0]);

  fg::generator g(42);
  nn::Sequential model = make_model(g);
  nn::Adam opt(model.parameters(), {.lr = 2e-3});
  nn::DataLoader train_batches(train.inputs, train.targets, 64, true, 7);
  nn::DataLoader test_batches(test.inputs, test.targets, 1000, false);
  nn::CosineLR cosine(opt, epochs * train_batches.batches());  // to 0 over the run
  nn::ScheduleCallback per_batch(cosine, true);
  nn::fit(model, train_batches, nn::cross_entropy, opt,
          {.epochs = epochs, .validation = &test_batches, .callbacks = {&per_batch}});

  const double trained = nn::evaluate(model, test_batches, nn::cross_entropy).second;
  fg::io::save_safetensors(out, model.state_dict());
  fg::generator other(1);
  nn::Sequential reloaded = make_model(other);  // different weights until loaded
  reloaded.load_state_dict(fg::io::load_safetensors(out));
  const double again = nn::evaluate(reloaded, test_batches, nn::cross_entropy).second;
  std::printf("saved to %s; reloaded: test accuracy %.2f%% (trained: %.2f%%), %.0f s in all\n",
              out.c_str(), 100 * again, 100 * trained, seconds());
  return again >= 0.90 && again == trained ? 0 : 1;
}
