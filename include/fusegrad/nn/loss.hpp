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
// The class index of each row of scores [N, classes] from targets [N], checked (once per loss).
inline std::vector<index_t> class_indices(const char* loss, const var& scores, const var& targets) {
  if (scores.rank() != 2 || targets.rank() != 1 || targets.shape()[0] != scores.shape()[0])
    throw shape_error(dynamic::text("fg::nn::", loss, "(): scores are ", scores.shape().str(),
                                    ", targets ", targets.shape().str(),
                                    "; expected [N, classes] and [N] class indices"));
  return dynamic::index_values(dynamic::text("nn::", loss).c_str(), targets, scores.shape()[1],
                               "the classes");
}
// -mean(logp[i, t[i]]): logp's element per row gathered (as gather(logp, 1, t) would).
inline var nll(const var& logp, const std::vector<index_t>& t) {
  const index_t n = logp.shape()[0], classes = logp.shape()[1];
  auto src = std::make_shared<std::vector<std::ptrdiff_t>>(t.size());
  for (index_t i = 0; i < n; ++i)
    (*src)[i] = std::ptrdiff_t(i * classes + t[i]);
  return -mean(dynamic::take("gather", logp, {n, 1}, std::move(src)));
}
}  // namespace detail

// -mean(logp[i, target_i]) for log-probabilities [N, classes] and class indices [N] (an
// integer tensor: a float one is refused, as in PyTorch).
inline var nll_loss(const var& logp, const var& targets) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("nll_loss", {}, {&logp, &targets},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list&) {
                       return nn::nll_loss(ins[0], ins[1]);
                     });
  return detail::nll(logp, detail::class_indices("nll_loss", logp, targets));
}
// Softmax cross-entropy from logits [N, classes]: log_softmax then NLL, stable for any logits.
inline var cross_entropy(const var& logits, const var& targets) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("cross_entropy", {}, {&logits, &targets},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list&) {
                       return nn::cross_entropy(ins[0], ins[1]);
                     });
  const std::vector<index_t> t = detail::class_indices("cross_entropy", logits, targets);
  return detail::nll(log_softmax(logits, 1), t);
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
