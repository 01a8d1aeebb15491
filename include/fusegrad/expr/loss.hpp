// fusegrad/expr/loss.hpp — fused losses: softmax cross-entropy per row (a fusion boundary)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/message.hpp"
#include "fusegrad/expr/node.hpp"
#include "fusegrad/ops/loss.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg {
namespace expr {

// Written as logsumexp(z) - sum(z * y) the logits would appear twice in the expression, and
// the whole network below them would run twice forward and twice backward. As one node they
// are computed once and the backward is the closed form of ops::softmax_cross_entropy_op.
template <class Z, class Y> struct softmax_cross_entropy : node_base {
  using sz = typename Z::shape_type;
  using sy = typename Y::shape_type;
  static_assert(sz::rank == 2 && sy::rank == 2,
                "fg::softmax_cross_entropy(): logits and targets must be 2-D [batch, classes]");
  static_assert(std::is_same_v<typename Z::value_type, typename Y::value_type>,
                "fg::softmax_cross_entropy(): logits and targets must share an element type");
  static_assert((sz::static_extents[0] == dyn || sy::static_extents[0] == dyn ||
                 sz::static_extents[0] == sy::static_extents[0]) &&
                    (sz::static_extents[1] == dyn || sy::static_extents[1] == dyn ||
                     sz::static_extents[1] == sy::static_extents[1]),
                "fg::softmax_cross_entropy(): logits and targets must have the same shape");
  static_assert(sz::static_extents[1] != 0,
                "fg::softmax_cross_entropy(): there must be at least one class");
  using value_type = typename Z::value_type;
  using shape_type = shape<sz::static_extents[0]>;

  Z logits;
  Y target;

  softmax_cross_entropy(Z z, Y y) : logits(std::move(z)), target(std::move(y)) {
    if (logits.dims() != target.dims()) {
      fg::detail::message msg;
      msg << "fg::softmax_cross_entropy(): logits are " << logits.dims() << ", targets are "
          << target.dims() << "; they must have the same shape";
      raise_shape_error(msg.c_str());
    }
    if (logits.dims()[1] == 0)
      raise_shape_error("fg::softmax_cross_entropy(): there must be at least one class");
  }
  dims_t<1> dims() const { return {logits.dims()[0]}; }
};

}  // namespace expr

// The softmax cross-entropy of each row of `logits` [batch, classes] against `target` of the
// same shape (one-hot rows, or probabilities): a [batch] expression, usually averaged with
// fg::mean. Gradients flow to the logits and, if asked for, to the targets.
template <operand Z, operand Y> auto softmax_cross_entropy(Z&& logits, Y&& target) {
  auto z = detail::as_node<value_type_t<Z>>(std::forward<Z>(logits));
  auto y = detail::as_node<value_type_t<Y>>(std::forward<Y>(target));
  return expr::softmax_cross_entropy<decltype(z), decltype(y)>(std::move(z), std::move(y));
}

}  // namespace fg

FG_DIAGNOSTICS_END
