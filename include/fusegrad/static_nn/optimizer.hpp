// fusegrad/static_nn/optimizer.hpp — SGD (with momentum) and Adam updates as fused passes
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/exec/assign.hpp"
#include "fusegrad/expr/functions.hpp"
#include "fusegrad/ops/update.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg::static_nn {

// An optimiser holds its hyperparameters and says, per parameter tensor P, what state it keeps
// (`slot<P>`, sized at compile time). `begin_step()` runs once per step, then `update(p, g, s)`
// once per parameter, each update one pass over the parameter.

// p -= lr (g + weight_decay p)
struct sgd {
  float lr = 0.01f;
  float weight_decay = 0.0f;
  template <class P> struct slot {};
  void begin_step() {}
  template <class P, class G> void update(P& p, const G& g, slot<P>&) const {
    using T = typename P::value_type;
    if (weight_decay != 0.0f)
      p = p - T(lr) * update::decayed(g, p, T(weight_decay));
    else
      p = p - T(lr) * g;
  }
};

// v = momentum v + (g + weight_decay p); p -= lr v, or with Nesterov p -= lr (g + momentum v).
struct momentum_sgd {
  float lr = 0.01f;
  float momentum = 0.9f;
  float weight_decay = 0.0f;
  bool nesterov = false;
  template <class P> struct slot { P velocity; };
  void begin_step() {}
  template <class P, class G> void update(P& p, const G& g, slot<P>& s) const {
    using T = typename P::value_type;
    s.velocity = update::velocity(s.velocity, update::decayed(g, p, T(weight_decay)), T(momentum));
    if (nesterov)
      p = p - T(lr) * update::nesterov_direction(update::decayed(g, p, T(weight_decay)), s.velocity,
                                                 T(momentum));
    else
      p = p - T(lr) * s.velocity;
  }
};

// Adam (Kingma & Ba) with bias correction; weight_decay is decoupled as in AdamW.
struct adam {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  template <class P> struct slot { P m, v; };
  float beta1_power = 1.0f, beta2_power = 1.0f;  // state: beta^t, for the bias correction
  void begin_step() {
    beta1_power *= beta1;
    beta2_power *= beta2;
  }
  template <class P, class G> void update(P& p, const G& g, slot<P>& s) const {
    using T = typename P::value_type;
    s.m = update::first_moment(s.m, g, T(beta1));
    s.v = update::second_moment(s.v, g, T(beta2));
    const T step = T(lr) / T(1 - beta1_power), corr2 = T(1) / T(1 - beta2_power);
    p = p * T(1 - lr * weight_decay) -
        update::adam_step(s.m, s.v, step, corr2, T(eps), [](const auto& x) { return sqrt(x); });
  }
};

}  // namespace fg::static_nn

FG_DIAGNOSTICS_END
