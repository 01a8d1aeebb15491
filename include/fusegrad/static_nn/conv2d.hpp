// fusegrad/static_nn/conv2d.hpp — 2-D convolution, max and average pooling and flatten over static
// shapes, for inference (what fg::freeze makes of a CNN)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/expr/layout.hpp"
#include "fusegrad/static_nn/init.hpp"

#include <cstddef>
#include <tuple>
#include <type_traits>

FG_DIAGNOSTICS_BEGIN

namespace fg::static_nn {

namespace detail {
// x as a tensor: itself when it is one, else evaluated into `buf` (one fused pass).
template <class T, class S, class X> const tensor<T, S>& materialize(X&& x, tensor<T, S>& buf) {
  if constexpr (is_tensor_v<std::remove_cvref_t<X>>) {
    return x;
  } else {
    buf = x;
    return buf;
  }
}
template <class X, class In> constexpr void check_input() {
  static_assert(std::is_same_v<typename std::remove_cvref_t<X>::shape_type, In>,
                "fg::static_nn: a window layer is given an input of another shape than the one "
                "it was declared for");
}
}  // namespace detail

// Input [B, C, H, W] (the shape `In`) -> [B, O, Ho, Wo]: O filters of C x KH x KW, `Stride`
// apart, over the input padded by `Pad` zeros (cross-correlation, as fg::nn::conv2d and
// PyTorch). Its output, and its input when given an expression, are members: the layer is its
// memory. A window layer computes loops rather than an expression, so fg::static_nn's trainer,
// which differentiates expressions, does not train it: a model with one runs inference.
template <class T, class In, index_t O, index_t KH, index_t KW, index_t Stride = 1,
          index_t Pad = 0>
struct conv2d {
  static_assert(In::rank == 4 && In::is_static, "fg::static_nn::conv2d: In is shape<B, C, H, W>");
  static constexpr index_t B = In::static_extents[0], C = In::static_extents[1],
                           H = In::static_extents[2], W = In::static_extents[3];
  static constexpr index_t Ho = (H + 2 * Pad - KH) / Stride + 1,
                           Wo = (W + 2 * Pad - KW) / Stride + 1;
  static_assert(H + 2 * Pad >= KH && W + 2 * Pad >= KW && Stride > 0,
                "fg::static_nn::conv2d: the kernel does not fit the padded input");
  tensor<T, shape<O, C, KH, KW>> weight;
  tensor<T, shape<O>> bias;

  template <operand X> const tensor<T, shape<B, O, Ho, Wo>>& operator()(X&& x) const {
    detail::check_input<X, In>();
    const tensor<T, In>& in = detail::materialize(std::forward<X>(x), in_);
    for (index_t b = 0; b < B; ++b)
      for (index_t o = 0; o < O; ++o)
        for (index_t i = 0; i < Ho; ++i)
          for (index_t j = 0; j < Wo; ++j) {
            T acc = bias[o];
            for (index_t c = 0; c < C; ++c)
              for (index_t u = 0; u < KH; ++u) {
                // (window positions in the padding are negative: index_t is unsigned)
                const auto r = std::ptrdiff_t(i * Stride + u) - std::ptrdiff_t(Pad);
                if (r < 0 || r >= std::ptrdiff_t(H))
                  continue;
                for (index_t v = 0; v < KW; ++v) {
                  const auto s = std::ptrdiff_t(j * Stride + v) - std::ptrdiff_t(Pad);
                  if (s >= 0 && s < std::ptrdiff_t(W))
                    acc += in(b, c, index_t(r), index_t(s)) * weight(o, c, u, v);
                }
              }
            out_(b, o, i, j) = acc;
          }
    return out_;
  }
  auto parameters() { return std::tie(weight, bias); }
  auto parameters() const { return std::tie(weight, bias); }

 private:
  mutable tensor<T, In> in_;
  mutable tensor<T, shape<B, O, Ho, Wo>> out_;
};

// K x K windows `Stride` apart over [B, C, H, W] (the shape `In`): the largest element of each
// (a NaN wins, as in PyTorch), or their mean.
template <bool Max, class T, class In, index_t K, index_t Stride = K> struct pool2d {
  static_assert(In::rank == 4 && In::is_static, "fg::static_nn::pool2d: In is shape<B, C, H, W>");
  static constexpr index_t B = In::static_extents[0], C = In::static_extents[1],
                           H = In::static_extents[2], W = In::static_extents[3];
  static constexpr index_t Ho = (H - K) / Stride + 1, Wo = (W - K) / Stride + 1;
  static_assert(H >= K && W >= K && Stride > 0, "fg::static_nn::pool2d: the window does not fit");

  template <operand X> const tensor<T, shape<B, C, Ho, Wo>>& operator()(X&& x) const {
    detail::check_input<X, In>();
    const tensor<T, In>& in = detail::materialize(std::forward<X>(x), in_);
    for (index_t b = 0; b < B; ++b)
      for (index_t c = 0; c < C; ++c)
        for (index_t i = 0; i < Ho; ++i)
          for (index_t j = 0; j < Wo; ++j) {
            T acc = Max ? in(b, c, i * Stride, j * Stride) : T(0);
            for (index_t u = 0; u < K; ++u)
              for (index_t v = 0; v < K; ++v) {
                const T e = in(b, c, i * Stride + u, j * Stride + v);
                if constexpr (Max)
                  acc = (e > acc || e != e) && acc == acc ? e : acc;
                else
                  acc += e;
              }
            out_(b, c, i, j) = Max ? acc : acc / T(K * K);
          }
    return out_;
  }
  std::tuple<> parameters() const { return {}; }

 private:
  mutable tensor<T, In> in_;
  mutable tensor<T, shape<B, C, Ho, Wo>> out_;
};
template <class T, class In, index_t K, index_t Stride = K>
using max_pool2d = pool2d<true, T, In, K, Stride>;
template <class T, class In, index_t K, index_t Stride = K>
using avg_pool2d = pool2d<false, T, In, K, Stride>;

// [B, ...] -> [B, features], an expression (no copy of its own).
struct flatten {
  template <operand X> auto operator()(X&& x) const {
    using S = typename std::remove_cvref_t<X>::shape_type;
    static_assert(S::is_static && S::rank >= 2, "fg::static_nn::flatten: a static [B, ...] input");
    constexpr index_t b = S::static_extents[0];
    return reshape<shape<b, size_of(S::static_extents) / b>>(std::forward<X>(x));
  }
  std::tuple<> parameters() const { return {}; }
};

}  // namespace fg::static_nn

FG_DIAGNOSTICS_END
