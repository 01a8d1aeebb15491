// fusegrad/nn/loss.hpp — the usual losses, each the mean over the batch, built from ops whose
// gradients the tape already knows
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/layout.hpp"
#include "fusegrad/dynamic/reduce.hpp"
#include "fusegrad/nn/activation.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

namespace detail {
inline void check_targets(const char* loss, const var& scores, const var& targets) {
  if (scores.rank() != 2 || targets.rank() != 1 || targets.shape()[0] != scores.shape()[0])
    throw shape_error(dynamic::text("fg::nn::", loss, "(): scores are ", scores.shape().str(),
                                    ", targets ", targets.shape().str(),
                                    "; expected [N, classes] and [N] class indices"));
  dynamic::index_values(dynamic::text("nn::", loss).c_str(), targets, scores.shape()[1],
                        "the classes");
}
}  // namespace detail

// -mean(logp[i, target_i]) for log-probabilities [N, classes] and class indices [N] (an
// integer tensor: a float one is refused, as in PyTorch).
inline var nll_loss(const var& logp, const var& targets) {
  detail::check_targets("nll_loss", logp, targets);
  return -mean(gather(logp, 1, reshape(targets, {targets.shape()[0], 1})));
}
// Softmax cross-entropy from logits [N, classes]: log_softmax then NLL, stable for any logits.
inline var cross_entropy(const var& logits, const var& targets) {
  detail::check_targets("cross_entropy", logits, targets);
  return nll_loss(log_softmax(logits, 1), targets);
}
// mean((a - b)^2) over every element.
inline var mse_loss(const var& a, const var& b) {
  return mean(square(a - b));
}
// Binary cross-entropy of sigmoid(z) against targets y in [0, 1], from the logits z:
// softplus(z) - z y, finite for any z.
inline var binary_cross_entropy_with_logits(const var& z, const var& y) {
  if (!(z.shape() == y.shape()))
    throw shape_error(dynamic::text("fg::nn::binary_cross_entropy_with_logits(): logits are ",
                                    z.shape().str(), ", targets ", y.shape().str(),
                                    "; they must have the same shape"));
  return mean(softplus(z) - z * y);
}

}  // namespace fg::nn

FG_DIAGNOSTICS_END
