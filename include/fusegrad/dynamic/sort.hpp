// fusegrad/dynamic/sort.hpp — selection and sorting as PyTorch's: argmax/argmin, sort/argsort
// (stable), topk; indices are int64, values differentiable (gathered, their gradient scattered)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/layout.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg {

// What sort and topk return (PyTorch's named tuple): `auto [values, indices] = fg::sort(x);`.
struct sorted_result {
  var values;   // x's dtype; the gradient flows back to where each value came from
  var indices;  // int64, along the dim
};
namespace dynamic {
inline std::vector<var> as_list(sorted_result&& r) {
  return {std::move(r.values), std::move(r.indices)};
}
inline sorted_result as_sorted(std::vector<var>&& v) {
  return {std::move(v[0]), std::move(v[1])};
}
}  // namespace dynamic

namespace dynamic {

// Every element of x, exact (long double holds every int64 on x86 and AArch64), in row-major
// order: the comparisons below are written once, not once per dtype.
inline std::vector<long double> exact_values(const var& x) {
  std::vector<long double> v(std::size_t(x.size()));
  dispatch_any(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* p = x.data<T>();
    for (std::size_t i = 0; i < v.size(); ++i)
      v[i] = convert_element<long double>(p[i]);
  });
  return v;
}

// PyTorch's order: ascending or descending, and where NaN goes (sort puts it last ascending
// and first descending, as the largest value; argmax and argmin both pick a NaN).
struct order_rule {
  bool descending = false, nan_first = false;
  bool before(long double a, long double b) const {
    const bool na = std::isnan(a), nb = std::isnan(b);
    if (na || nb)
      return na != nb && na == nan_first;
    return descending ? a > b : a < b;
  }
};

// The first `keep` positions of each line of x along axis k, in the rule's order (stable: ties
// keep their order), as an int64 tensor of x's shape with `keep` along k.
inline var order_along(const var& x, std::size_t k, order_rule rule, index_t keep) {
  const std::vector<long double> v = exact_values(x);
  const axis_view av(x.shape(), k);
  extents out = x.shape();
  out[k] = keep;
  var idx = var::empty(out, dtype::int64);
  std::int64_t* dst = idx.data<std::int64_t>();
  std::vector<index_t> perm(av.len);
  for (index_t o = 0; o < av.outer; ++o)
    for (index_t i = 0; i < av.inner; ++i) {
      const long double* line = v.data() + o * av.len * av.inner + i;
      auto at = [&](index_t j) { return line[j * av.inner]; };
      auto cmp = [&](index_t a, index_t b) { return rule.before(at(a), at(b)); };
      if (keep == 1) {  // argmax, argmin, topk(1): one scan
        index_t best = 0;
        for (index_t j = 1; j < av.len; ++j)
          best = cmp(j, best) ? j : best;
        perm[0] = best;
      } else {
        std::iota(perm.begin(), perm.end(), index_t(0));
        std::stable_sort(perm.begin(), perm.end(), cmp);
      }
      for (index_t j = 0; j < keep; ++j)
        dst[(o * keep + j) * av.inner + i] = std::int64_t(perm[j]);
    }
  return idx;
}

// x's axis k removed (keepdim false) from a result that has extent 1 there.
inline var drop_axis(const var& y, std::size_t k) {
  extents e = extents::of_rank(y.rank() - 1);
  for (std::size_t a = 0, b = 0; a < y.rank(); ++a)
    if (a != k)
      e[b++] = y.shape()[a];
  return reshape(y, e);
}

inline var arg_extreme(const char* op, const var& x, int dim, bool keepdim, bool all,
                       order_rule rule) {
  if (x.size() == 0)
    throw shape_error(
        text("fg::", op, "(): the tensor ", x.shape().str(), " has no elements to choose from"));
  if (all) {  // over every element: the flat index, 0-d
    const var flat = reshape(x, {x.size()});
    return reshape(order_along(flat, 0, rule, 1), {});
  }
  const std::size_t k = normalize_axis(op, dim, x.rank());
  const var idx = order_along(x, k, rule, 1);
  return keepdim ? idx : drop_axis(idx, k);
}

}  // namespace dynamic

// The index of the largest (smallest) element: over every element, a 0-d int64 flat index; or
// along `dim` (keepdim keeps it as extent 1). Ties give the first; a NaN wins, as in PyTorch.
inline var argmax(const var& x) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("argmax_all", {}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list&) {
                       return argmax(ins[0]);
                     });
  return dynamic::arg_extreme("argmax", x, 0, false, true, {true, true});
}
inline var argmax(const var& x, int dim, bool keepdim = false) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("argmax", {{"dim", dim}, {"keepdim", keepdim}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return argmax(ins[0], int(at.i(0)), at.flag(1));
                     });
  return dynamic::arg_extreme("argmax", x, dim, keepdim, false, {true, true});
}
inline var argmin(const var& x) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("argmin_all", {}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list&) {
                       return argmin(ins[0]);
                     });
  return dynamic::arg_extreme("argmin", x, 0, false, true, {false, true});
}
inline var argmin(const var& x, int dim, bool keepdim = false) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("argmin", {{"dim", dim}, {"keepdim", keepdim}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return argmin(ins[0], int(at.i(0)), at.flag(1));
                     });
  return dynamic::arg_extreme("argmin", x, dim, keepdim, false, {false, true});
}

// x sorted along `dim` (stable: equal values keep their order; NaN sorts as the largest), and
// where each value came from. The values are differentiable.
inline sorted_result sort(const var& x, int dim = -1, bool descending = false) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return dynamic::as_sorted(
        t->record_list("sort", {{"dim", dim}, {"descending", descending}}, {&x},
                       [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                         return dynamic::as_list(sort(ins[0], int(at.i(0)), at.flag(1)));
                       }));
  const std::size_t k = dynamic::normalize_axis("sort", dim, x.rank());
  var idx = dynamic::order_along(x, k, {descending, descending}, x.shape()[k]);
  return {gather(x, int(k), idx), idx};
}
inline var argsort(const var& x, int dim = -1, bool descending = false) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("argsort", {{"dim", dim}, {"descending", descending}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return argsort(ins[0], int(at.i(0)), at.flag(1));
                     });
  const std::size_t k = dynamic::normalize_axis("argsort", dim, x.rank());
  return dynamic::order_along(x, k, {descending, descending}, x.shape()[k]);
}

// The k largest (smallest) values along `dim`, in order, and their indices: the first k of the
// stable sort, so ties go to the lower index. The values are differentiable.
inline sorted_result topk(const var& x, index_t k, int dim = -1, bool largest = true) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return dynamic::as_sorted(t->record_list(
        "topk", {{"k", k}, {"dim", dim}, {"largest", largest}}, {&x},
        [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
          return dynamic::as_list(topk(ins[0], index_t(at.i(0)), int(at.i(1)), at.flag(2)));
        }));
  const std::size_t a = dynamic::normalize_axis("topk", dim, x.rank());
  if (k > x.shape()[a])
    throw index_error(dynamic::text("fg::topk(): k = ", k, " is more than the ", x.shape()[a],
                                    " elements along dim ", a, " of ", x.shape().str()));
  var idx = dynamic::order_along(x, a, {largest, largest}, k);
  return {gather(x, int(a), idx), idx};
}

}  // namespace fg

FG_DIAGNOSTICS_END
