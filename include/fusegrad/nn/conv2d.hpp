// fusegrad/nn/conv2d.hpp — 2-D convolution (cross-correlation, as PyTorch's) of NCHW vars
// through im2col and the library's GEMM, one op on the tape, and the Conv2d layer
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/parallel.hpp"
#include "fusegrad/nn/linear.hpp"

#include <algorithm>
#include <cstddef>
#include <type_traits>

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

namespace detail {

// The sizes of one convolution; q = n * ho * wo columns, one per output pixel of the batch.
struct conv_geometry {
  index_t n, c, h, w, o, kh, kw, stride, pad, ho, wo;
  index_t pixels() const { return ho * wo; }
  index_t q() const { return n * ho * wo; }
  index_t ckk() const { return c * kh * kw; }
};

// Elements of work below which a layer's loops stay on one thread (fg::parallel_for's grain).
inline constexpr index_t conv_grain = 16384;
// The grain for a loop over planes of `pixels` elements each.
inline index_t planes_grain(index_t pixels) {
  return std::max<index_t>(1, conv_grain / std::max<index_t>(1, pixels));
}

// For every (input channel, kernel row, kernel column) r and output pixel q of the batch:
// cols[r][q] = x at the pixel's window position, 0 in the padding. With `add`, the reverse:
// x (zeroed by the caller) += cols scattered back (the gradient of im2col). Each (input channel,
// image) pair touches only its own plane of x and its own part of cols, so the pairs run on
// several threads, and a plane's sums keep their order.
template <bool Add, class T>
void im2col(const conv_geometry& g, std::conditional_t<Add, T, const T>* x, T* cols) {
  using sidx = std::ptrdiff_t;  // window positions in the padding are negative
  const index_t Q = g.q(), P = g.pixels();
  const sidx s = sidx(g.stride), H = sidx(g.h), W = sidx(g.w), wo = sidx(g.wo);
  parallel_for(0, g.c * g.n, planes_grain(g.kh * g.kw * P), [&](index_t p0, index_t p1) {
    for (index_t pair = p0; pair < p1; ++pair) {
      const index_t ci = pair / g.n, img = pair % g.n;
      auto* plane = x + (img * g.c + ci) * g.h * g.w;
      for (index_t i = 0; i < g.kh; ++i)
        for (index_t j = 0; j < g.kw; ++j) {
          T* row = cols + ((ci * g.kh + i) * g.kw + j) * Q;
          // The output columns [lo, hi) whose input column xo s + dx lies inside the image.
          const sidx dx = sidx(j) - sidx(g.pad);
          const sidx lo = std::min(wo, dx >= 0 ? 0 : (-dx + s - 1) / s);
          const sidx hi = std::max(lo, std::min(wo, W - dx > 0 ? (W - dx - 1) / s + 1 : 0));
          for (index_t y = 0; y < g.ho; ++y) {
            const sidx sy = sidx(y * g.stride + i) - sidx(g.pad);
            T* out = row + img * P + y * g.wo;
            if (sy < 0 || sy >= H) {
              if constexpr (!Add)
                std::fill_n(out, g.wo, T(0));
              continue;
            }
            auto* in = plane + sy * W;  // in[xo s + dx] for xo in [lo, hi)
            if constexpr (Add) {
              for (sidx xo = lo; xo < hi; ++xo)
                in[xo * s + dx] += out[xo];
            } else {
              std::fill_n(out, lo, T(0));
              if (s == 1)
                std::copy_n(in + (lo + dx), hi - lo, out + lo);
              else
                for (sidx xo = lo; xo < hi; ++xo)
                  out[xo] = in[xo * s + dx];
              std::fill_n(out + hi, wo - hi, T(0));
            }
          }
        }
    }
  });
}

}  // namespace detail

// x [N, C, H, W] convolved with w [O, C, kh, kw], plus b [O] (or undefined): [N, O, Ho, Wo],
// Ho = (H + 2 padding - kh) / stride + 1 (likewise Wo).
inline var conv2d(const var& x, const var& w, const var& b = var(), index_t stride = 1,
                  index_t padding = 0) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("conv2d", {{"stride", stride}, {"padding", padding}}, {&x, &w, &b},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return nn::conv2d(ins[0], ins[1], ins[2], index_t(at.i(0)),
                                         index_t(at.i(1)));
                     });
  dynamic::check_dtypes("conv2d", x, w);
  if (b.defined())
    dynamic::check_dtypes("conv2d", x, b);
  const extents &sx = x.shape(), &sw = w.shape();
  auto fail = [&](const char* why) {
    throw shape_error(dynamic::text("fg::nn::conv2d(): x is ", sx.str(), ", weight ", sw.str(),
                                    ", bias ", b.defined() ? b.shape().str() : std::string("none"),
                                    ", stride ", stride, ", padding ", padding, "; ", why));
  };
  if (sx.rank() != 4 || sw.rank() != 4)
    fail("x must be [N, C, H, W] and weight [O, C, kh, kw]");
  if (sw[1] != sx[1])
    fail("the weight's input channels must equal x's channels");
  if (b.defined() && !(b.shape() == extents{sw[0]}))
    fail("the bias must be [O]");
  if (stride < 1)
    fail("the stride must be at least 1");
  detail::conv_geometry g{sx[0], sx[1], sx[2], sx[3], sw[0], sw[2], sw[3], stride, padding, 0, 0};
  if (g.h + 2 * padding < g.kh || g.w + 2 * padding < g.kw)
    fail("the kernel is larger than the padded input");
  g.ho = (g.h + 2 * padding - g.kh) / stride + 1;
  g.wo = (g.w + 2 * padding - g.kw) / stride + 1;
  const index_t Q = g.q(), P = g.pixels(), R = g.ckk();
  var cols = var::empty({R, Q}, x.dtype());
  var y = var::empty({g.n, g.o, g.ho, g.wo}, x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    detail::im2col<false, T>(g, x.data<T>(), cols.data<T>());
    var t = var::empty({g.o, Q}, x.dtype());  // W [O, R] cols [R, Q]
    detail::gemm<T>(g.o, Q, R, w.data<T>(), false, cols.data<T>(), false, t.data<T>());
    T* py = y.data<T>();
    const T* pt = t.data<T>();
    const T* pb = b.defined() ? b.data<T>() : nullptr;
    parallel_for(0, g.n * g.o, detail::planes_grain(P), [&](index_t k0, index_t k1) {
      for (index_t k = k0; k < k1; ++k) {  // plane k of y: image k / O, channel k % O
        const index_t img = k / g.o, o = k % g.o;
        const T bias = pb ? pb[o] : T(0);
        const T* src = pt + o * Q + img * P;
        for (index_t p = 0; p < P; ++p)
          py[k * P + p] = src[p] + bias;
      }
    });
  });
  std::vector<var> inputs{x, w};
  if (b.defined())
    inputs.push_back(b);
  dynamic::record(y, "conv2d", inputs, [&](dynamic::node& n) {
    // The backward reads the columns (x's values when the op ran), never x itself.
    return [cols, w = n.save(w), xs = sx, g, needs = n.wants()](const var& gy) {
      dynamic::var_list grads(needs.size());
      const index_t Q = g.q(), P = g.pixels(), R = g.ckk();
      dispatch(gy.dtype(), [&](auto z) {
        using T = decltype(z);
        var g2v = var::empty({g.o, Q}, gy.dtype());  // gy as [O, Q]
        T* g2 = g2v.data<T>();
        const T* pg = gy.data<T>();
        parallel_for(0, g.n * g.o, detail::planes_grain(P), [&](index_t k0, index_t k1) {
          for (index_t k = k0; k < k1; ++k)
            std::copy_n(pg + k * P, P, g2 + (k % g.o) * Q + (k / g.o) * P);
        });
        if (needs[0]) {  // dx = col2im(W^T g2)
          var dcols = var::empty({R, Q}, gy.dtype());
          detail::gemm<T>(R, Q, g.o, w.data<T>(), true, g2, false, dcols.data<T>());
          grads[0] = var::zeros(xs, gy.dtype());
          detail::im2col<true, T>(g, grads[0].template data<T>(), dcols.data<T>());
        }
        if (needs[1]) {  // dW = g2 cols^T
          grads[1] = var::empty(w.shape(), gy.dtype());
          detail::gemm<T>(g.o, R, Q, g2, false, cols.template data<T>(), true,
                          grads[1].template data<T>());
        }
        if (needs.size() > 2 && needs[2]) {  // db: the sums of g2's rows
          grads[2] = var::empty({g.o}, gy.dtype());
          for (index_t o = 0; o < g.o; ++o)
            grads[2].template data<T>()[o] = dynamic::sum_contiguous(g2 + o * Q, Q);
        }
      });
      return grads;
    };
  });
  return y;
}

// A 2-D convolution layer: [N, in, H, W] -> [N, out, Ho, Wo]. Weights and bias as PyTorch
// initialises them (uniform, bound 1 / sqrt(in kh kw)), from the generator given.
class Conv2d : public module {
 public:
  Conv2d(index_t in, index_t out, index_t kernel, generator& g, index_t stride = 1,
         index_t padding = 0, bool bias = true, dtype t = dtype::float32)
      : stride_(stride), padding_(padding) {
    weight = register_parameter("weight", var::empty({out, in, kernel, kernel}, t));
    const double bound = 1.0 / std::sqrt(double(in * kernel * kernel));
    init::uniform(weight, -bound, bound, g);
    if (bias) {
      this->bias = register_parameter("bias", var::empty({out}, t));
      init::uniform(this->bias, -bound, bound, g);
    }
  }
  var forward(const var& x) override { return conv2d(x, weight, bias, stride_, padding_); }
  var weight, bias;

 private:
  index_t stride_, padding_;
};

}  // namespace fg::nn

FG_DIAGNOSTICS_END
