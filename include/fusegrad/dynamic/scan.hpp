// fusegrad/dynamic/scan.hpp — cumsum and cumprod along a dim, differentiable (integers: int64,
// as PyTorch)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/layout.hpp"

#include <cstdint>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg {

namespace dynamic {

// Calls f(first, stride, len) for every line of extents e along axis k (first: the element
// offset of the line's start; its elements are stride apart).
template <class F> void for_each_line(const extents& e, std::size_t k, F f) {
  const axis_view v(e, k);
  for (index_t o = 0; o < v.outer; ++o)
    for (index_t i = 0; i < v.inner; ++i)
      f(o * v.len * v.inner + i, v.inner, v.len);
}

// Running sums (Prod false) or products along axis k, in x's computing dtype T (or a wrapping
// int64 for integers).
template <bool Prod, class T> void scan_lines(const extents& e, std::size_t k, const T* x, T* y) {
  for_each_line(e, k, [&](index_t first, index_t stride, index_t len) {
    T acc = T(Prod ? 1 : 0);
    for (index_t j = 0; j < len; ++j) {
      const index_t at = first + j * stride;
      acc = Prod ? acc * x[at] : acc + x[at];
      y[at] = acc;
    }
  });
}

template <bool Prod> var scan(const char* op, const var& x, int dim) {
  const std::size_t k = normalize_axis(op, dim, x.rank());
  if (!is_floating(x.dtype())) {  // integers and bool: int64, wrapping, not differentiable
    const var xi = x.to(dtype::int64);
    var y = var::empty(x.shape(), dtype::int64);
    const std::int64_t* px = xi.data<std::int64_t>();
    std::vector<wrapping_int> in(px, px + x.size()), out(in.size());
    scan_lines<Prod>(x.shape(), k, in.data(), out.data());
    std::int64_t* py = y.data<std::int64_t>();
    for (std::size_t i = 0; i < out.size(); ++i)
      py[i] = out[i].v;
    return y;
  }
  if (compute_dtype(x.dtype()) != x.dtype())  // float16, bfloat16: in float32
    return scan<Prod>(op, x.to(dtype::float32), dim).to(x.dtype());
  var y = var::empty(x.shape(), x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    scan_lines<Prod>(x.shape(), k, x.data<T>(), y.data<T>());
  });
  record(y, op, {x}, [&](node& n) {
    return [x = n.save(x), y = n.save(y.detach()), k](const var& g) {
      var gx = var::empty(x.shape(), x.dtype());
      dispatch(x.dtype(), [&](auto z) {
        using T = decltype(z);
        const T *px = x.data<T>(), *py = y.data<T>(), *pg = g.data<T>();
        T* d = gx.data<T>();
        for_each_line(x.shape(), k, [&](index_t first, index_t stride, index_t len) {
          auto at = [&](index_t j) { return first + j * stride; };
          // d x_i = sum over j >= i of g_j d y_j / d x_i: for a sum, g summed from the end.
          T acc = T(0);
          bool zero = false;
          for (index_t j = len; j-- > 0;) {
            acc += Prod ? pg[at(j)] * py[at(j)] : pg[at(j)];
            d[at(j)] = acc;
            zero = zero || px[at(j)] == T(0);
          }
          if (!Prod)
            return;
          if (!zero) {  // d y_j / d x_i = y_j / x_i
            for (index_t j = 0; j < len; ++j)
              d[at(j)] /= px[at(j)];
            return;
          }
          // A zero in the line: the product of the others, term by term (PyTorch's result).
          for (index_t i = 0; i < len; ++i) {
            T before = T(1), sum = T(0);
            for (index_t m = 0; m < i; ++m)
              before *= px[at(m)];
            for (index_t j = i; j < len; ++j) {
              before *= j > i ? px[at(j)] : T(1);
              sum += pg[at(j)] * before;
            }
            d[at(i)] = sum;
          }
        });
      });
      return var_list{gx};
    };
  });
  return y;
}

}  // namespace dynamic

// Running sums and products along `dim`, as torch.cumsum and torch.cumprod: the same dtype for
// floats (differentiable; cumprod's gradient is exact at zeros too), int64 for integers and
// bool.
inline var cumsum(const var& x, int dim) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("cumsum", {{"dim", dim}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return cumsum(ins[0], int(at.i(0)));
                     });
  return dynamic::scan<false>("cumsum", x, dim);
}
inline var cumprod(const var& x, int dim) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("cumprod", {{"dim", dim}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return cumprod(ins[0], int(at.i(0)));
                     });
  return dynamic::scan<true>("cumprod", x, dim);
}

}  // namespace fg

FG_DIAGNOSTICS_END
