// examples/embedded/freeze_digits.cpp — the firmware route: train two digit classifiers on the
// host with fg::nn (eager, dynamic shapes), trace their forward passes, and freeze each into a
// C++ header that a Cortex-M build includes (fg::freeze: an fg::static_nn model, its weights as
// constexpr arrays). The MLP trains further on the device; the CNN runs inference.
//
//   freeze_digits <dir>   writes <dir>/frozen_mlp.hpp, <dir>/frozen_cnn.hpp and
//                         <dir>/frozen_expected.hpp (a test batch and the host's logits for it,
//                         for frozen_check.hpp)
#include "digits.hpp"

#include <fusegrad/io/freeze.hpp>
#include <fusegrad/nn.hpp>

#include <cstdio>
#include <fstream>
#include <string>

namespace nn = fg::nn;

namespace {

constexpr fg::index_t batch = 32, test_batch = 256, frozen_batch = 16;

// A batch of digits as vars: images [B, 64] float32, labels [B] int64.
template <fg::index_t B> void draw(fg::static_nn::generator& g, fg::var& images, fg::var& labels) {
  fg::tensor<float, fg::shape<B, digits::pixels>> x;
  fg::tensor<float, fg::shape<B, digits::classes>> y;
  digits::batch(g, x, y);
  images = fg::var::from(std::span<const float>(x.data(), std::size_t(x.size())),
                         {B, digits::pixels});
  labels = fg::argmax(fg::var::from(std::span<const float>(y.data(), std::size_t(y.size())),
                                    {B, digits::classes}),
                      1);
}

// Trains `model` on images shaped by `view`, freezes it, and returns its held-out accuracy and
// its logits for the frozen batch.
template <class View>
double train_and_freeze(nn::module& model, View view, const std::string& path,
                        const char* name_space, const fg::var& frozen_images, fg::var& logits) {
  nn::Adam opt(model.parameters(), {.lr = 0.01});
  fg::static_nn::generator data(1), test_data(99);
  fg::var images, labels;
  for (int step = 0; step < 600; ++step) {
    draw<batch>(data, images, labels);
    opt.zero_grad();
    nn::cross_entropy(model.forward(view(images)), labels).backward();
    opt.step();
  }
  draw<test_batch>(test_data, images, labels);
  const double accuracy =
      fg::mean((fg::argmax(model.forward(view(images)), 1) == labels).to(fg::float32)).item();
  // The header's model takes batches of frozen_batch images: the batch traced.
  const fg::graph forward = fg::trace([&](const fg::var& x) { return model.forward(x); },
                                      view(frozen_images));
  fg::freeze(forward, path, {.name_space = name_space});
  logits = model.forward(view(frozen_images));
  return accuracy;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: freeze_digits <dir>\n");
    return 2;
  }
  const std::string dir = argv[1];
  fg::generator init(2024);
  nn::Sequential mlp(nn::Linear(digits::pixels, 32, init), nn::ReLU(),
                     nn::Linear(32, digits::classes, init));
  nn::Sequential cnn(nn::Conv2d(1, 4, 3, init, 1, 1), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
                     nn::Linear(64, digits::classes, init));
  fg::static_nn::generator frozen_data(7);
  fg::var images, labels, mlp_logits, cnn_logits;
  draw<frozen_batch>(frozen_data, images, labels);
  const double mlp_accuracy = train_and_freeze(
      mlp, [](const fg::var& x) { return x; }, dir + "/frozen_mlp.hpp", "frozen_mlp", images,
      mlp_logits);
  const double cnn_accuracy = train_and_freeze(
      cnn, [](const fg::var& x) { return fg::reshape(x, {x.shape()[0], 1, 8, 8}); },
      dir + "/frozen_cnn.hpp", "frozen_cnn", images, cnn_logits);

  std::ofstream expected(dir + "/frozen_expected.hpp");
  expected << "// Written by freeze_digits: a test batch and the host's fg::nn logits for it.\n"
              "#pragma once\n\nnamespace frozen_expected {\n\n";
  fg::detail::freezing::array(expected, "float", "images", images, true);
  fg::detail::freezing::array(expected, "float", "mlp_logits", mlp_logits, true);
  fg::detail::freezing::array(expected, "float", "cnn_logits", cnn_logits, true);
  expected << "\n}  // namespace frozen_expected\n";
  std::printf("trained on the host: held-out accuracy MLP %.3f, CNN %.3f; frozen into %s\n",
              mlp_accuracy, cnn_accuracy, dir.c_str());
  return mlp_accuracy >= 0.9 && cnn_accuracy >= 0.9 && expected ? 0 : 1;
}
