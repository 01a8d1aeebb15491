// fusegrad/nn/embedding.hpp — Embedding: rows of a learnt table picked by integer indices
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/elementwise.hpp"
#include "fusegrad/dynamic/layout.hpp"
#include "fusegrad/nn/init.hpp"
#include "fusegrad/nn/module.hpp"

#include <algorithm>
#include <memory>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

// weight [num, dim] at indices [...] (an integer tensor): [..., dim]. The gradient
// adds each output row back into the row it came from.
inline var embedding(const var& weight, const var& indices) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("embedding", {}, {&weight, &indices},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list&) {
                       return nn::embedding(ins[0], ins[1]);
                     });
  if (weight.rank() != 2)
    throw shape_error(dynamic::text("fg::nn::embedding(): the weight is ", weight.shape().str(),
                                    "; it must be [num, dim]"));
  const index_t num = weight.shape()[0], dim = weight.shape()[1];
  auto rows = std::make_shared<std::vector<index_t>>(
      dynamic::index_values("nn::embedding", indices, num,
                            dynamic::text("the rows of the weight ", weight.shape().str())));
  extents out = extents::of_rank(indices.rank() + 1);
  for (std::size_t a = 0; a < indices.rank(); ++a)
    out[a] = indices.shape()[a];
  out[indices.rank()] = dim;
  var y = var::empty(out, weight.dtype());
  dispatch(weight.dtype(), [&](auto z) {
    using T = decltype(z);
    parallel_for(0, rows->size(), fg::detail::chunk_indices(y.size(), dim),
                 [&](std::size_t i0, std::size_t i1) {
                   for (std::size_t i = i0; i < i1; ++i)
                     std::copy_n(weight.data<T>() + (*rows)[i] * dim, dim,
                                 y.data<T>() + index_t(i) * dim);
                 });
  });
  dynamic::record(y, "embedding", {weight}, [&](dynamic::node&) {
    return [rows, shape = weight.shape(), dim](const var& g) {
      var gw = var::zeros(shape, g.dtype());
      dispatch(g.dtype(), [&](auto z) {
        using T = decltype(z);
        const T* pg = g.data<T>();
        T* pw = gw.data<T>();
        // A row picked twice gets both: threads take columns, each summed in index order (the
        // same bits at any thread count).
        const index_t n = index_t(rows->size());
        parallel_for(0, dim, fg::detail::chunk_indices(n * dim, n), [&](index_t d0, index_t d1) {
          for (index_t i = 0; i < n; ++i)
            for (index_t d = d0; d < d1; ++d)
              pw[(*rows)[i] * dim + d] += pg[i * dim + d];
        });
      });
      return dynamic::var_list{gw};
    };
  });
  return y;
}

class Embedding : public module {
 public:
  // Rows standard normal, as PyTorch initialises them.
  Embedding(index_t num, index_t dim, generator& g, dtype t = dtype::float32) {
    weight = register_parameter("weight", var::randn({num, dim}, g, t));
  }
  var forward(const var& indices) override { return embedding(weight, indices); }
  var weight;
};

}  // namespace fg::nn

FG_DIAGNOSTICS_END
