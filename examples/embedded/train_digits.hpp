// examples/embedded/train_digits.hpp — the program both builds run: a 64-32-10 MLP trained on
// the device with Adam, its loss printed as it falls, then evaluated on held-out digits.
//
// Everything lives in static storage sized at compile time: the model, the trainer (gradients,
// Adam's moments, the step's workspace) and one batch. Nothing is allocated.
#pragma once

#include "console.hpp"
#include "digits.hpp"

#include <fusegrad/static_nn.hpp>

namespace nn = fg::static_nn;

namespace train_digits {

inline constexpr fg::index_t batch = 16, test_batch = 20;
inline constexpr int steps = 400, test_batches = 25, report_every = 25;

using model_t =
    nn::sequential<nn::dense<float, digits::pixels, 32>, nn::relu_layer, nn::dense<float, 32, 10>>;
using input_t = fg::tensor<float, fg::shape<batch, digits::pixels>>;
using target_t = fg::tensor<float, fg::shape<batch, digits::classes>>;
using trainer_t = nn::trainer<model_t, nn::cross_entropy, nn::adam, input_t, target_t>;

// The firmware defines this to put the training state in a linker section of its own.
#ifndef TRAIN_DIGITS_SECTION
#define TRAIN_DIGITS_SECTION
#endif
TRAIN_DIGITS_SECTION inline model_t model;
TRAIN_DIGITS_SECTION inline trainer_t trainer(model, nn::adam{0.01f});
// A budget checked when compiling: parameters, gradients, Adam state and the step's workspace.
static_assert(trainer_t::memory.total() <= 96 * 1024, "the training step outgrew its RAM budget");
inline input_t x;
inline target_t y;
inline fg::tensor<float, fg::shape<test_batch, digits::pixels>> test_x;
inline fg::tensor<float, fg::shape<test_batch, digits::classes>> test_y, test_scores;

// Platform: write(const char*), and ticks() from a free-running counter with `tick_bits` bits
// (SysTick's 24 on Cortex-M); the per-step figure printed is in those ticks.
template <class Platform> int run(Platform& platform) {
  console<Platform&> out{platform};
  constexpr auto mem = trainer_t::memory;
  out << "fusegrad on-device training: MLP 64-32-10, batch " << batch << ", Adam\n"
      << "step memory (compile-time): parameters " << mem.parameters << " B, gradients "
      << mem.gradients << " B, Adam state " << mem.optimizer_state << " B, workspace "
      << mem.workspace << " B, total " << mem.total() << " B\n";

  nn::generator init(2024), train_data(1), test_data(99);
  model.init(init);
  float first = 0, last = 0, window = 0;
  std::uint64_t step_ticks = 0;
  constexpr std::uint32_t mask =
      Platform::tick_bits >= 32 ? 0xFFFFFFFFu : (std::uint32_t(1) << Platform::tick_bits) - 1;
  for (int s = 1; s <= steps; ++s) {
    digits::batch(train_data, x, y);
    const std::uint32_t t0 = platform.ticks();
    const float loss = trainer.step(x, y);
    const std::uint32_t t1 = platform.ticks();
    step_ticks += Platform::counts_down ? (t0 - t1) & mask : (t1 - t0) & mask;
    window += loss;
    if (s == 1)
      first = loss;
    if (s % report_every == 0) {
      last = window / float(report_every);
      out << "step " << s << " loss " << fixed{last, 4} << "\n";
      window = 0;
    }
  }
  fg::index_t correct = 0;
  for (int b = 0; b < test_batches; ++b) {
    digits::batch(test_data, test_x, test_y);
    test_scores = model(test_x);
    correct += nn::count_correct(test_scores, test_y);
  }
  const fg::index_t total = test_batch * test_batches;
  const float accuracy = 100.0f * float(correct) / float(total);
  out << "ticks per training step: " << step_ticks / steps << "\n"
      << "test accuracy: " << correct << "/" << total << " = " << fixed{accuracy, 1} << "%\n";
  const bool ok = last < 0.5f * first && accuracy >= 90.0f;
  out << "loss " << fixed{first, 4} << " -> " << fixed{last, 4} << (ok ? ": PASS\n" : ": FAIL\n");
  return ok ? 0 : 1;
}

}  // namespace train_digits
