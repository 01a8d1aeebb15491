// fusegrad/nn/dropout.hpp — Dropout: in training, each element zeroed with probability p and the
// rest scaled by 1 / (1 - p); in evaluation, the identity
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/elementwise.hpp"
#include "fusegrad/nn/module.hpp"

#include <memory>
#include <stdexcept>

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

// x times a fresh mask from `g` (the mask is a constant: the gradient is masked the same way).
inline var dropout(const var& x, double p, generator& g) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("dropout", {{"p", p}, {"generator", &g}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return dynamic::draw_from(at.gen(1), [&](generator& g) {
                         return nn::dropout(ins[0], at.f(0), g);
                       });
                     });
  if (!(p >= 0 && p < 1))
    throw std::invalid_argument(
        dynamic::text("fg::nn::dropout(): p is ", p, "; it must be in [0, 1)"));
  if (p == 0)
    return x;
  const var keep = var::rand(x.shape(), g, x.dtype()) >= p;
  return x * (keep * (1.0 / (1.0 - p)));
}

class Dropout : public module {
 public:
  // The masks come from the layer's own generator, seeded here: the same seed, the same run
  // (and checkpoints save its state: nn::save_checkpoint).
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0)
      : p_(p), gen_(register_generator("generator", std::make_shared<generator>(seed))) {
    if (!(p >= 0 && p < 1))
      throw std::invalid_argument(
          dynamic::text("fg::nn::Dropout: p is ", p, "; it must be in [0, 1)"));
  }
  var forward(const var& x) override { return training() ? dropout(x, p_, *gen_) : x; }

 private:
  double p_;
  std::shared_ptr<generator> gen_;
};

}  // namespace fg::nn

FG_DIAGNOSTICS_END
