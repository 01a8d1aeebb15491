// fusegrad/static_nn/activation.hpp — activations as layers, and softmax over the last axis
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/expr/functions.hpp"
#include "fusegrad/expr/reduce.hpp"
#include "fusegrad/ops/unary.hpp"

#include <tuple>

FG_DIAGNOSTICS_BEGIN

namespace fg::static_nn {

// Any unary op of the table (or a user's) as a parameterless layer; it fuses into the
// surrounding pass.
template <class Op> struct activation {
  template <operand X> auto operator()(X&& x) const { return fg::apply<Op>(std::forward<X>(x)); }
  std::tuple<> parameters() const { return {}; }
};
// Named *_layer so that `using namespace` of fg and fg::static_nn together stays unambiguous.
using relu_layer = activation<ops::relu_op>;
using tanh_layer = activation<ops::tanh_op>;
using sigmoid_layer = activation<ops::sigmoid_op>;

// Probabilities along the last axis, computed stably as exp(x - logsumexp(x)).
// x becomes one node first: a temporary tensor is owned once, then read by both uses.
template <operand X> auto softmax(X&& x) {
  auto n = fg::detail::as_node<value_type_t<X>>(std::forward<X>(x));
  constexpr int last = int(decltype(n)::shape_type::rank) - 1;
  return exp(n - logsumexp<true>(n, axes<last>{}));
}

}  // namespace fg::static_nn

FG_DIAGNOSTICS_END
