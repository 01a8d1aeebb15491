// fusegrad/nn/pool.hpp — 2-D max and average pooling of NCHW vars (no padding), and their layers
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/elementwise.hpp"
#include "fusegrad/nn/module.hpp"

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

namespace detail {

struct pool_geometry {
  index_t planes, h, w, k, stride, ho, wo;
};

inline pool_geometry pool_shape(const char* op, const var& x, index_t k, index_t stride) {
  const extents& s = x.shape();
  if (s.rank() != 4 || k < 1 || stride < 1 || s[2] < k || s[3] < k)
    throw shape_error(dynamic::text("fg::nn::", op, "(): x is ", s.str(), ", kernel ", k,
                                    ", stride ", stride,
                                    "; x must be [N, C, H, W] with H and W at least the kernel, "
                                    "kernel and stride at least 1"));
  return {s[0] * s[1], s[2], s[3], k, stride, (s[2] - k) / stride + 1, (s[3] - k) / stride + 1};
}

// Calls for_planes(p0, p1) over the (image, channel) planes, on several threads: a window reads
// and writes its own plane only, so planes are independent and the results do not depend on the
// thread count.
template <class F> void parallel_planes(const pool_geometry& g, F for_planes) {
  parallel_for(0, g.planes, fg::detail::chunk_indices(g.planes * g.h * g.w, g.h * g.w), for_planes);
}
// Calls f(input offset of the window's first element, output offset) window by window.
template <class F> void for_each_window(const pool_geometry& g, F f) {
  parallel_planes(g, [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p)
      for (index_t y = 0; y < g.ho; ++y)
        for (index_t x = 0; x < g.wo; ++x) {
          const index_t base = p * g.h * g.w + y * g.stride * g.w + x * g.stride;
          f(base, (p * g.ho + y) * g.wo + x);
        }
  });
}

}  // namespace detail

// The largest element of each k x k window, windows `stride` apart (default: k, no overlap).
// The gradient goes to that element (the first of equal ones).
inline var max_pool2d(const var& x, index_t k, index_t stride = 0) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("max_pool2d", {{"kernel", k}, {"stride", stride}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return nn::max_pool2d(ins[0], index_t(at.i(0)), index_t(at.i(1)));
                     });
  const auto g = detail::pool_shape("max_pool2d", x, k, stride ? stride : k);
  const extents& s = x.shape();
  var y = var::empty({s[0], s[1], g.ho, g.wo}, x.dtype());
  auto arg = std::make_shared<std::vector<std::uint32_t>>(std::size_t(y.size()));
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    detail::for_each_window(g, [&](index_t base, index_t o) {
      // Branch-free: on real activations which element wins is a coin toss, and a branch on it
      // was mispredicted half the time (86% of the pass, by perf). The first of equal ones
      // wins; a NaN wins over any number, and the last NaN of the window over an earlier one,
      // as in PyTorch (the result is NaN, and its gradient goes there).
      T best = px[base];
      index_t at_best = base;
      for (index_t i = 0; i < g.k; ++i)
        for (index_t j = 0; j < g.k; ++j) {
          const index_t at = base + i * g.w + j;
          const T v = px[at];
          const bool wins = v > best || v != v;
          best = wins ? v : best;
          at_best = wins ? at : at_best;
        }
      py[o] = best;
      (*arg)[std::size_t(o)] = std::uint32_t(at_best);
    });
  });
  dynamic::record(y, "max_pool2d", {x}, [&](dynamic::node&) {
    return [arg, g, xs = s](const var& gy) {
      var dx = var::zeros(xs, gy.dtype());
      dispatch(gy.dtype(), [&](auto z) {
        using T = decltype(z);
        const T* pg = gy.data<T>();
        T* pd = dx.data<T>();
        detail::parallel_planes(g,
                                [&](index_t p0, index_t p1) {  // a window's winner is in its plane
                                  for (std::size_t o = p0 * g.ho * g.wo; o < p1 * g.ho * g.wo; ++o)
                                    pd[(*arg)[o]] += pg[o];
                                });
      });
      return dynamic::var_list{dx};
    };
  });
  return y;
}

// The mean of each k x k window, windows `stride` apart (default: k).
inline var avg_pool2d(const var& x, index_t k, index_t stride = 0) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("avg_pool2d", {{"kernel", k}, {"stride", stride}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return nn::avg_pool2d(ins[0], index_t(at.i(0)), index_t(at.i(1)));
                     });
  const auto g = detail::pool_shape("avg_pool2d", x, k, stride ? stride : k);
  const extents& s = x.shape();
  var y = var::empty({s[0], s[1], g.ho, g.wo}, x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T scale = T(1) / T(g.k * g.k);
    detail::for_each_window(g, [&](index_t base, index_t o) {
      T acc = 0;
      for (index_t i = 0; i < g.k; ++i)
        for (index_t j = 0; j < g.k; ++j)
          acc += px[base + i * g.w + j];
      py[o] = acc * scale;
    });
  });
  dynamic::record(y, "avg_pool2d", {x}, [&](dynamic::node&) {
    return [g, xs = s](const var& gy) {
      var dx = var::zeros(xs, gy.dtype());
      dispatch(gy.dtype(), [&](auto z) {
        using T = decltype(z);
        const T* pg = gy.data<T>();
        T* pd = dx.data<T>();
        const T scale = T(1) / T(g.k * g.k);
        detail::for_each_window(g, [&](index_t base, index_t o) {
          for (index_t i = 0; i < g.k; ++i)
            for (index_t j = 0; j < g.k; ++j)
              pd[base + i * g.w + j] += pg[o] * scale;
        });
      });
      return dynamic::var_list{dx};
    };
  });
  return y;
}

class MaxPool2d : public module {
 public:
  explicit MaxPool2d(index_t kernel, index_t stride = 0) : k_(kernel), s_(stride) {}
  var forward(const var& x) override { return max_pool2d(x, k_, s_); }

 private:
  index_t k_, s_;
};
class AvgPool2d : public module {
 public:
  explicit AvgPool2d(index_t kernel, index_t stride = 0) : k_(kernel), s_(stride) {}
  var forward(const var& x) override { return avg_pool2d(x, k_, s_); }

 private:
  index_t k_, s_;
};

}  // namespace fg::nn

FG_DIAGNOSTICS_END
