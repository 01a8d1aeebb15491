// fusegrad/nn/normalization.hpp — BatchNorm2d (batch statistics in training, running ones in
// evaluation) and LayerNorm (over the last axis)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/elementwise.hpp"
#include "fusegrad/dynamic/layout.hpp"
#include "fusegrad/dynamic/reduce.hpp"
#include "fusegrad/nn/module.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

namespace detail {
// r = (1 - momentum) r + momentum v, in place (r is [C], v [1, C, 1, 1]): a BatchNorm's running
// statistics, a step with an effect in a traced graph.
inline void blend_running(const var& r_in, const var& v, double momentum) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]] {
    t->record_list("running_update", {{"momentum", momentum}}, {&r_in, &v},
                   [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                     nn::detail::blend_running(ins[0], ins[1], at.f(0));
                     return std::vector<var>{};
                   });
    return;
  }
  if (dynamic::trace_state_of_thread().dry)  // recording for fg::function: its run updates
    return;
  if (r_in.size() != v.size())
    throw shape_error(dynamic::text("fg::nn::BatchNorm2d: running statistics of ", r_in.size(),
                                    " channels given ", v.size(), " values"));
  var r = r_in;  // (the same tensor: its elements change)
  dispatch(r.dtype(), [&](auto z) {
    using T = decltype(z);
    T* p = r.tracked_data<T>();
    const T* s = v.data<T>();
    for (index_t i = 0, n = r.size(); i < n; ++i)
      p[i] = T(1 - momentum) * p[i] + T(momentum) * s[i];
  });
}
}  // namespace detail

// Normalises each channel of [N, C, H, W] over N, H and W, then scales and shifts it by the
// learnt weight and bias [C]. Training also updates the running mean and (unbiased) variance by
// `momentum`, as PyTorch does; evaluation normalises with those.
class BatchNorm2d : public module {
 public:
  explicit BatchNorm2d(index_t channels, double eps = 1e-5, double momentum = 0.1,
                       dtype t = dtype::float32)
      : c_(channels), eps_(eps), momentum_(momentum) {
    weight = register_parameter("weight", var::ones({channels}, t));
    bias = register_parameter("bias", var::zeros({channels}, t));
    running_mean = register_buffer("running_mean", var::zeros({channels}, t));
    running_var = register_buffer("running_var", var::ones({channels}, t));
  }
  var forward(const var& x) override {
    if (x.rank() != 4 || x.shape()[1] != c_)
      throw shape_error(dynamic::text("fg::nn::BatchNorm2d: x is ", x.shape().str(),
                                      "; expected [N, ", c_, ", H, W]"));
    const extents per_channel{1, c_, 1, 1};
    var mean_, var_;
    if (training()) {
      mean_ = mean(x, {0, 2, 3}, true);
      var_ = mean(square(x - mean_), {0, 2, 3}, true);
      const index_t n = x.size() / c_;
      no_grad off;  // running statistics are state, not part of the graph
      const double unbias = n > 1 ? double(n) / double(n - 1) : 1.0;
      detail::blend_running(running_mean, mean_, momentum_);
      detail::blend_running(running_var, var_ * unbias, momentum_);
    } else {
      mean_ = reshape(running_mean, per_channel);
      var_ = reshape(running_var, per_channel);
    }
    return (x - mean_) / sqrt(var_ + eps_) * reshape(weight, per_channel) +
           reshape(bias, per_channel);
  }
  var weight, bias, running_mean, running_var;

 private:
  index_t c_;
  double eps_, momentum_;
};

// Normalises over the last axis (`features` long), then scales and shifts by weight and bias.
class LayerNorm : public module {
 public:
  explicit LayerNorm(index_t features, double eps = 1e-5, dtype t = dtype::float32)
      : n_(features), eps_(eps) {
    weight = register_parameter("weight", var::ones({features}, t));
    bias = register_parameter("bias", var::zeros({features}, t));
  }
  var forward(const var& x) override {
    if (x.rank() < 1 || x.shape()[x.rank() - 1] != n_)
      throw shape_error(dynamic::text("fg::nn::LayerNorm: x is ", x.shape().str(),
                                      "; its last axis must be ", n_));
    const var m = mean(x, {-1}, true);
    const var centred = x - m;
    const var v = mean(square(centred), {-1}, true);
    return centred / sqrt(v + eps_) * weight + bias;
  }
  var weight, bias;

 private:
  index_t n_;
  double eps_;
};

}  // namespace fg::nn

FG_DIAGNOSTICS_END
