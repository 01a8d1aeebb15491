// fusegrad/nn/activation.hpp — activation functions over an axis (softmax, log-softmax), GELU,
// and the activation layers
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/elementwise.hpp"
#include "fusegrad/dynamic/reduce.hpp"
#include "fusegrad/nn/module.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

// log(softmax(x)) along `axis`, as x - logsumexp(x): finite for logits of any size.
inline var log_softmax(const var& x, int axis = -1) {
  return x - logsumexp(x, {axis}, true);
}
inline var softmax(const var& x, int axis = -1) {
  return exp(log_softmax(x, axis));
}
// GELU, exact (erf) form: x Phi(x).
inline var gelu(const var& x) {
  return 0.5 * x * (1.0 + erf(x * 0.7071067811865476));
}

// Layers without parameters, each one function of its input.
template <var (*F)(const var&)> class activation : public module {
 public:
  var forward(const var& x) override { return F(x); }
};
using ReLU = activation<relu>;
using Tanh = activation<tanh>;
using Sigmoid = activation<sigmoid>;
using GELU = activation<gelu>;

template <var (*F)(const var&, int)> class axis_activation : public module {
 public:
  explicit axis_activation(int axis = -1) : axis_(axis) {}
  var forward(const var& x) override { return F(x, axis_); }

 private:
  int axis_;
};
using Softmax = axis_activation<softmax>;
using LogSoftmax = axis_activation<log_softmax>;

}  // namespace fg::nn

FG_DIAGNOSTICS_END
