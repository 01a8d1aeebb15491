// fusegrad/ops/update.hpp — the optimisers' update rules, written once over any operand: the
// static path applies them to expressions (one fused pass per parameter), the dynamic path to
// the elements of a var
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/config.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg::update {

// The gradient with L2 weight decay: g + wd p.
template <class G, class P, class T> auto decayed(const G& g, const P& p, T wd) {
  return g + wd * p;
}
// SGD with momentum (as PyTorch): v' = mu v + d, where d is the decayed gradient.
template <class V, class D, class T> auto velocity(const V& v, const D& d, T mu) {
  return mu * v + d;
}
// The step direction after the velocity update: v', or with Nesterov d + mu v'.
template <class D, class V, class T> auto nesterov_direction(const D& d, const V& v, T mu) {
  return d + mu * v;
}
// Adam's moments: m' = b1 m + (1 - b1) g and s' = b2 s + (1 - b2) g^2.
template <class M, class G, class T> auto first_moment(const M& m, const G& g, T b1) {
  return b1 * m + (T(1) - b1) * g;
}
template <class S, class G, class T> auto second_moment(const S& s, const G& g, T b2) {
  return b2 * s + (T(1) - b2) * (g * g);
}
// Adam's step, bias-corrected: lr_t m' / (sqrt(s' c2) + eps), with lr_t = lr / (1 - b1^t) and
// c2 = 1 / (1 - b2^t). `root` is the square root of the operand kind (std::sqrt or fg::sqrt).
template <class M, class S, class T, class Sqrt>
auto adam_step(const M& m, const S& s, T lr_t, T c2, T eps, Sqrt root) {
  return lr_t * m / (root(s * c2) + eps);
}

}  // namespace fg::update

FG_DIAGNOSTICS_END
