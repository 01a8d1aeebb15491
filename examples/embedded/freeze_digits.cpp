// examples/embedded/freeze_digits.cpp — the firmware route: train the digits MLP on the host with
// fg::nn (eager, dynamic shapes), trace its forward pass, and freeze it into a C++ header that a
// Cortex-M build includes (fg::freeze: an fg::static_nn model, weights as constexpr arrays).
//
//   freeze_digits <dir>   writes <dir>/frozen_digits.hpp, and <dir>/frozen_digits_expected.hpp
//                         (a test batch and the host's logits for it, for frozen_check.hpp)
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

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: freeze_digits <dir>\n");
    return 2;
  }
  const std::string dir = argv[1];
  fg::generator init(2024);
  nn::Sequential model(nn::Linear(digits::pixels, 32, init), nn::ReLU(),
                       nn::Linear(32, digits::classes, init));
  nn::Adam opt(model.parameters(), {.lr = 0.01});
  fg::static_nn::generator data(1), test_data(99);
  fg::var images, labels;
  for (int step = 0; step < 600; ++step) {
    draw<batch>(data, images, labels);
    opt.zero_grad();
    nn::cross_entropy(model.forward(images), labels).backward();
    opt.step();
  }
  draw<test_batch>(test_data, images, labels);
  const double accuracy =
      fg::mean((fg::argmax(model.forward(images), 1) == labels).to(fg::float32)).item();
  // The header's model takes batches of frozen_batch images: the batch traced.
  images = fg::slice(images, 0, 0, frozen_batch);
  const fg::graph forward =
      fg::trace([&](const fg::var& x) { return model.forward(x); }, images);
  fg::freeze(forward, dir + "/frozen_digits.hpp", {.name_space = "frozen_digits"});
  const fg::var logits = model.forward(images);
  std::ofstream expected(dir + "/frozen_digits_expected.hpp");
  expected << "// Written by freeze_digits: a test batch and the host's fg::nn logits for it.\n"
              "#pragma once\n\nnamespace frozen_digits::expected {\n\n";
  fg::detail::freezing::array(expected, "float", "images", images, true);
  fg::detail::freezing::array(expected, "float", "logits", logits, true);
  expected << "\n}  // namespace frozen_digits::expected\n";
  std::printf("trained on the host: test accuracy %.3f; frozen into %s/frozen_digits.hpp\n",
              accuracy, dir.c_str());
  return accuracy >= 0.9 && expected ? 0 : 1;
}
