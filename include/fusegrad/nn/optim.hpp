// fusegrad/nn/optim.hpp — SGD (momentum, Nesterov, weight decay), Adam and AdamW over a model's
// parameters, and step and cosine learning-rate schedules. The update rules are ops/update.hpp's,
// which the static path's optimisers use too.
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/parallel.hpp"
#include "fusegrad/dynamic/tape.hpp"
#include "fusegrad/dynamic/var.hpp"
#include "fusegrad/ops/update.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

namespace detail {
// 2^53: the largest count a checkpoint's float64 entries hold with every smaller whole number.
inline constexpr double max_count = 9007199254740992.0;
}  // namespace detail

class optimizer {
 public:
  virtual ~optimizer() = default;
  // One update of every parameter that has a gradient (those without one are left alone).
  void step() {
    ++steps_;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      var& p = params_[i];
      const var g = p.grad();
      if (!g.defined())
        continue;
      update(i, p, g);
    }
  }
  void zero_grad() {
    for (var& p : params_)
      p.zero_grad();
  }
  double lr;  // schedules change it between steps
  long steps() const { return steps_; }

  // The optimiser's state (its buffers by parameter index, its step count and learning rate),
  // for checkpoints: load_state_dict() of a like optimiser over like parameters resumes it.
  std::map<std::string, var> state_dict() const {
    std::map<std::string, var> sd;
    for (std::size_t i = 0; i < state_.size(); ++i)
      sd[dynamic::text("state.", i / slots_, ".", i % slots_)] = state_[i];  // slots_ > 0 here
    sd["steps"] = var::scalar(double(steps_), dtype::float64);
    sd["lr"] = var::scalar(lr, dtype::float64);
    return sd;
  }
  // All or nothing: a state dict check_state_dict refuses leaves the optimiser as it was.
  void load_state_dict(const std::map<std::string, var>& sd) {
    check_state_dict(sd);
    for (std::size_t i = 0; i < state_.size(); ++i)
      state_[i].copy_from(sd.at(dynamic::text("state.", i / slots_, ".", i % slots_)));
    steps_ = long(sd.at("steps").item());
    lr = sd.at("lr").item();
  }
  // Throws, naming the entry, unless sd has this optimiser's tensors, shapes and dtypes, a step
  // count that is a whole number in [0, 2^53] and a finite, non-negative lr.
  void check_state_dict(const std::map<std::string, var>& sd) const {
    for (const auto& [name, v] : state_dict()) {
      auto it = sd.find(name);
      if (it == sd.end() || !(it->second.shape() == v.shape()) || it->second.dtype() != v.dtype())
        throw std::invalid_argument(
            dynamic::text("fg::nn::optimizer::load_state_dict(): '", name,
                          it == sd.end() ? "' is missing"
                                         : "' has another shape or dtype than this optimiser's"));
    }
    const double steps = sd.at("steps").item(), rate = sd.at("lr").item();
    if (!(steps >= 0 && steps <= detail::max_count && steps == std::floor(steps)))
      throw std::invalid_argument(dynamic::text("fg::nn::optimizer::load_state_dict(): 'steps' is ",
                                                steps,
                                                "; a step count is a whole number from 0 to 2^53"));
    if (!(rate >= 0 && std::isfinite(rate)))
      throw std::invalid_argument(dynamic::text("fg::nn::optimizer::load_state_dict(): 'lr' is ",
                                                rate, "; a learning rate is finite and >= 0"));
  }

 protected:
  optimizer(std::vector<var> params, double lr, std::size_t slots)
      : lr(lr), params_(std::move(params)) {
    for (const var& p : params_) {
      if (!p.requires_grad())
        throw std::invalid_argument(
            "fg::nn::optimizer: a parameter does not require a gradient (pass "
            "model.parameters())");
      for (std::size_t s = 0; s < slots; ++s)
        state_.push_back(var::zeros(p.shape(), p.dtype()));
    }
    slots_ = slots;
  }
  // Parameter i's state tensor s (momentum, moments), zero at first.
  template <class T> T* slot(std::size_t i, std::size_t s) {
    return state_[i * slots_ + s].template data<T>();
  }
  // Updates parameter i from its gradient g, in place.
  virtual void update(std::size_t i, var& p, const var& g) = 0;

 private:
  std::vector<var> params_, state_;
  std::size_t slots_ = 0;
  long steps_ = 0;
};

// An optimiser whose rule is `Derived::apply<T>(i, p, g, k0, k1)`, over elements [k0, k1) of
// parameter i, its gradient and its state: large parameters are updated in blocks on several
// threads (each element's update is the same). The write is tracked (version bumped): a
// backward through a graph that read the old values refuses to run.
template <class Derived> class optimizer_of : public optimizer {
 protected:
  using optimizer::optimizer;
  void update(std::size_t i, var& p, const var& g) override {
    dispatch(p.dtype(), [&](auto z) {
      using T = decltype(z);
      T* pp = p.tracked_data<T>();
      const T* gp = g.data<T>();
      parallel_for(0, p.size(), 16384, [&](index_t k0, index_t k1) {
        static_cast<Derived*>(this)->apply(i, pp, gp, k0, k1);
      });
    });
  }
};

struct sgd_options {
  double lr = 0.01, momentum = 0, weight_decay = 0;
  bool nesterov = false;
};
// As torch.optim.SGD (dampening 0): d = g + wd p; with momentum v = mu v + d, and d = v (or
// d + mu v with Nesterov); p -= lr d.
class SGD : public optimizer_of<SGD> {
 public:
  SGD(std::vector<var> params, sgd_options o)
      : optimizer_of(std::move(params), o.lr, o.momentum != 0 ? 1 : 0), o_(o) {
    if (o.nesterov && o.momentum == 0)
      throw std::invalid_argument("fg::nn::SGD: Nesterov needs a momentum");
  }
  template <class T> void apply(std::size_t i, T* p, const T* g, index_t k0, index_t k1) {
    const T lr_ = T(lr), mu = T(o_.momentum), wd = T(o_.weight_decay);
    T* v = o_.momentum != 0 ? slot<T>(i, 0) : nullptr;
    for (index_t k = k0; k < k1; ++k) {
      T d = update::decayed(g[k], p[k], wd);
      if (v) {
        v[k] = update::velocity(v[k], d, mu);
        d = o_.nesterov ? update::nesterov_direction(d, v[k], mu) : v[k];
      }
      p[k] -= lr_ * d;
    }
  }

 private:
  sgd_options o_;
};

struct adam_options {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
};
// Adam (Kingma & Ba) with bias correction; `Decoupled` (AdamW) shrinks p by lr wd instead of
// adding wd p to the gradient (Adam's L2, as torch.optim.Adam).
template <bool Decoupled> class adam_family : public optimizer_of<adam_family<Decoupled>> {
 public:
  adam_family(std::vector<var> params, adam_options o)
      : optimizer_of<adam_family>(std::move(params), o.lr, 2), o_(o) {}
  template <class T> void apply(std::size_t i, T* p, const T* g, index_t k0, index_t k1) {
    const double t = double(this->steps());
    const T lr_t = T(this->lr / (1 - std::pow(o_.beta1, t)));
    const T c2 = T(1 / (1 - std::pow(o_.beta2, t)));
    const T b1 = T(o_.beta1), b2 = T(o_.beta2), eps = T(o_.eps), wd = T(o_.weight_decay);
    const T shrink = T(1 - this->lr * o_.weight_decay);
    T* m = this->template slot<T>(i, 0);
    T* s = this->template slot<T>(i, 1);
    auto root = [](T x) { return std::sqrt(x); };
    for (index_t k = k0; k < k1; ++k) {
      const T gk = Decoupled ? g[k] : update::decayed(g[k], p[k], wd);
      m[k] = update::first_moment(m[k], gk, b1);
      s[k] = update::second_moment(s[k], gk, b2);
      p[k] =
          (Decoupled ? p[k] * shrink : p[k]) - update::adam_step(m[k], s[k], lr_t, c2, eps, root);
    }
  }

 private:
  adam_options o_;
};
using Adam = adam_family<false>;
using AdamW = adam_family<true>;

// Learning-rate schedules, stepped once per epoch: lr = lr0 gamma^floor(epoch / step_size), or
// from lr0 down to `min_lr` along half a cosine over `epochs`.
class StepLR {
 public:
  StepLR(optimizer& opt, long step_size, double gamma = 0.1)
      : opt_(opt), lr0_(opt.lr), step_size_(step_size), gamma_(gamma) {}
  void step() { opt_.lr = lr0_ * std::pow(gamma_, double(++epoch_ / step_size_)); }

 private:
  optimizer& opt_;
  double lr0_;
  long step_size_, epoch_ = 0;
  double gamma_;
};
class CosineLR {
 public:
  CosineLR(optimizer& opt, long epochs, double min_lr = 0)
      : opt_(opt), lr0_(opt.lr), epochs_(epochs), min_lr_(min_lr) {}
  void step() {
    const double t = std::min(1.0, double(++epoch_) / double(epochs_));
    opt_.lr = min_lr_ + (lr0_ - min_lr_) * 0.5 * (1 + std::cos(std::numbers::pi * t));
  }

 private:
  optimizer& opt_;
  double lr0_;
  long epochs_, epoch_ = 0;
  double min_lr_;
};

}  // namespace fg::nn

FG_DIAGNOSTICS_END
