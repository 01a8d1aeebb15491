// fusegrad/nn/normalization.hpp — BatchNorm2d (batch statistics in training, running ones in
// evaluation), LayerNorm (over the last axis), GroupNorm, InstanceNorm2d and RMSNorm
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/elementwise.hpp"
#include "fusegrad/dynamic/layout.hpp"
#include "fusegrad/dynamic/reduce.hpp"
#include "fusegrad/nn/module.hpp"

#include <limits>
#include <optional>

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
    throw shape_error(dynamic::text("fg::nn: running statistics of ", r_in.size(),
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
// [1, C, 1, ...] of rank r: a per-channel tensor [C] broadcast over [N, C, ...].
inline var per_channel(const var& v, index_t c, std::size_t r) {
  extents e = extents::of_rank(r);
  for (std::size_t k = 0; k < r; ++k)
    e[k] = k == 1 ? c : 1;
  return reshape(v, e);
}
// x normalised by its mean and (biased) variance over `axes`.
inline var standardise(const var& x, list_arg<int> axes, double eps) {
  const var centred = x - mean(x, axes, true);
  return centred / sqrt(mean(square(centred), axes, true) + eps);
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
      if (x.size() == c_)  // (PyTorch refuses too: a variance of one value is 0, silently)
        throw shape_error(dynamic::text(
            "fg::nn::BatchNorm2d: x is ", x.shape().str(),
            "; training needs more than 1 value per channel (a batch of several, or H * W > 1), "
            "or switch the module to eval()"));
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
    return detail::standardise(x, {-1}, eps_) * weight + bias;
  }
  var weight, bias;

 private:
  index_t n_;
  double eps_;
};

// Normalises [N, C, ...] over each group of C / groups channels (and every axis after them),
// then, when `affine`, scales and shifts each channel by weight and bias [C], as
// torch.nn.GroupNorm. No running statistics: training and evaluation compute the same.
class GroupNorm : public module {
 public:
  GroupNorm(index_t groups, index_t channels, double eps = 1e-5, bool affine = true,
            dtype t = dtype::float32)
      : g_(groups), c_(channels), eps_(eps) {
    if (groups < 1 || channels % groups != 0)
      throw std::invalid_argument(dynamic::text(
          "fg::nn::GroupNorm: ", channels, " channels do not divide into ", groups, " groups"));
    if (affine) {
      weight = register_parameter("weight", var::ones({channels}, t));
      bias = register_parameter("bias", var::zeros({channels}, t));
    }
  }
  var forward(const var& x) override {
    if (x.rank() < 2 || x.shape()[1] != c_)
      throw shape_error(dynamic::text("fg::nn::GroupNorm: x is ", x.shape().str(),
                                      "; expected [N, ", c_, ", ...]"));
    const index_t n = x.shape()[0];
    const index_t per_group = n ? x.size() / (n * g_) : 0;
    var y = reshape(detail::standardise(reshape(x, {n, g_, per_group}), {-1}, eps_), x.shape());
    if (weight.defined())
      y = y * detail::per_channel(weight, c_, x.rank()) + detail::per_channel(bias, c_, x.rank());
    return y;
  }
  var weight, bias;  // undefined without `affine`

 private:
  index_t g_, c_;
  double eps_;
};

// Normalises each channel of each sample of [N, C, H, W] (or unbatched [C, H, W]) over H and W,
// as torch.nn.InstanceNorm2d; `affine` adds weight and bias [C]. With `track_running_stats`,
// training also updates running_mean and running_var (the batch's average of each sample's
// mean and unbiased variance, by `momentum`) and evaluation normalises with them; without it
// (PyTorch's default) both use each sample's own statistics.
class InstanceNorm2d : public module {
 public:
  explicit InstanceNorm2d(index_t channels, double eps = 1e-5, double momentum = 0.1,
                          bool affine = false, bool track_running_stats = false,
                          dtype t = dtype::float32)
      : c_(channels), eps_(eps), momentum_(momentum) {
    if (affine) {
      weight = register_parameter("weight", var::ones({channels}, t));
      bias = register_parameter("bias", var::zeros({channels}, t));
    }
    if (track_running_stats) {
      running_mean = register_buffer("running_mean", var::zeros({channels}, t));
      running_var = register_buffer("running_var", var::ones({channels}, t));
    }
  }
  var forward(const var& x) override {
    if (x.rank() == 3 && x.shape()[0] == c_)  // unbatched
      return reshape(forward(reshape(x, {1, c_, x.shape()[1], x.shape()[2]})), x.shape());
    if (x.rank() != 4 || x.shape()[1] != c_)
      throw shape_error(dynamic::text("fg::nn::InstanceNorm2d: x is ", x.shape().str(),
                                      "; expected [N, ", c_, ", H, W] or [", c_, ", H, W]"));
    const index_t spatial = x.shape()[2] * x.shape()[3];
    const bool own_stats = training() || !running_mean.defined();
    var y;
    if (own_stats) {
      if (spatial == 1)  // (PyTorch refuses too: each variance would be 0)
        throw shape_error(dynamic::text("fg::nn::InstanceNorm2d: x is ", x.shape().str(),
                                        "; each sample's channel needs more than 1 value (H * W "
                                        "> 1) to be normalised by its own statistics"));
      const var m = mean(x, {2, 3}, true);
      const var centred = x - m;
      const var v = mean(square(centred), {2, 3}, true);
      y = centred / sqrt(v + eps_);
      if (training() && running_mean.defined()) {
        no_grad off;  // running statistics are state, not part of the graph
        const double unbias = double(spatial) / double(spatial - 1);
        detail::blend_running(running_mean, mean(m, {0}, true), momentum_);
        detail::blend_running(running_var, mean(v, {0}, true) * unbias, momentum_);
      }
    } else {
      y = (x - detail::per_channel(running_mean, c_, 4)) /
          sqrt(detail::per_channel(running_var, c_, 4) + eps_);
    }
    if (weight.defined())
      y = y * detail::per_channel(weight, c_, 4) + detail::per_channel(bias, c_, 4);
    return y;
  }
  var weight, bias;               // undefined without `affine`
  var running_mean, running_var;  // undefined without `track_running_stats`

 private:
  index_t c_;
  double eps_, momentum_;
};

// Root-mean-square normalisation over the trailing axes `shape` (as torch.nn.RMSNorm):
// x / sqrt(mean(x^2) + eps), times weight [shape] when `elementwise_affine`. Without an eps,
// the machine epsilon of x's dtype (PyTorch's default).
class RMSNorm : public module {
 public:
  explicit RMSNorm(list_arg<index_t> shape, std::optional<double> eps = std::nullopt,
                   bool elementwise_affine = true, dtype t = dtype::float32)
      : shape_(shape.begin(), shape.end()), eps_(eps) {
    if (shape_.empty() || shape_.size() > max_rank)
      throw std::invalid_argument(
          "fg::nn::RMSNorm: give the extents of 1 to fg::max_rank "
          "trailing axes");
    if (elementwise_affine) {
      extents e = extents::of_rank(shape_.size());
      for (std::size_t k = 0; k < shape_.size(); ++k)
        e[k] = shape_[k];
      weight = register_parameter("weight", var::ones(e, t));
    }
  }
  explicit RMSNorm(index_t features, std::optional<double> eps = std::nullopt,
                   bool elementwise_affine = true, dtype t = dtype::float32)
      : RMSNorm(list_arg<index_t>{features}, eps, elementwise_affine, t) {}
  var forward(const var& x) override {
    const std::size_t k = shape_.size();
    bool fits = x.rank() >= k;
    for (std::size_t a = 0; fits && a < k; ++a)
      fits = x.shape()[x.rank() - k + a] == shape_[a];
    if (!fits) {
      std::string want;
      for (index_t e : shape_)
        want += (want.empty() ? "" : ", ") + std::to_string(e);
      throw shape_error(dynamic::text("fg::nn::RMSNorm: x is ", x.shape().str(),
                                      "; its last axes must be [", want, "]"));
    }
    std::vector<int> axes;
    for (std::size_t a = 0; a < k; ++a)
      axes.push_back(-int(k - a));
    const double eps = eps_ ? *eps_ : epsilon_of(x.dtype());
    const var y = x / sqrt(mean(square(x), axes, true) + eps);
    return weight.defined() ? y * weight : y;
  }
  var weight;  // undefined without `elementwise_affine`

  // torch.finfo(t).eps: the distance from 1 to the next number of dtype t.
  static double epsilon_of(dtype t) {
    switch (t) {
      case dtype::float64:
        return std::numeric_limits<double>::epsilon();
      case dtype::float16:
        return 1.0 / 1024;
      case dtype::bfloat16:
        return 1.0 / 128;
      default:
        return double(std::numeric_limits<float>::epsilon());
    }
  }

 private:
  std::vector<index_t> shape_;
  std::optional<double> eps_;
};

}  // namespace fg::nn

FG_DIAGNOSTICS_END
