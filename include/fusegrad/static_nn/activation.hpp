// fusegrad/static_nn/activation.hpp — activations as layers, and softmax over the last axis
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/expr/functions.hpp"
#include "fusegrad/expr/reduce.hpp"
#include "fusegrad/ops/unary.hpp"

#include <tuple>

namespace fg::static_nn {

// Any unary op of the table (or a user's) as a parameterless layer; it fuses into the
// surrounding pass.
template <class Op> struct activation {
  template <operand X> auto operator()(X&& x) const { return fg::apply<Op>(std::forward<X>(x)); }
  std::tuple<> parameters() const { return {}; }
};
using relu = activation<ops::relu_op>;
using tanh = activation<ops::tanh_op>;
using sigmoid = activation<ops::sigmoid_op>;

// Probabilities along the last axis, computed stably as exp(x - logsumexp(x)).
template <operand X> auto softmax(X&& x) {
  constexpr int last = int(std::remove_cvref_t<X>::shape_type::rank) - 1;
  return exp(x - logsumexp<true>(x, axes<last>{}));
}

}  // namespace fg::static_nn
