// fusegrad/static_nn/loss.hpp — losses as callables for the trainer, and one-hot/accuracy helpers
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/expr/functions.hpp"
#include "fusegrad/expr/loss.hpp"
#include "fusegrad/expr/reduce.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg::static_nn {

// Mean softmax cross-entropy of logits [batch, classes] against one-hot (or soft) targets.
struct cross_entropy {
  template <operand Z, operand Y> auto operator()(Z&& logits, Y&& target) const {
    return mean(softmax_cross_entropy(std::forward<Z>(logits), std::forward<Y>(target)));
  }
};
// Mean squared error.
struct mse {
  template <operand P, operand Y> auto operator()(P&& pred, Y&& target) const {
    return mean(square(std::forward<P>(pred) - std::forward<Y>(target)));
  }
};

// Row r of `out` becomes the one-hot vector of labels[r].
template <class T, index_t B, index_t C, class Label>
void one_hot(const Label (&labels)[B], tensor<T, shape<B, C>>& out) {
  out.fill(T(0));
  for (index_t r = 0; r < B; ++r)
    out(r, index_t(labels[r])) = T(1);
}

// The column of the largest value in row r of a [rows, columns] tensor (first one on ties).
template <class T, class S> index_t argmax_row(const tensor<T, S>& t, index_t r) {
  static_assert(S::rank == 2, "fg::static_nn::argmax_row(): the tensor must be 2-D");
  const index_t c = t.extent(1);
  index_t best = 0;
  for (index_t j = 1; j < c; ++j)
    if (t(r, j) > t(r, best))
      best = j;
  return best;
}
// Rows whose largest score sits where the target's largest value does.
template <class T, class S>
index_t count_correct(const tensor<T, S>& scores, const tensor<T, S>& target) {
  index_t n = 0;
  for (index_t r = 0; r < scores.extent(0); ++r)
    n += argmax_row(scores, r) == argmax_row(target, r);
  return n;
}

}  // namespace fg::static_nn

FG_DIAGNOSTICS_END
