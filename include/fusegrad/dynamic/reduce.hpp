// fusegrad/dynamic/reduce.hpp — reductions of vars over all elements or chosen axes (keepdim),
// through the reduction structs of ops/reduce.hpp and their gradient seeds
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/elementwise.hpp"
#include "fusegrad/dynamic/layout.hpp"
#include "fusegrad/ops/reduce.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg {

namespace dynamic {

// Which axes are reduced; negative axes count from the end, none given means all.
inline std::array<bool, max_rank> axis_set(const char* op, const extents& x, list_arg<int> axes) {
  std::array<bool, max_rank> set{};
  if (axes.size() == 0)
    set.fill(true);
  for (int a : axes) {
    const int r = int(x.rank()), k = a < 0 ? a + r : a;
    if (k < 0 || k >= r) {
      detail::message m;
      m << "fg::" << op << "(): axis " << index_t(a < 0 ? -a : a) << (a < 0 ? " (negative)" : "")
        << " is out of range for shape " << x.str().c_str();
      throw shape_error(m.c_str());
    }
    set[std::size_t(k)] = true;
  }
  return set;
}

struct reduction_plan {
  extents out;           // the result's extents
  strides from_input{};  // the result's strides seen from the input (0 on reduced axes)
  index_t n = 0;         // elements folded into each result
};
inline reduction_plan plan_reduction(const extents& x, const std::array<bool, max_rank>& set,
                                     bool keep) {
  reduction_plan p;
  extents kept = extents::of_rank(x.rank());  // x's rank, reduced axes as 1
  std::size_t r = 0;
  for (std::size_t k = 0; k < x.rank(); ++k)
    if (!set[k] || keep)
      ++r;
  p.out = extents::of_rank(r);
  r = 0;
  for (std::size_t k = 0; k < x.rank(); ++k) {
    kept[k] = set[k] ? 1 : x[k];
    if (!set[k] || keep)
      p.out[r++] = kept[k];
  }
  p.from_input = broadcast_strides(kept, x);
  p.n = kept.size() ? x.size() / kept.size() : 0;
  return p;
}

// Folds f(y, slot) into acc[slot] with Fold's combine, over every element y of x.
// Threads split the result's elements (kept_axis): each is folded by one thread, in the order of
// x's elements, as on one thread.
template <class Fold, class T, class F>
void fold_slices(const var& x, const reduction_plan& p, T* acc, F f) {
  const T* src = x.data<T>();
  for_each_row_parallel<2>(x.shape(), {p.from_input, broadcast_strides(x.shape(), x.shape())},
                           kept_axis(x.shape(), p.from_input),
                           [&](auto off, auto inner, index_t len) {
                             for (index_t i = 0; i < len; ++i) {
                               T& a = acc[off[0] + std::ptrdiff_t(i) * inner[0]];
                               a = Fold::combine(a, f(src[off[1] + std::ptrdiff_t(i)], &a));
                             }
                           });
}

template <class Red>
inline constexpr bool is_sum_v =
    std::is_same_v<Red, ops::sum_red> || std::is_same_v<Red, ops::mean_red>;

// What a reduction struct states, as named concepts (nvcc 13 misjudges requires-expressions
// inside generic lambdas, and this header is compiled by it with <fusegrad/cuda.hpp>).
template <class Red>
concept has_prepass = requires {
  typename Red::prepass;
};
template <class Red>
concept has_stats = requires {
  Red::stats;
};

// sum or mean over axes of a var in device memory: its elements summed into the kept ones by
// one kernel, and the gradient spread back by another, each scaled for a mean as it goes.
template <class Red> var reduce_on_device(const var& x, const reduction_plan& p) {
  const double scale = dispatch(x.dtype(), [&](auto z) {  // finish() of a sum or mean scales
    using T = decltype(z);
    return double(Red::finish(T(1), T(0), T(p.n)));
  });
  var out = fold(x, p.out, p.from_input, scale);
  record(out, Red::name, {x}, [&](node&) {
    return [from = x.shape(), st = p.from_input, scale](const var& g) {
      return var_list{spread(g, from, st, scale)};
    };
  });
  return out;
}

template <class Red> var reduce_forward(const var& x, const reduction_plan& p) {
  var out = var::empty(p.out, x.dtype());
  if constexpr (is_sum_v<Red>) {
    if (out.size() == 1) {  // every element: one SIMD loop
      dispatch(x.dtype(), [&](auto z) {
        using T = decltype(z);
        const T* src = x.data<T>();
        const T total = parallel_reduce(
            0, x.size(), fg::detail::chunk_elements(x.size()), T(0),
            [&](index_t lo, index_t hi) { return sum_contiguous(src + lo, hi - lo); },
            [](T a, T b) { return a + b; });
        out.data<T>()[0] = Red::finish(total, T(0), T(p.n));
      });
      return out;
    }
  }
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    T* o = out.data<T>();
    const index_t m = out.size();
    std::vector<T> pre(m, T(0));
    if constexpr (has_prepass<Red>) {
      using P = typename Red::prepass;
      std::fill(pre.begin(), pre.end(), P::template identity<T>());
      fold_slices<P>(x, p, pre.data(), [](T y, T*) { return y; });
      for (T& v : pre)  // an all -inf slice must not give inf - inf
        v = std::isfinite(v) ? v : T(0);
      std::fill(o, o + m, Red::template identity<T>());
      const T* base = o;
      fold_slices<Red>(x, p, o,
                       [&](T y, T* slot) { return Red::map(y, pre[std::size_t(slot - base)]); });
    } else {
      std::fill(o, o + m, Red::template identity<T>());
      fold_slices<Red>(x, p, o, [](T y, T*) { return y; });
    }
    for (index_t i = 0; i < m; ++i)
      o[i] = Red::finish(o[i], pre[i], T(p.n));
  });
  return out;
}

// Statistic I of each slice (Red::stat_fold<I> over Red::stat<I>(element, slice's result)).
template <class Red, int I, class T>
void fold_stat(const var& x, const reduction_plan& p, const T* o, std::vector<T>& stat) {
  using F = typename Red::template stat_fold<I>;
  std::fill(stat.begin(), stat.end(), F::template identity<T>());
  const T* base = stat.data();
  fold_slices<F>(x, p, stat.data(),
                 [&](T y, T* slot) { return Red::template stat<I>(y, o[slot - base]); });
}

// d x = Red::seed(y, out, adjoint, n, slice statistics), each element against its slice.
template <class Red>
var reduce_backward(const var& x, const var& out, const var& g, const reduction_plan& p) {
  var gx = var::empty(x.shape(), x.dtype());
  if constexpr (is_sum_v<Red>) {
    if (out.size() == 1) {  // every element gets the same seed
      dispatch(x.dtype(), [&](auto z) {
        using T = decltype(z);
        const T seed = Red::seed(T(0), T(0), g.data<T>()[0], T(p.n), {});
        std::fill(gx.data<T>(), gx.data<T>() + gx.size(), seed);
      });
      return gx;
    }
  }
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* o = out.data<T>();
    const T* a = g.data<T>();
    std::vector<T> stat[2] = {std::vector<T>(out.size(), T(0)), std::vector<T>(out.size(), T(0))};
    if constexpr (has_stats<Red>) {
      static_assert(Red::stats <= 2, "fusegrad: a reduction keeps at most two statistics");
      fold_stat<Red, 0>(x, p, o, stat[0]);
      if constexpr (Red::stats == 2)
        fold_stat<Red, 1>(x, p, o, stat[1]);
    }
    const T* src = x.data<T>();
    T* dst = gx.data<T>();
    const strides dense = broadcast_strides(x.shape(), x.shape());  // each written once: any axis
    for_each_row_parallel<2>(x.shape(), {p.from_input, dense}, kept_axis(x.shape(), dense),
                             [&](auto off, auto inner, index_t len) {
                               for (index_t i = 0; i < len; ++i) {
                                 const std::ptrdiff_t s = off[0] + std::ptrdiff_t(i) * inner[0];
                                 const std::ptrdiff_t e = off[1] + std::ptrdiff_t(i);
                                 dst[e] = Red::seed(
                                     src[e], o[s], a[s], T(p.n),
                                     {{stat[0][std::size_t(s)], stat[1][std::size_t(s)]}});
                               }
                             });
  });
  return gx;
}

// A reduction of an integer (or bool) tensor, as PyTorch: sum and prod give int64 (wrapping on
// overflow), max and min the input's dtype; the others are refused (mean, logsumexp).
template <class Red> var reduce_integer(const var& x, list_arg<int> axes, bool keepdim) {
  constexpr bool sums = std::is_same_v<Red, ops::sum_red> || std::is_same_v<Red, ops::prod_red>;
  constexpr bool extremes = std::is_same_v<Red, ops::max_red> || std::is_same_v<Red, ops::min_red>;
  if constexpr (!sums && !extremes) {
    throw dtype_error(text("fg::", Red::name, "(): the tensor holds ", dtype_name(x.dtype()),
                           ", and this reduction needs a floating dtype (as in PyTorch); convert "
                           "it first, e.g. x.to(fg::float32)"));
  } else {
    const auto p = plan_reduction(x.shape(), axis_set(Red::name, x.shape(), axes), keepdim);
    if (extremes && x.size() == 0)
      throw shape_error(text("fg::", Red::name, "(): the tensor ", x.shape().str(),
                             " has no elements, and the reduction has no identity"));
    using limits = std::numeric_limits<std::int64_t>;
    const wrapping_int identity = std::is_same_v<Red, ops::max_red> ? limits::min()
                                  : std::is_same_v<Red, ops::min_red>
                                      ? limits::max()
                                      : Red::template identity<wrapping_int>();
    std::vector<wrapping_int> acc(std::size_t(p.out.size()), identity);
    const var xi = x.to(dtype::int64);
    const std::int64_t* src = xi.data<std::int64_t>();
    for_each_row<1>(x.shape(), {p.from_input}, [&](auto off, auto inner, index_t len) {
      for (index_t i = 0; i < len; ++i, ++src) {
        wrapping_int& a = acc[std::size_t(off[0] + std::ptrdiff_t(i) * inner[0])];
        a = Red::combine(a, wrapping_int(*src));
      }
    });
    var out = var::empty(p.out, dtype::int64);
    std::transform(acc.begin(), acc.end(), out.data<std::int64_t>(),
                   [](wrapping_int a) { return a.v; });
    return out.to(sums ? dtype::int64 : x.dtype());
  }
}

}  // namespace dynamic

// A reduction struct of ops/reduce.hpp (or a user's) over `axes` (none: all), keeping reduced
// axes as 1 when `keepdim`.
// The sum or mean of every element of a pending elementwise chain runs in the chain's pass (and
// on the device, only those reductions run).
template <class Red> var reduce(const var& x, list_arg<int> axes = {}, bool keepdim = false) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]] {
    auto replay = [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
      return reduce<Red>(ins[0], at.list<int>(0), at.flag(1));
    };
    if constexpr (dynamic::is_sum_v<Red>)  // a graph's planner may fuse it into a chain
      dynamic::op_registry::instance().add_chain_reduction(&dynamic::replay_as<decltype(replay)>,
                                                           &dynamic::reduce_chain<Red>);
    return t->record(Red::name, {{"axes", dynamic::int_attr(axes)}, {"keepdim", keepdim}}, {&x},
                     replay);
  }
  if (!is_floating(x.dtype()))
    return dynamic::reduce_integer<Red>(x, axes, keepdim);
  if (dynamic::compute_dtype(x.dtype()) != x.dtype())  // float16, bfloat16: in float32
    return reduce<Red>(x.to(dtype::float32), axes, keepdim).to(x.dtype());
  if constexpr (dynamic::is_sum_v<Red>) {
    if (axes.size() == 0 && x.get().pending())
      return dynamic::reduce_fused<Red>(x, keepdim);
    if (axes.size() == 0 && x.on_device())  // the device sums chains: x as a chain of x * 1
      return dynamic::reduce_fused<Red>(apply<ops::mul_op>(x, dynamic::constant(1, x.dtype())),
                                        keepdim);
  }
  const auto p =
      dynamic::plan_reduction(x.shape(), dynamic::axis_set(Red::name, x.shape(), axes), keepdim);
  if constexpr (dynamic::is_sum_v<Red>) {
    if (x.on_device() && p.out.size() == 1)  // every element: the chain's sum, many blocks
      return reshape(reduce<Red>(x), p.out);
    if (x.on_device())
      return dynamic::reduce_on_device<Red>(x, p);
  }
  var out = dynamic::reduce_forward<Red>(x, p);
  dynamic::record(out, Red::name, {x}, [&](dynamic::node& n) {
    return [x = n.save(x), o = n.save(out.detach()), p](const var& g) {
      return dynamic::var_list{dynamic::reduce_backward<Red>(x, o, g, p)};
    };
  });
  return out;
}

#define FG_DYNAMIC_REDUCTION(fn, red)                                          \
  inline var fn(const var& x, list_arg<int> axes = {}, bool keepdim = false) { \
    return reduce<ops::red>(x, axes, keepdim);                                 \
  }
FG_DYNAMIC_REDUCTION(sum, sum_red)
FG_DYNAMIC_REDUCTION(mean, mean_red)
FG_DYNAMIC_REDUCTION(prod, prod_red)
FG_DYNAMIC_REDUCTION(max, max_red)
FG_DYNAMIC_REDUCTION(min, min_red)
FG_DYNAMIC_REDUCTION(logsumexp, logsumexp_red)
#undef FG_DYNAMIC_REDUCTION

// The number of non-zero elements over `axes` (none: all), int64; whether any (every) element
// is non-zero, bool: torch.count_nonzero, any and all.
inline var count_nonzero(const var& x, list_arg<int> axes = {}) {
  return sum(x != 0, axes);
}
inline var any(const var& x, list_arg<int> axes = {}, bool keepdim = false) {
  return sum(x != 0, axes, keepdim) > 0;
}
inline var all(const var& x, list_arg<int> axes = {}, bool keepdim = false) {
  return sum(x == 0, axes, keepdim) == 0;
}

}  // namespace fg

FG_DIAGNOSTICS_END
