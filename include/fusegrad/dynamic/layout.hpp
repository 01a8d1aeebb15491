// fusegrad/dynamic/layout.hpp — reshaping, transposing, slicing, joining and gathering vars,
// each with its gradient. reshape is a view (shares elements); the others copy.
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/elementwise.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg {

namespace dynamic {

inline std::size_t normalize_axis(const char* op, int axis, std::size_t rank) {
  const int r = int(rank), k = axis < 0 ? axis + r : axis;
  if (k < 0 || k >= r) {
    detail::message m;
    m << "fg::" << op << "(): axis " << index_t(axis < 0 ? -axis : axis)
      << (axis < 0 ? " (negative)" : "") << " is out of range for rank " << index_t(rank);
    throw shape_error(m.c_str());
  }
  return std::size_t(k);
}

// The values of an index tensor, each checked to be in [0, bound): how gather, embedding and the
// losses read indices. They must be of an integer dtype (PyTorch wants int64; any integer dtype
// is taken); a float or bool tensor is refused with the conversion to make. `of` names what the
// indices pick from, for the range error.
inline std::vector<index_t> index_values(const char* op, const var& index, index_t bound,
                                         const std::string& of) {
  if (is_floating(index.dtype()) || index.dtype() == dtype::bool_)
    throw dtype_error(text("fg::", op, "(): the indices are ", dtype_name(index.dtype()),
                           "; indices must be an integer tensor (convert them with "
                           ".to(fg::int64))"));
  const var i64 = index.to(dtype::int64);
  const std::int64_t* p = i64.data<std::int64_t>();
  std::vector<index_t> out(std::size_t(index.size()));
  for (std::size_t e = 0; e < out.size(); ++e) {
    if (p[e] < 0 || p[e] >= std::int64_t(bound))
      throw index_error(
          text("fg::", op, "(): index ", p[e], " is out of range for ", of, " of size ", bound));
    out[e] = index_t(p[e]);
  }
  return out;
}

// y[e] = x's element src[e] for every element e of extents `out` (src[e] < 0: `fill`), of any
// dtype: gather, the losses and the index maps of indexing.hpp move elements through it. The
// gradient adds g back into the elements read (read twice, added twice).
inline var take(const char* name, const var& x, const extents& out,
                std::shared_ptr<const std::vector<std::ptrdiff_t>> src, double fill = 0) {
  var y = var::empty(out, x.dtype());
  dispatch_any(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T f = convert_element<T>(fill);
    for (std::size_t e = 0; e < src->size(); ++e)
      py[e] = (*src)[e] < 0 ? f : px[(*src)[e]];
  });
  record(y, name, {x}, [&](node&) {
    return [shape = x.shape(), src](const var& g) {
      var gx = var::zeros(shape, g.dtype());
      dispatch(g.dtype(), [&](auto z) {
        using T = decltype(z);
        const T* pg = g.data<T>();
        T* d = gx.data<T>();
        for (std::size_t e = 0; e < src->size(); ++e)
          if ((*src)[e] >= 0)
            d[(*src)[e]] += pg[e];
      });
      return var_list{gx};
    };
  });
  return y;
}

// x seen as [outer, extent along axis, inner].
struct axis_view {
  index_t outer = 1, len = 1, inner = 1;
  axis_view(const extents& e, std::size_t axis) {
    for (std::size_t k = 0; k < e.rank(); ++k)
      (k < axis ? outer : k == axis ? len : inner) *= e[k];
  }
};

// Copies rows [begin, begin + count) along `axis` of src into dst at row `at` (dst's axis
// extent dst_len), or adds them when `add`.
template <class T>
void copy_rows(const T* src, const axis_view& s, index_t begin, index_t count, T* dst,
               index_t dst_len, index_t at, bool add) {
  for (index_t o = 0; o < s.outer; ++o) {
    const T* from = src + (o * s.len + begin) * s.inner;
    T* to = dst + (o * dst_len + at) * s.inner;
    if constexpr (std::is_floating_point_v<T>)  // (gradients: the only rows added)
      if (add) {
        for (index_t i = 0; i < count * s.inner; ++i)
          to[i] += from[i];
        continue;
      }
    std::copy_n(from, count * s.inner, to);
  }
}

// node::add_block for slice: g, the gradient of the block, added into its rows of `into`.
inline void add_slice_block(const node& n, std::shared_ptr<impl>& into, const var& g) {
  const extents& whole = n.input_shape(0);
  if (!into)
    into = var::zeros(whole, g.dtype()).handle();
  else
    realise_pending_before_write(into);  // an op given this gradient earlier reads its old value
  const axis_view v(whole, n.block_axis);
  axis_view gv = v;
  gv.len = g.shape()[n.block_axis];
  dispatch(g.dtype(), [&](auto z) {
    using T = decltype(z);
    copy_rows(g.data<T>(), gv, 0, gv.len, static_cast<T*>(into->data->bytes) + into->offset, v.len,
              n.block_begin, true);
  });
}

}  // namespace dynamic

// The same elements under other extents (a view: writes through either are seen by both).
inline var reshape(const var& x, const extents& e) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("reshape", {{"shape", e}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return reshape(ins[0], at.shape(0));
                     });
  if (e.size() != x.size())
    throw shape_error(dynamic::text("fg::reshape(): cannot view ", x.shape().str(), " (", x.size(),
                                    " elements) as ", e.str()));
  auto p = dynamic::make_pooled<dynamic::impl>(dynamic::impl::same_elements{}, x.ready());
  p->shape = e;
  var y(std::move(p));
  dynamic::record(y, "reshape", {x}, [&](dynamic::node&) {
    return [from = x.shape()](const var& g) { return dynamic::var_list{reshape(g, from)}; };
  });
  return y;
}

// Axes a and b swapped (a copy).
inline var transpose(const var& x, int a, int b) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("transpose", {{"a", a}, {"b", b}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return transpose(ins[0], int(at.i(0)), int(at.i(1)));
                     });
  const std::size_t r = x.rank();
  const std::size_t i = dynamic::normalize_axis("transpose", a, r),
                    j = dynamic::normalize_axis("transpose", b, r);
  extents out = x.shape();
  std::swap(out[i], out[j]);
  dynamic::strides st = dynamic::broadcast_strides(x.shape(), x.shape());
  std::swap(st[i], st[j]);
  var y = var::empty(out, x.dtype());
  dispatch_any(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    dynamic::for_each_row<1>(out, {st}, [&](auto off, auto inner, index_t len) {
      for (index_t k = 0; k < len; ++k)
        *dst++ = src[off[0] + std::ptrdiff_t(k) * inner[0]];
    });
  });
  dynamic::record(y, "transpose", {x}, [&](dynamic::node&) {
    return [i, j](const var& g) { return dynamic::var_list{transpose(g, int(i), int(j))}; };
  });
  return y;
}
// The last two axes swapped (a matrix transpose; batched for rank > 2).
inline var transpose(const var& x) {
  if (x.rank() < 2)
    throw shape_error("fg::transpose(): needs at least 2 axes, the tensor has shape " +
                      x.shape().str());
  return transpose(x, -2, -1);
}

// Elements [begin, end) along `axis` (a copy).
inline var slice(const var& x, int axis, index_t begin, index_t end) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("slice", {{"axis", axis}, {"begin", begin}, {"end", end}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return slice(ins[0], int(at.i(0)), index_t(at.i(1)), index_t(at.i(2)));
                     });
  const std::size_t k = dynamic::normalize_axis("slice", axis, x.rank());
  if (begin > end || end > x.shape()[k])
    throw shape_error(dynamic::text("fg::slice(): [", begin, ", ", end,
                                    ") is out of range for axis ", k, " of shape ",
                                    x.shape().str()));
  extents out = x.shape();
  out[k] = end - begin;
  var y = var::empty(out, x.dtype());
  const dynamic::axis_view v(x.shape(), k);
  dispatch_any(x.dtype(), [&](auto z) {
    using T = decltype(z);
    dynamic::copy_rows(x.data<T>(), v, begin, end - begin, y.data<T>(), end - begin, 0, false);
  });
  dynamic::record(y, "slice", {x}, [&](dynamic::node& n) {
    n.add_block = &dynamic::add_slice_block;  // the tape adds g into rows [begin, end) of x's
    n.block_axis = k;
    n.block_begin = begin;
    return [](const var& g) { return dynamic::var_list{g}; };
  });
  return y;
}
// Element i along `axis`, that axis removed (x[i] for axis 0).
inline var select(const var& x, int axis, index_t i) {
  const std::size_t k = dynamic::normalize_axis("select", axis, x.rank());
  var s = slice(x, int(k), i, i + 1);
  extents out = extents::of_rank(x.rank() - 1);
  for (std::size_t a = 0, b = 0; a < x.rank(); ++a)
    if (a != k)
      out[b++] = x.shape()[a];
  return reshape(s, out);
}

// The inputs joined along `axis`; their other extents must agree.
inline var concat(const std::vector<var>& xs, int axis) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("concat", {{"axis", axis}}, dynamic::pointers(xs),
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return concat(ins.vector(), int(at.i(0)));
                     });
  if (xs.empty())
    throw shape_error("fg::concat(): give at least one tensor");
  const std::size_t k = dynamic::normalize_axis("concat", axis, xs[0].rank());
  extents out = xs[0].shape();
  out[k] = 0;
  for (const var& x : xs) {
    if (x.dtype() != xs[0].dtype())
      throw dtype_error(dynamic::text("fg::concat(): mixed dtypes ", dtype_name(xs[0].dtype()), " ",
                                      dtype_name(x.dtype()),
                                      "; convert one of them first, e.g. x.to(fg::float32)"));
    bool ok = x.rank() == out.rank();
    for (std::size_t a = 0; ok && a < out.rank(); ++a)
      ok = a == k || x.shape()[a] == xs[0].shape()[a];
    if (!ok) {
      std::string m = dynamic::text("fg::concat(): along axis ", k, ", shapes");
      for (const var& y : xs)
        m.append(" ").append(y.shape().str());
      throw shape_error(m.append(" do not fit together"));
    }
    out[k] += x.shape()[k];
  }
  var y = var::empty(out, xs[0].dtype());
  std::vector<index_t> at;
  dispatch_any(y.dtype(), [&](auto z) {
    using T = decltype(z);
    index_t pos = 0;
    for (const var& x : xs) {
      at.push_back(pos);
      const dynamic::axis_view v(x.shape(), k);
      dynamic::copy_rows(x.data<T>(), v, 0, v.len, y.data<T>(), out[k], pos, false);
      pos += v.len;
    }
  });
  dynamic::record(y, "concat", xs, [&](dynamic::node&) {
    std::vector<extents> shapes;
    for (const var& x : xs)
      shapes.push_back(x.shape());
    return [shapes, at, k](const var& g) {
      dynamic::var_list grads;
      for (std::size_t i = 0; i < shapes.size(); ++i)
        grads.push_back(slice(g, int(k), at[i], at[i] + shapes[i][k]));
      return grads;
    };
  });
  return y;
}
// concat under PyTorch's name.
inline var cat(const std::vector<var>& xs, int axis = 0) {
  return concat(xs, axis);
}
// The inputs (all of one shape) stacked along a new axis.
inline var stack(const std::vector<var>& xs, int axis) {
  if (xs.empty())
    throw shape_error("fg::stack(): give at least one tensor");
  if (xs[0].rank() >= max_rank)
    throw shape_error(dynamic::text("fg::stack(): stacking rank-", xs[0].rank(),
                                    " tensors would pass fg::max_rank"));
  const std::size_t k = dynamic::normalize_axis("stack", axis, xs[0].rank() + 1);
  std::vector<var> lifted;
  for (const var& x : xs) {
    if (!(x.shape() == xs[0].shape()))
      throw shape_error(dynamic::text("fg::stack(): shapes ", xs[0].shape().str(), " and ",
                                      x.shape().str(), " differ"));
    extents e = extents::of_rank(x.rank() + 1);
    for (std::size_t a = 0, b = 0; a < e.rank(); ++a)
      e[a] = a == k ? 1 : x.shape()[b++];
    lifted.push_back(reshape(x, e));
  }
  return concat(lifted, int(k));
}
// x cut along `axis` into pieces of the given sizes (which must add up to its extent).
inline std::vector<var> split(const var& x, const std::vector<index_t>& sizes, int axis = 0) {
  const std::size_t k = dynamic::normalize_axis("split", axis, x.rank());
  index_t total = 0;
  for (index_t s : sizes)
    total += s;
  if (total != x.shape()[k])
    throw shape_error(dynamic::text("fg::split(): sizes add up to ", total, ", axis ", k, " of ",
                                    x.shape().str(), " has ", x.shape()[k]));
  std::vector<var> parts;
  index_t pos = 0;
  for (index_t s : sizes) {
    parts.push_back(slice(x, int(k), pos, pos + s));
    pos += s;
  }
  return parts;
}
// x cut along `axis` into pieces of `size` elements, the last one smaller if the extent is not a
// multiple (torch.split with an int).
inline std::vector<var> split(const var& x, index_t size, int axis = 0) {
  const std::size_t k = dynamic::normalize_axis("split", axis, x.rank());
  if (size == 0)
    throw shape_error(dynamic::text("fg::split(): pieces of size 0 cannot cut axis ", k, " of ",
                                    x.shape().str()));
  std::vector<index_t> sizes;
  for (index_t pos = 0; pos < x.shape()[k]; pos += size)
    sizes.push_back(std::min(size, x.shape()[k] - pos));
  if (sizes.empty())
    sizes.push_back(0);  // (an empty axis: one empty piece, as PyTorch)
  return split(x, sizes, int(k));
}

namespace dynamic {
// For each element of an index tensor of extents `index` (row-major): the offset, in a row-major
// tensor of extents `into`, of that element's coordinates, the one on `axis` replaced by at[e]
// when `at` is given. gather reads x there; scatter writes x there and reads src.
inline std::vector<std::ptrdiff_t> offsets_along(const extents& index, const extents& into,
                                                 std::size_t axis,
                                                 const std::vector<index_t>* at = nullptr) {
  const strides st = broadcast_strides(into, into);
  std::vector<std::ptrdiff_t> out;
  out.reserve(std::size_t(index.size()));
  for_each_index(index, [&](const auto& idx) {
    std::ptrdiff_t off = 0;
    for (std::size_t a = 0; a < index.rank(); ++a)
      off += st[a] * std::ptrdiff_t(at && a == axis ? (*at)[out.size()] : idx[a]);
    out.push_back(off);
  });
  return out;
}

// The index of gather or scatter has x's rank and fits in x on every axis but `axis` (and in
// src, for scatter, on every axis); its values are checked against x's extent along `axis`.
inline std::vector<index_t> index_along(const char* op, const var& x, std::size_t axis,
                                        const var& index, const var* src = nullptr) {
  bool ok = index.rank() == x.rank() && (!src || src->rank() == x.rank());
  for (std::size_t a = 0; ok && a < x.rank(); ++a)
    ok = (a == axis || index.shape()[a] <= x.shape()[a]) &&
         (!src || index.shape()[a] <= src->shape()[a]);
  if (!ok)
    throw shape_error(text("fg::", op, "(): index ", index.shape().str(), " does not fit x ",
                           x.shape().str(), src ? text(" and src ", src->shape().str()) : "",
                           " along axis ", axis));
  return index_values(op, index, x.shape()[axis], text("axis ", axis, " of ", x.shape().str()));
}

// x with src's elements written (add = false) or added at the places index names along `axis`,
// src null: `value` written. Of any dtype; integers add wrapping around, as PyTorch's; where
// two index elements name one place, the later (row-major) write wins. Gradients as PyTorch's:
// x's passes where nothing was written (everywhere for add), src's is g at its places.
inline var scatter_into(const char* op, const var& x, int axis, const var& index, const var* src,
                        double value, bool add) {
  const std::size_t k = normalize_axis(op, axis, x.rank());
  if (src && src->dtype() != x.dtype())
    throw dtype_error(text("fg::", op, "(): src is ", dtype_name(src->dtype()), " and x is ",
                           dtype_name(x.dtype()), "; convert src with .to(x.dtype())"));
  if (add && (x.dtype() == dtype::float16 || x.dtype() == dtype::bfloat16)) {  // sums in float32
    const var src32 = src->to(dtype::float32);
    return scatter_into(op, x.to(dtype::float32), axis, index, &src32, 0, true).to(x.dtype());
  }
  const std::vector<index_t> at = index_along(op, x, k, index, src);
  auto dst = std::make_shared<const std::vector<std::ptrdiff_t>>(
      offsets_along(index.shape(), x.shape(), k, &at));
  auto from = std::make_shared<const std::vector<std::ptrdiff_t>>(
      src ? offsets_along(index.shape(), src->shape(), k) : std::vector<std::ptrdiff_t>{});
  var y = var::empty(x.shape(), x.dtype());
  dispatch_any(x.dtype(), [&](auto z) {
    using T = decltype(z);
    T* py = y.data<T>();
    std::copy_n(x.data<T>(), x.size(), py);
    const T v = convert_element<T>(value);
    for (std::size_t e = 0; e < dst->size(); ++e) {
      const T w = src ? src->data<T>()[(*from)[e]] : v;
      T& d = py[(*dst)[e]];
      if (!add)
        d = w;
      else if constexpr (std::is_same_v<T, bool>)
        d = d || w;
      else if constexpr (std::is_integral_v<T>)  // (unsigned: wraps without undefined behaviour)
        d = T(std::make_unsigned_t<T>(d) + std::make_unsigned_t<T>(w));
      else if constexpr (std::is_floating_point_v<T>)  // (the half types added in float32 above)
        d = d + w;
    }
  });
  std::vector<var> inputs{x};
  if (src)
    inputs.push_back(*src);
  record(y, op, inputs, [&](node&) {
    return [shape = x.shape(), src_shape = src ? src->shape() : extents{}, has_src = bool(src), dst,
            from, add](const var& g) {
      var_list grads;
      if (add) {
        grads.push_back(g);
      } else {
        auto keep = std::make_shared<std::vector<std::ptrdiff_t>>(std::size_t(g.size()));
        for (std::size_t e = 0; e < keep->size(); ++e)
          (*keep)[e] = std::ptrdiff_t(e);
        for (std::ptrdiff_t d : *dst)
          (*keep)[std::size_t(d)] = -1;  // overwritten: no gradient
        grads.push_back(take("scatter", g, shape, std::move(keep)));
      }
      if (has_src) {
        auto read =
            std::make_shared<std::vector<std::ptrdiff_t>>(std::size_t(src_shape.size()), -1);
        for (std::size_t e = 0; e < from->size(); ++e)
          (*read)[std::size_t((*from)[e])] = (*dst)[e];
        grads.push_back(take("scatter", g, src_shape, std::move(read)));
      }
      return grads;
    };
  });
  return y;
}
}  // namespace dynamic

// out[..., j, ...] = x[..., index[..., j, ...], ...] along `axis` (torch.gather): index has
// x's rank, an integer dtype, and is at most x's extent on every other axis.
inline var gather(const var& x, int axis, const var& index) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("gather", {{"axis", axis}}, {&x, &index},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return gather(ins[0], int(at.i(0)), ins[1]);
                     });
  const std::size_t k = dynamic::normalize_axis("gather", axis, x.rank());
  const std::vector<index_t> at = dynamic::index_along("gather", x, k, index);
  return dynamic::take("gather", x, index.shape(),
                       std::make_shared<std::vector<std::ptrdiff_t>>(
                           dynamic::offsets_along(index.shape(), x.shape(), k, &at)));
}

// x with out[..., index[..., j, ...], ...] = src[..., j, ...] along `axis` (torch.scatter):
// index has x's rank and an integer dtype, and fits in src on every axis and in x on every
// other axis; src has x's dtype. Where two index elements name one place, the later one
// (row-major) wins (PyTorch leaves it unspecified).
inline var scatter(const var& x, int axis, const var& index, const var& src) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("scatter", {{"axis", axis}}, {&x, &index, &src},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return scatter(ins[0], int(at.i(0)), ins[1], ins[2]);
                     });
  return dynamic::scatter_into("scatter", x, axis, index, &src, 0, false);
}
// The same with one value written at every place index names.
inline var scatter(const var& x, int axis, const var& index, double value) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("scatter_value", {{"axis", axis}, {"value", value}}, {&x, &index},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return scatter(ins[0], int(at.i(0)), ins[1], at.f(1));
                     });
  return dynamic::scatter_into("scatter", x, axis, index, nullptr, value, false);
}
// x with src's elements added at the places index names along `axis` (torch.scatter_add):
// places named twice get both.
inline var scatter_add(const var& x, int axis, const var& index, const var& src) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("scatter_add", {{"axis", axis}}, {&x, &index, &src},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return scatter_add(ins[0], int(at.i(0)), ins[1], ins[2]);
                     });
  return dynamic::scatter_into("scatter_add", x, axis, index, &src, 0, true);
}

// The indices of x's non-zero elements, as torch.nonzero: int64 [count, rank], in row-major
// order.
inline var nonzero(const var& x) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("nonzero", {}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list&) {
                       return nonzero(ins[0]);
                     });
  const var b = x.to(dtype::bool_);
  const bool* p = b.data<bool>();
  index_t count = 0;
  for (index_t i = 0; i < x.size(); ++i)
    count += p[i];
  var out = var::empty({count, index_t(x.rank())}, dtype::int64);
  std::int64_t* dst = out.data<std::int64_t>();
  dynamic::for_each_index(x.shape(), [&](const auto& idx) {
    if (*p++)
      for (std::size_t a = 0; a < x.rank(); ++a)
        *dst++ = std::int64_t(idx[a]);
  });
  return out;
}

}  // namespace fg

FG_DIAGNOSTICS_END
