// fusegrad/dynamic/indexing.hpp — PyTorch's indexing on vars: stepped slices, narrow,
// index_select, flip, permute, squeeze/unsqueeze, repeat/expand, pad, masked_fill,
// masked_select, chunk; each differentiable where it moves float data
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/layout.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg {

namespace dynamic {

// For each axis of the result, the index along x's same axis each position reads, or -1 for
// "the fill value" (constant padding). One map serves flip, stepped slices, index_select, pad
// and repeat; the gradient adds g back through it (positions read twice add twice).
using axis_maps = std::vector<std::vector<sindex_t>>;

inline var map_axes(const char* name, const var& x, const axis_maps& maps, double fill = 0) {
  const std::size_t r = x.rank();
  extents out = extents::of_rank(r);
  for (std::size_t a = 0; a < r; ++a)
    out[a] = index_t(maps[a].size());
  const strides xs = broadcast_strides(x.shape(), x.shape());
  // The source element of every result element (-1: the fill), in row-major order.
  auto src = std::make_shared<std::vector<std::ptrdiff_t>>();
  src->reserve(std::size_t(out.size()));
  for_each_index(out, [&](const auto& idx) {
    std::ptrdiff_t off = 0;
    for (std::size_t a = 0; a < r && off >= 0; ++a) {
      const sindex_t i = maps[a][std::size_t(idx[a])];
      off = i < 0 ? -1 : off + xs[a] * std::ptrdiff_t(i);
    }
    src->push_back(off);
  });
  return take(name, x, out, std::move(src), fill);
}

// The identity map of every axis of x.
inline axis_maps identity_maps(const var& x) {
  axis_maps m(x.rank());
  for (std::size_t a = 0; a < x.rank(); ++a)
    for (index_t i = 0; i < x.shape()[a]; ++i)
      m[a].push_back(sindex_t(i));
  return m;
}

}  // namespace dynamic

// Elements start, start + step, ... before stop along `dim` (Python's x[start:stop:step] with
// step > 0; negative start and stop count from the end, and both are clamped to the extent).
inline var slice(const var& x, int dim, sindex_t start, sindex_t stop, sindex_t step) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("slice_step", {{"dim", dim}, {"start", start}, {"stop", stop}, {"step", step}},
                     {&x}, [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return slice(ins[0], int(at.i(0)), at.i(1), at.i(2), at.i(3));
                     });
  const std::size_t k = dynamic::normalize_axis("slice", dim, x.rank());
  if (step <= 0)
    throw std::invalid_argument(
        dynamic::text("fg::slice(): step ", step, " must be positive (as in PyTorch)"));
  const auto n = sindex_t(x.shape()[k]);
  auto clamp_end = [n](sindex_t i) { return std::clamp(i < 0 ? i + n : i, sindex_t(0), n); };
  dynamic::axis_maps m = dynamic::identity_maps(x);
  m[k].clear();
  for (sindex_t i = clamp_end(start); i < clamp_end(stop); i += step)
    m[k].push_back(i);
  return dynamic::map_axes("slice", x, m);
}
// `length` elements from `start` along `dim` (negative start: from the end).
inline var narrow(const var& x, int dim, sindex_t start, index_t length) {
  const std::size_t k = dynamic::normalize_axis("narrow", dim, x.rank());
  const auto n = sindex_t(x.shape()[k]);
  const sindex_t s = start < 0 ? start + n : start;
  if (s < 0 || s + sindex_t(length) > n)
    throw index_error(dynamic::text("fg::narrow(): ", length, " elements from ", start,
                                    " do not fit in dim ", k, " of size ", n, " (shape ",
                                    x.shape().str(), ")"));
  return slice(x, int(k), s, s + sindex_t(length), 1);
}
// The elements at `index` (an integer tensor of rank 0 or 1) along `dim`, in its order.
inline var index_select(const var& x, int dim, const var& index) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("index_select", {{"dim", dim}}, {&x, &index},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return index_select(ins[0], int(at.i(0)), ins[1]);
                     });
  const std::size_t k = dynamic::normalize_axis("index_select", dim, x.rank());
  if (index.rank() > 1)
    throw shape_error(dynamic::text("fg::index_select(): the index is ", index.shape().str(),
                                    "; it must be 0-d or 1-d"));
  dynamic::axis_maps m = dynamic::identity_maps(x);
  m[k].clear();
  for (index_t i : dynamic::index_values("index_select", index, x.shape()[k],
                                         dynamic::text("dim ", k, " of ", x.shape().str())))
    m[k].push_back(sindex_t(i));
  return dynamic::map_axes("index_select", x, m);
}
// x reversed along each of `dims`.
inline var flip(const var& x, list_arg<int> dims) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("flip", {{"dims", dynamic::int_attr(dims)}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return flip(ins[0], at.list<int>(0));
                     });
  dynamic::axis_maps m = dynamic::identity_maps(x);
  for (int d : dims)
    std::reverse(m[dynamic::normalize_axis("flip", d, x.rank())].begin(),
                 m[dynamic::normalize_axis("flip", d, x.rank())].end());
  return dynamic::map_axes("flip", x, m);
}
// x's axes in the order `dims` (a permutation of 0 .. rank - 1), as torch.permute (a copy).
inline var permute(const var& x, list_arg<int> dims) {
  const std::size_t r = x.rank();
  std::vector<std::size_t> order;
  std::vector<bool> seen(r);
  for (int d : dims) {
    const std::size_t a = dynamic::normalize_axis("permute", d, r);
    if (seen[a] || dims.size() != r)
      throw shape_error(dynamic::text("fg::permute(): the dims given are not a permutation of the ",
                                      r, " axes of ", x.shape().str()));
    seen[a] = true;
    order.push_back(a);
  }
  // Swaps into place one axis at a time: transpose records each, so the gradient follows.
  var y = x;
  std::vector<std::size_t> now(r);
  for (std::size_t a = 0; a < r; ++a)
    now[a] = a;
  for (std::size_t a = 0; a < r; ++a) {
    const auto b = std::size_t(std::find(now.begin(), now.end(), order[a]) - now.begin());
    if (b != a) {
      y = transpose(y, int(a), int(b));
      std::swap(now[a], now[b]);
    }
  }
  return y;
}
// x with its axes of extent 1 removed (all, or the one at `dim` if it is 1), and with a new
// axis of extent 1 inserted at `dim`: views, as reshape.
inline var squeeze(const var& x) {
  std::vector<index_t> keep;
  for (index_t n : x.shape())
    if (n != 1)
      keep.push_back(n);
  extents e = extents::of_rank(keep.size());
  for (std::size_t a = 0; a < keep.size(); ++a)
    e[a] = keep[a];
  return reshape(x, e);
}
inline var squeeze(const var& x, int dim) {
  const std::size_t k = dynamic::normalize_axis("squeeze", dim, x.rank());
  if (x.shape()[k] != 1)
    return x;
  extents e = extents::of_rank(x.rank() - 1);
  for (std::size_t a = 0, b = 0; a < x.rank(); ++a)
    if (a != k)
      e[b++] = x.shape()[a];
  return reshape(x, e);
}
inline var unsqueeze(const var& x, int dim) {
  if (x.rank() >= max_rank)
    throw shape_error(dynamic::text("fg::unsqueeze(): a rank-", x.rank(),
                                    " tensor cannot take another axis (fg::max_rank)"));
  const std::size_t k = dynamic::normalize_axis("unsqueeze", dim, x.rank() + 1);
  extents e = extents::of_rank(x.rank() + 1);
  for (std::size_t a = 0, b = 0; a < e.rank(); ++a)
    e[a] = a == k ? 1 : x.shape()[b++];
  return reshape(x, e);
}
// x tiled `reps[a]` times along each axis (leading reps add leading axes), as torch's repeat.
inline var repeat(const var& x, list_arg<index_t> reps) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("repeat", {{"repeats", dynamic::int_attr(reps)}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return repeat(ins[0], at.list<index_t>(0));
                     });
  if (reps.size() < x.rank())
    throw shape_error(dynamic::text("fg::repeat(): ", reps.size(),
                                    " repeats given for a tensor of rank ", x.rank(),
                                    " (give one per axis, or more)"));
  extents lifted = extents::of_rank(reps.size());
  for (std::size_t a = 0; a < reps.size(); ++a)
    lifted[a] = a < reps.size() - x.rank() ? 1 : x.shape()[a - (reps.size() - x.rank())];
  const var xl = reshape(x, lifted);
  dynamic::axis_maps m(reps.size());
  std::size_t a = 0;
  for (index_t r : reps) {
    for (index_t t = 0; t < r; ++t)
      for (index_t i = 0; i < lifted[a]; ++i)
        m[a].push_back(sindex_t(i));
    ++a;
  }
  return dynamic::map_axes("repeat", xl, m);
}
// x broadcast to `shape` (-1 keeps an extent), as torch's expand (a copy here: the gradient is
// summed back).
inline var expand(const var& x, std::initializer_list<sindex_t> shape) {
  extents e = extents::of_rank(shape.size());
  std::size_t a = 0;
  for (sindex_t n : shape) {
    const std::size_t from_end = shape.size() - a;
    e[a] = n >= 0 ? index_t(n) : from_end <= x.rank() ? x.shape()[x.rank() - from_end] : index_t(1);
    ++a;
  }
  return broadcast_to(x, e);
}

enum class pad_mode { constant, reflect, replicate };
// x padded as torch.nn.functional.pad: `pads` holds (before, after) pairs from the last axis
// backwards; constant padding fills `value`, reflect mirrors without repeating the edge,
// replicate repeats it.
inline var pad(const var& x, list_arg<index_t> pads, pad_mode mode = pad_mode::constant,
               double value = 0) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("pad",
                     {{"pads", dynamic::int_attr(pads)}, {"mode", int(mode)}, {"value", value}},
                     {&x}, [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return pad(ins[0], at.list<index_t>(0), pad_mode(at.i(1)), at.f(2));
                     });
  if (mode != pad_mode::constant && mode != pad_mode::reflect && mode != pad_mode::replicate)
    throw std::invalid_argument(
        dynamic::text("fg::pad(): padding mode ", int(mode), " is none of fusegrad's"));
  if (pads.size() % 2 || pads.size() / 2 > x.rank())
    throw shape_error(dynamic::text("fg::pad(): ", pads.size(),
                                    " padding sizes for a tensor of rank ", x.rank(),
                                    " (give a (before, after) pair per axis, last axis first)"));
  dynamic::axis_maps m = dynamic::identity_maps(x);
  const index_t* p = pads.begin();
  for (std::size_t j = 0; j < pads.size() / 2; ++j) {
    const std::size_t a = x.rank() - 1 - j;
    const auto n = sindex_t(x.shape()[a]), before = sindex_t(p[2 * j]),
               after = sindex_t(p[2 * j + 1]);
    if (mode == pad_mode::reflect && (before >= n || after >= n))
      throw shape_error(dynamic::text("fg::pad(): reflect padding of ", before, " and ", after,
                                      " must be less than the ", n, " elements of dim ", a, " of ",
                                      x.shape().str()));
    if (mode == pad_mode::replicate && n == 0)
      throw shape_error(dynamic::text("fg::pad(): replicate padding of the empty dim ", a));
    m[a].clear();
    for (sindex_t i = -before; i < n + after; ++i) {
      sindex_t s = i;
      if (i < 0 || i >= n)
        s = mode == pad_mode::constant    ? -1
            : mode == pad_mode::replicate ? std::clamp(i, sindex_t(0), n - 1)
            : i < 0                       ? -i
                                          : 2 * (n - 1) - i;
      m[a].push_back(s);
    }
  }
  return dynamic::map_axes("pad", x, m, value);
}

// x with `value` where `mask` (bool, broadcast to x's shape) is true; no gradient there.
inline var masked_fill(const var& x, const var& mask, double value) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("masked_fill", {{"value", value}}, {&x, &mask},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return masked_fill(ins[0], ins[1], at.f(0));
                     });
  if (mask.dtype() != dtype::bool_)
    throw dtype_error(dynamic::text("fg::masked_fill(): the mask is ", dtype_name(mask.dtype()),
                                    "; it must be bool (e.g. x > 0)"));
  if (!(dynamic::broadcast<2>("masked_fill", {&x.shape(), &mask.shape()}) == x.shape()))
    throw shape_error(dynamic::text("fg::masked_fill(): the mask ", mask.shape().str(),
                                    " does not broadcast to x's shape ", x.shape().str()));
  return where(mask, var::scalar(value, x.dtype()), x);
}
// The elements of x where `mask` (bool, broadcast with x) is true, as a 1-d tensor in row-major
// order; the gradient goes back to them.
inline var masked_select(const var& x, const var& mask) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("masked_select", {}, {&x, &mask},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list&) {
                       return masked_select(ins[0], ins[1]);
                     });
  if (mask.dtype() != dtype::bool_)
    throw dtype_error(dynamic::text("fg::masked_select(): the mask is ", dtype_name(mask.dtype()),
                                    "; it must be bool (e.g. x > 0)"));
  const extents e = dynamic::broadcast<2>("masked_select", {&x.shape(), &mask.shape()});
  const bool* pm = mask.data<bool>();
  std::vector<std::int64_t> at;  // x's element behind each selected one
  dynamic::for_each_row<2>(
      e, {dynamic::broadcast_strides(x.shape(), e), dynamic::broadcast_strides(mask.shape(), e)},
      [&](auto off, auto inner, index_t len) {
        for (index_t i = 0; i < len; ++i)
          if (pm[off[1] + std::ptrdiff_t(i) * inner[1]])
            at.push_back(std::int64_t(off[0] + std::ptrdiff_t(i) * inner[0]));
      });
  const var idx = var::from(std::span<const std::int64_t>(at), {index_t(at.size())});
  return gather(reshape(x, {x.size()}), 0, idx);
}
// x cut into `chunks` pieces along `dim`, each ceil(n / chunks) long but the last, as
// torch.chunk (fewer pieces when n is small).
inline std::vector<var> chunk(const var& x, index_t chunks, int dim = 0) {
  const std::size_t k = dynamic::normalize_axis("chunk", dim, x.rank());
  if (chunks == 0)
    throw std::invalid_argument("fg::chunk(): chunks must be at least 1");
  const index_t n = x.shape()[k], size = (n + chunks - 1) / chunks;
  std::vector<index_t> sizes;
  for (index_t at = 0; at < n; at += size)
    sizes.push_back(std::min(size, n - at));
  if (sizes.empty())
    sizes.push_back(0);
  return split(x, sizes, int(k));
}

}  // namespace fg

FG_DIAGNOSTICS_END
