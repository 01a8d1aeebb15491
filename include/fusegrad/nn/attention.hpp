// fusegrad/nn/attention.hpp — scaled dot-product attention and multi-head attention (batch
// first), with PyTorch's parameter names
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/elementwise.hpp"
#include "fusegrad/dynamic/layout.hpp"
#include "fusegrad/dynamic/matmul.hpp"
#include "fusegrad/nn/activation.hpp"
#include "fusegrad/nn/linear.hpp"
#include "fusegrad/nn/module.hpp"

#include <cmath>
#include <memory>

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

// softmax(q k^T / sqrt(d) + mask) v over the last two axes: q [..., Lq, d], k and v [..., Lk, d]
// (v's last axis may differ). `mask`, when given, is added to the scores (broadcast to
// [..., Lq, Lk]): 0 where attending is allowed, a large negative number where it is not.
inline var scaled_dot_product_attention(const var& q, const var& k, const var& v,
                                        const var& mask = var()) {
  const index_t d = q.shape()[q.rank() - 1];
  var scores = matmul(q, transpose(k)) * (1.0 / std::sqrt(double(d)));
  if (mask.defined())
    scores = scores + mask;
  return matmul(softmax(scores, -1), v);
}

// A [L, L] mask that lets position i attend to positions up to i (a decoder's causal mask).
inline var causal_mask(index_t L, dtype t = dtype::float32) {
  var m = var::zeros({L, L}, t);
  for (index_t i = 0; i < L; ++i)
    for (index_t j = i + 1; j < L; ++j)
      m.set(i * L + j, -1e9);
  return m;
}

// Multi-head attention, inputs [B, L, embed]: heads attend over embed / heads features each.
// Parameters as torch.nn.MultiheadAttention's: in_proj_weight [3 embed, embed], in_proj_bias,
// out_proj.weight, out_proj.bias.
class MultiheadAttention : public module {
 public:
  MultiheadAttention(index_t embed, index_t heads, generator& g, dtype t = dtype::float32)
      : e_(embed), h_(heads) {
    if (heads < 1 || embed % heads != 0)
      throw std::invalid_argument(dynamic::text("fg::nn::MultiheadAttention: embed ", embed,
                                                " is not a multiple of heads ", heads));
    in_proj_weight = register_parameter("in_proj_weight", var::empty({3 * embed, embed}, t));
    init::xavier_uniform(in_proj_weight, embed, 3 * embed, g);
    in_proj_bias = register_parameter("in_proj_bias", var::zeros({3 * embed}, t));
    out_proj = register_module("out_proj", std::make_shared<Linear>(embed, embed, g, true, t));
  }
  // Self-attention.
  var forward(const var& x) override { return attend(x, x, x); }
  // query [B, Lq, embed], key and value [B, Lk, embed]; mask as scaled_dot_product_attention's.
  var attend(const var& query, const var& key, const var& value, const var& mask = var()) {
    for (const var* x : {&query, &key, &value})
      if (x->rank() != 3 || x->shape()[2] != e_)
        throw shape_error(dynamic::text("fg::nn::MultiheadAttention: an input is ",
                                        x->shape().str(), "; expected [B, L, ", e_, "]"));
    auto project = [&](const var& x, index_t part) {  // [B, L, E] -> [B, heads, L, E / heads]
      const var w = slice(in_proj_weight, 0, part * e_, (part + 1) * e_);
      const var b = slice(in_proj_bias, 0, part * e_, (part + 1) * e_);
      const index_t B = x.shape()[0], L = x.shape()[1];
      return transpose(reshape(linear(x, w, b), {B, L, h_, e_ / h_}), 1, 2);
    };
    const var o =
        scaled_dot_product_attention(project(query, 0), project(key, 1), project(value, 2), mask);
    const index_t B = query.shape()[0], L = query.shape()[1];
    return out_proj->forward(reshape(transpose(o, 1, 2), {B, L, e_}));
  }
  var in_proj_weight, in_proj_bias;
  std::shared_ptr<Linear> out_proj;

 private:
  index_t e_, h_;
};

}  // namespace fg::nn

FG_DIAGNOSTICS_END
