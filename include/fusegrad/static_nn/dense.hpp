// fusegrad/static_nn/dense.hpp — a fully connected layer over static shapes: y = x W + b
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/expr/functions.hpp"
#include "fusegrad/expr/matmul.hpp"
#include "fusegrad/static_nn/init.hpp"

#include <tuple>

FG_DIAGNOSTICS_BEGIN

namespace fg::static_nn {

// Maps [batch, In] to [batch, Out]. The parameters are members: the layer is the memory.
template <class T, index_t In, index_t Out> struct dense {
  static_assert(In > 0 && Out > 0 && In != dyn && Out != dyn,
                "fg::static_nn::dense: the extents must be static and non-zero");
  static constexpr index_t in_features = In, out_features = Out;
  tensor<T, shape<In, Out>> weight;
  tensor<T, shape<Out>> bias;

  // Kaiming-uniform weights (suits ReLU nets), zero bias.
  void init(generator& g) {
    kaiming_uniform(weight, In, g);
    bias.fill(T(0));
  }
  template <operand X> auto operator()(X&& x) const {
    static_assert(std::remove_cvref_t<X>::shape_type::rank == 2,
                  "fg::static_nn::dense: the input must be a 2-D [batch, features] expression");
    return matmul(std::forward<X>(x), weight) + bias;
  }
  auto parameters() { return std::tie(weight, bias); }
  auto parameters() const { return std::tie(weight, bias); }
};

}  // namespace fg::static_nn

FG_DIAGNOSTICS_END
