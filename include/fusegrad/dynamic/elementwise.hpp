// fusegrad/dynamic/elementwise.hpp — every elementwise op of the table on vars, with NumPy
// broadcasting, through the same op structs as the static path (SIMD loops, one derivative rule)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/convert.hpp"
#include "fusegrad/dynamic/fusion.hpp"
#include "fusegrad/dynamic/graph.hpp"
#include "fusegrad/dynamic/tape.hpp"
#include "fusegrad/expr/functions.hpp"
#include "fusegrad/ops/binary.hpp"
#include "fusegrad/ops/unary.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <concepts>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg {

namespace dynamic {

// NumPy broadcasting of every input's extents; a mismatch names the op and all the shapes.
template <std::size_t N>
extents broadcast(const char* op, const std::array<const extents*, N>& in) {
  if constexpr (N == 1)  // (every unary op of a small step comes here)
    return *in[0];
  std::size_t r = 0;
  for (const extents* e : in)
    r = std::max(r, e->rank());
  extents out = extents::of_rank(r);
  for (std::size_t i = 0; i < r; ++i) {
    index_t x = 1;
    for (const extents* e : in) {
      const index_t ei = i < e->rank() ? (*e)[e->rank() - 1 - i] : 1;
      if (ei != 1 && x != 1 && ei != x) {
        std::string m = text("fg::", op, "(): cannot broadcast shapes");
        for (std::size_t k = 0; k < N; ++k)
          m.append(k ? " and " : " ").append(in[k]->str());
        throw shape_error(m);
      }
      x = ei == 1 ? x : ei;
    }
    out[r - 1 - i] = x;
  }
  return out;
}

// Element strides of a contiguous tensor of extents e read at output extents `out` (right
// aligned; 0 along broadcast axes).
inline strides broadcast_strides(const extents& e, const extents& out) {
  strides s{};
  std::ptrdiff_t acc = 1;
  for (std::size_t i = 0; i < e.rank(); ++i) {
    const std::size_t k = e.rank() - 1 - i, o = out.rank() - 1 - i;
    s[o] = e[k] == 1 && out[o] != 1 ? 0 : acc;
    acc *= std::ptrdiff_t(e[k]);
  }
  return s;
}

// Calls row(offsets, inner_strides, length) for each row (last axis) of `out`, in row-major
// order, with every input's element offset at the row's start.
template <std::size_t N, class Row>
void for_each_row(const extents& out, const std::array<strides, N>& st, Row row) {
  const std::size_t r = out.rank();
  std::array<std::ptrdiff_t, N> off{}, inner{};
  if (r == 0) {
    row(off, inner, index_t(1));
    return;
  }
  for (std::size_t k = 0; k < N; ++k)
    inner[k] = st[k][r - 1];
  const index_t len = out[r - 1], rows = len ? out.size() / len : 0;
  std::array<index_t, max_rank> idx{};
  for (index_t n = 0; n < rows; ++n) {
    row(off, inner, len);
    for (std::size_t d = r - 1; d-- > 0;) {  // next row: odometer over the outer axes
      for (std::size_t k = 0; k < N; ++k)
        off[k] += st[k][d];
      if (++idx[d] < out[d])
        break;
      for (std::size_t k = 0; k < N; ++k)
        off[k] -= st[k][d] * std::ptrdiff_t(out[d]);
      idx[d] = 0;
    }
  }
}

// for_each_row on several threads: `out` is cut along `axis` into slabs, each walked in the
// order one thread would walk it. Callers pick an axis along which the slabs write disjoint
// elements (see kept_axis), so every element is computed as on one thread, whatever their
// count. axis < 0, and loops of up to fg::detail::serial_elements, run as one for_each_row.
template <std::size_t N, class Row>
void for_each_row_parallel(const extents& out, const std::array<strides, N>& st, int axis,
                           Row row) {
  if (axis < 0 || out.size() <= fg::detail::serial_elements) {
    for_each_row<N>(out, st, row);
    return;
  }
  const auto a = std::size_t(axis);
  const index_t len = out[a];
  parallel_for(0, len, fg::detail::chunk_indices(out.size(), out.size() / len),
               [&](index_t lo, index_t hi) {
                 extents slab = out;
                 slab[a] = hi - lo;
                 std::array<std::ptrdiff_t, N> base;
                 for (std::size_t k = 0; k < N; ++k)
                   base[k] = st[k][a] * std::ptrdiff_t(lo);
                 for_each_row<N>(slab, st, [&](auto off, auto inner, index_t n) {
                   for (std::size_t k = 0; k < N; ++k)
                     off[k] += base[k];
                   row(off, inner, n);
                 });
               });
}
// The axis of `x` to cut for threads when each element adds into a smaller tensor read through
// `st` (0 along the axes summed over): the longest axis the smaller tensor keeps, so that each
// of its elements is summed by one thread, in order. -1 when it keeps none (one element). Given
// x's own contiguous strides: its longest axis (a loop writing each element once).
inline int kept_axis(const extents& x, const strides& st) {
  int best = -1;
  for (std::size_t k = 0; k < x.rank(); ++k)
    if (st[k] != 0 && x[k] > 1 && (best < 0 || x[k] > x[std::size_t(best)]))
      best = int(k);
  return best;
}

// Broadcasting by strides (`st`: the small tensor's, seen from the big extents, 0 along the
// axes it is broadcast over), where the elements are, unrecorded, each element times `scale`:
// x read at every element of extents `big`; and back, the elements of g (of extents `big`)
// summed into a tensor of extents `small` (a gradient summed back to a broadcast operand's
// shape, or a sum or mean over axes).
inline var spread(const var& x, const extents& big, const strides& st, double scale = 1) {
  const impl& xi = x.ready();
  const device_backend* dev = xi.device();
  var out = empty_on(dev, big, xi.type);
  if (dev) {
    dev->spread(xi.type, xi.first_byte(), out.get().first_byte(), big, st, scale);
    return out;
  }
  dispatch(xi.type, [&](auto z) {
    using T = decltype(z);
    const T* src = x.data<T>();
    T* dst = out.data<T>();
    const strides dense = broadcast_strides(big, big);  // each element written once: any axis
    for_each_row_parallel<2>(
        big, {st, dense}, kept_axis(big, dense), [&](auto off, auto inner, index_t len) {
          for (index_t i = 0; i < len; ++i)
            dst[off[1] + std::ptrdiff_t(i)] = T(scale) * src[off[0] + std::ptrdiff_t(i) * inner[0]];
        });
  });
  return out;
}
inline var fold(const var& g, const extents& small, const strides& st, double scale = 1) {
  const impl& gi = g.ready();
  if (const device_backend* dev = gi.device()) {  // (the device writes every element)
    var out = empty_on(dev, small, gi.type);
    dev->fold(gi.type, gi.first_byte(), out.get().first_byte(), gi.shape, st, scale);
    return out;
  }
  var out = zeros_on(nullptr, small, gi.type);
  dispatch(gi.type, [&](auto z) {
    using T = decltype(z);
    const T* src = g.data<T>();
    T* dst = out.data<T>();
    for_each_row_parallel<2>(gi.shape, {st, broadcast_strides(gi.shape, gi.shape)},
                             kept_axis(gi.shape, st), [&](auto off, auto inner, index_t len) {
                               for (index_t i = 0; i < len; ++i)
                                 dst[off[0] + std::ptrdiff_t(i) * inner[0]] +=
                                     src[off[1] + std::ptrdiff_t(i)];
                             });
    if (scale != 1)
      for (index_t j = 0, n = out.size(); j < n; ++j)
        dst[j] *= T(scale);
  });
  return out;
}

// Sums a value of extents `from` down to extents `to` (the reverse of broadcasting).
inline var sum_to(const var& g, const extents& to) {
  if (g.shape() == to)
    return g;
  return fold(g, to, broadcast_strides(to, g.shape()));
}

template <class... V> void check_dtypes(const char* op, const V&... in) {
  const dtype first = (in.dtype(), ...);
  if (((in.dtype() != first) || ...)) {
    std::string m = std::string("fg::") + op + "(): mixed dtypes";
    ((m += std::string(" ") + dtype_name(in.dtype())), ...);
    throw dtype_error(m + "; convert one of them first, e.g. x.to(fg::float32)");
  }
}

template <class Op> inline constexpr bool is_comparison_v = std::is_base_of_v<ops::step_op, Op>;

// PyTorch's result dtype of an op's operands: the promoted dtype of the tensors with axes,
// widened by 0-d tensors (numbers come as 0-d tensors) only where they are of a higher kind
// (an integer over bool, a float over an integer): float32 [N] + float64 0-d is float32.
template <class... V> dtype result_type(const V&... in) {
  dtype dim = dtype::bool_, zero = dtype::bool_;
  bool has_dim = false, has_zero = false;
  auto add = [](dtype& r, bool& has, dtype t) {
    r = has ? promote_types(r, t) : t;
    has = true;
  };
  ((in.rank() ? add(dim, has_dim, in.dtype()) : add(zero, has_zero, in.dtype())), ...);
  if (!has_dim || !has_zero)
    return has_dim ? dim : zero;
  if (is_floating(dim) || (dim != dtype::bool_ && !is_floating(zero)))
    return dim;
  return promote_types(dim, zero);
}

// The dtype of a number in an op with a tensor of dtype t: a floating number takes a floating
// t (else float32), an integral one an integer t (else int64 for bool); floats take any.
inline dtype number_dtype(dtype t, bool floating_number) {
  if (floating_number)
    return is_floating(t) ? t : dtype::float32;
  return t == dtype::bool_ ? dtype::int64 : t;
}

// y = Op(in...) on integer operands (bool included), of dtype t: forward only, each element
// read as a wrapping int64, the result converted to t (one loop per op, the conversion shared).
template <class Op, std::size_t... I, class... V>
var map_integer(std::index_sequence<I...>, dtype t, const extents& out, const V&... in) {
  constexpr std::size_t N = sizeof...(V);
  const std::array<var, N> x{in.to(dtype::int64)...};
  const std::array<strides, N> st{broadcast_strides(in.shape(), out)...};
  const std::array<const std::int64_t*, N> p{x[I].template data<std::int64_t>()...};
  var y = var::empty(out, dtype::int64);
  std::int64_t* dst = y.data<std::int64_t>();
  for_each_row<N>(out, st, [&](auto off, auto inner, index_t len) {
    for (index_t i = 0; i < len; ++i)
      *dst++ = Op::forward(wrapping_int(p[I][off[I] + std::ptrdiff_t(i) * inner[I]])...).v;
  });
  return y.to(t);
}

// y = Op(in...) elementwise, now, at the broadcast extents `out`. Rows every input reads with
// unit stride go through SIMD batches.
template <class Op, std::size_t... I, class... V>
var map(std::index_sequence<I...>, const extents& out, const V&... in) {
  constexpr std::size_t N = sizeof...(V);
  const std::array<strides, N> st{broadcast_strides(in.shape(), out)...};
  var y = var::empty(out, (in.dtype(), ...));
  dispatch(y.dtype(), [&](auto z) {
    using T = decltype(z);
    const std::array<const T*, N> p{in.template data<T>()...};
    T* dst = y.data<T>();
    for_each_row<N>(out, st, [&](auto off, auto inner, index_t len) {
      if ((true && ... && (inner[I] == 1))) {  // (clang warns on `((a == b))` when N is 1)
        const T* x[N] = {(p[I] + off[I])...};
        forward_contiguous<Op>(std::index_sequence<I...>{}, dst, x, len);
        dst += len;
        return;
      }
      for (index_t i = 0; i < len; ++i)
        *dst++ = Op::forward(p[I][off[I] + std::ptrdiff_t(i) * inner[I]]...);
    });
  });
  return y;
}

// d in_k = sum_to(grad * d y / d in_k) for the inputs that need it.
template <class Op, std::size_t... I, class... V>
var_list map_backward(std::index_sequence<I...>, const var& g, const var& y,
                      const pool_vector<bool>& needs, const V&... in) {
  constexpr std::size_t N = sizeof...(V);
  const extents& out = y.shape();
  const std::array<strides, N> st{broadcast_strides(in.shape(), out)...};
  std::array<var, N> full;
  for (std::size_t k = 0; k < N; ++k)
    if (needs[k])
      full[k] = var::empty(out, y.dtype());
  dispatch(y.dtype(), [&](auto z) {
    using T = decltype(z);
    const std::array<const T*, N> p{in.template data<T>()...};
    std::array<T*, N> q{};
    for (std::size_t k = 0; k < N; ++k)
      q[k] = full[k].defined() ? full[k].template data<T>() : nullptr;
    const T* gy = g.data<T>();
    const T* yy = y.data<T>();
    if (((in.shape() == out) && ...)) {  // no broadcasting: one SIMD loop over everything
      const T* no_aux = nullptr;
      backward_contiguous<Op>(std::index_sequence<I...>{}, gy, yy, no_aux, p.data(), q.data(), ~0u,
                              out.size());
      return;
    }
    index_t e = 0;
    for_each_row<N>(out, st, [&](auto off, auto inner, index_t len) {
      for (index_t i = 0; i < len; ++i, ++e) {
        const auto d = fg::detail::local_partials<Op, T>(
            yy[e], no_aux{}, p[I][off[I] + std::ptrdiff_t(i) * inner[I]]...);
        for (std::size_t k = 0; k < N; ++k)
          if (q[k])
            q[k][e] = gy[e] * d[k];
      }
    });
  });
  var_list grads(N);
  ((grads[I] = full[I].defined() ? sum_to(full[I], in.shape()) : var()), ...);
  return grads;
}

// The number of `x * 2.0` or `1.0 + x` as a 0-d var. It never escapes the op it is given to (no
// gradient, not reachable from the tape's inputs, never written), so the numbers a loop uses
// each step are made once per thread and shared. (A reference to this thread's entry: valid
// until the next call.)
inline const var& constant(double value, dtype t) {
  struct entry {
    std::uint64_t bits;
    dtype type;
    var v;
  };
  thread_local std::array<entry, 8> cache{};
  const auto bits = std::bit_cast<std::uint64_t>(value);
  entry& e = cache[(bits ^ bits >> 29 ^ bits >> 52 ^ std::uint64_t(t)) % cache.size()];
  if (!e.v.defined() || e.bits != bits || e.type != t)
    e = {bits, t, var::scalar(value, t)};
  return e.v;
}

}  // namespace dynamic

// x's elements at extents `shape`, by NumPy broadcasting (a copy); its gradient is summed back.
inline var broadcast_to(const var& x, const extents& shape) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("broadcast_to", {{"shape", shape}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return broadcast_to(ins[0], at.shape(0));
                     });
  if (!(dynamic::broadcast<2>("broadcast_to", {&x.shape(), &shape}) == shape))
    throw shape_error(dynamic::text("fg::broadcast_to(): cannot broadcast shape ", x.shape().str(),
                                    " to ", shape.str(), " (only its axes of extent 1 can grow)"));
  var y = dynamic::spread(x, shape, dynamic::broadcast_strides(x.shape(), shape));
  dynamic::record(y, "broadcast_to", {x}, [&](dynamic::node&) {
    return [from = x.shape()](const var& g) { return dynamic::var_list{dynamic::sum_to(g, from)}; };
  });
  return y;
}

namespace dynamic {
// A device chain reads each operand at the result's shape or as one element: an operand in
// device memory broadcast otherwise is spread to the result's shape first.
inline bool spread_for_chain(const var& x, const extents& out) {
  return x.get().device() && x.size() != 1 && x.size() != out.size();
}
inline var at_chain_shape(const var& x, const extents& out) {
  return spread_for_chain(x, out) ? broadcast_to(x, out) : x;
}
}  // namespace dynamic

namespace dynamic {
// Op on operands of one computing dtype (float32 or float64), recorded on the tape. Unless
// fusion is off, the op is deferred (fusion.hpp) when every input has the result's elements or
// a single one: a chain of such ops then runs, and is recorded, as one.
template <class Op, std::same_as<var>... V> var apply_computed(const V&... in) {
  using seq = std::index_sequence_for<V...>;
  const extents out = broadcast<sizeof...(V)>(Op::name, {&in.shape()...});
  if ((spread_for_chain(in, out) || ...)) {
    chain_backend<Op>(in...);  // its errors name the shapes given, before any copy
    return apply_computed<Op>(at_chain_shape(in, out)...);
  }
  if (var y = defer<Op>(out, in...); y.defined())
    return y;
  var y = map<Op>(seq{}, out, in...);
  record(y, Op::name, {in...}, [&](node& n) {
    return [keep = std::array<var, sizeof...(V)>{n.save(in)...}, out = n.save(y.detach()),
            needs = n.wants()](const var& g) {
      return std::apply(
          [&](const auto&... x) { return map_backward<Op>(seq{}, g, out, needs, x...); }, keep);
    };
  });
  return y;
}

// Op on operands of other or mixed dtypes, by PyTorch's rules: floats compute in their
// promoted dtype (float16 and bfloat16 in float32, the result converted back); integers in
// their own if the op is exact on them, else in float32; a comparison gives bool.
template <class Op, std::same_as<var>... V> [[gnu::noinline]] var apply_promoted(const V&... in) {
  const dtype t = result_type(in...);
  if (is_floating(t)) {
    var y = apply_computed<Op>(in.to(compute_dtype(t))...);
    if (is_comparison_v<Op> && y.on_device())  // (no bool storage there yet: a 0/1 mask, fused)
      return y;
    return y.to(is_comparison_v<Op> ? dtype::bool_ : t);
  }
  if constexpr (op_traits<Op>::integers) {
    if (t == dtype::bool_ && (std::is_same_v<Op, ops::sub_op> || std::is_same_v<Op, ops::neg_op>))
      throw dtype_error(text("fg::", Op::name,
                             "(): subtracting or negating bool tensors is not defined (as in "
                             "PyTorch); convert them first, e.g. x.to(fg::int64)"));
    const extents out = broadcast<sizeof...(V)>(Op::name, {&in.shape()...});
    return map_integer<Op>(std::index_sequence_for<V...>{}, is_comparison_v<Op> ? dtype::bool_ : t,
                           out, in...);
  } else {
    return apply_computed<Op>(in.to(dtype::float32)...);
  }
}
}  // namespace dynamic

namespace dynamic {
// The name an elementwise op has in a graph: its own, but where a reduction has it too.
template <class Op> inline constexpr const char* graph_name = Op::name;
template <> inline constexpr const char* graph_name<ops::min_op> = "minimum";
template <> inline constexpr const char* graph_name<ops::max_op> = "maximum";
}  // namespace dynamic

// Op (a struct of ops/*.hpp, or a user's) applied elementwise to vars, recorded on the tape,
// its operands promoted to a common dtype as PyTorch does (dynamic::result_type).
template <class Op, std::same_as<var>... V> var apply(const V&... in) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]] {
    auto replay = [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list&) {
      return [&]<std::size_t... I>(std::index_sequence<I...>) {
        return apply<Op>(ins[I]...);
      }
      (std::index_sequence_for<V...>{});
    };
    if constexpr (!dynamic::is_comparison_v<Op>)  // a graph's planner may fuse it
      dynamic::op_registry::instance().add_chain_op(&dynamic::replay_as<decltype(replay)>,
                                                    &dynamic::fused_op_of<Op, sizeof...(V)>);
    return t->record(dynamic::graph_name<Op>, {}, {&in...}, replay);
  }
  if constexpr (!dynamic::is_comparison_v<Op>) {
    const dtype t = (in.dtype(), ...);
    if ((t == dtype::float32 || t == dtype::float64) && ((in.dtype() == t) && ...))
      return dynamic::apply_computed<Op>(in...);
  }
  return dynamic::apply_promoted<Op>(in...);
}

// The op table's vocabulary on vars: the same names as on static expressions.
#define FG_DYNAMIC_UNARY(fn, op_type) \
  inline var fn(const var& x) {       \
    return apply<ops::op_type>(x);    \
  }
FG_UNARY_FUNCTIONS(FG_DYNAMIC_UNARY)
FG_DYNAMIC_UNARY(operator-, neg_op)
#undef FG_DYNAMIC_UNARY

// Binary ops on two vars, or a var and a number (a 0-d constant: dynamic::number_dtype).
#define FG_DYNAMIC_BINARY(fn, op_type)                                                           \
  inline var fn(const var& a, const var& b) {                                                    \
    return apply<ops::op_type>(a, b);                                                            \
  }                                                                                              \
  inline var fn(const var& a, double b) {                                                        \
    return apply<ops::op_type>(a, dynamic::constant(b, dynamic::number_dtype(a.dtype(), true))); \
  }                                                                                              \
  inline var fn(double a, const var& b) {                                                        \
    return apply<ops::op_type>(dynamic::constant(a, dynamic::number_dtype(b.dtype(), true)), b); \
  }                                                                                              \
  template <std::integral I> var fn(const var& a, I b) {                                         \
    return apply<ops::op_type>(                                                                  \
        a, dynamic::constant(double(b), dynamic::number_dtype(a.dtype(), false)));               \
  }                                                                                              \
  template <std::integral I> var fn(I a, const var& b) {                                         \
    return apply<ops::op_type>(                                                                  \
        dynamic::constant(double(a), dynamic::number_dtype(b.dtype(), false)), b);               \
  }
FG_BINARY_FUNCTIONS(FG_DYNAMIC_BINARY)
#undef FG_DYNAMIC_BINARY

// == and != compare elementwise, as PyTorch's (bool results; equal() and not_equal() are the
// same ops by the static path's names).
inline var operator==(const var& a, const var& b) {
  return equal(a, b);
}
inline var operator!=(const var& a, const var& b) {
  return not_equal(a, b);
}
template <class N>
requires std::is_arithmetic_v<N> var operator==(const var& a, N b) {
  return equal(a, b);
}
template <class N>
requires std::is_arithmetic_v<N> var operator!=(const var& a, N b) {
  return not_equal(a, b);
}

// a where cond is non-zero (true), b elsewhere; all three broadcast together. a and b promote
// as in a binary op; cond may be of any dtype.
inline var where(const var& cond, const var& a, const var& b) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("where", {}, {&cond, &a, &b},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list&) {
                       return where(ins[0], ins[1], ins[2]);
                     });
  const dtype t = dynamic::result_type(a, b);
  if (!is_floating(t)) {
    const extents out = dynamic::broadcast<3>("where", {&cond.shape(), &a.shape(), &b.shape()});
    return dynamic::map_integer<ops::where_op>(std::make_index_sequence<3>{}, t, out, cond, a, b);
  }
  const dtype c = dynamic::compute_dtype(t);
  return apply<ops::where_op>(cond.to(c), a.to(c), b.to(c)).to(t);
}

// where() with a number for a branch, as torch.where(cond, x, 0.0): the number takes the other
// branch's dtype as in a binary op (dynamic::number_dtype: an integer tensor stays integer
// beside an integral number).
template <class N>
requires std::is_arithmetic_v<N> var where(const var& cond, const var& a, N b) {
  return where(
      cond, a,
      dynamic::constant(double(b), dynamic::number_dtype(a.dtype(), std::is_floating_point_v<N>)));
}
template <class N>
requires std::is_arithmetic_v<N> var where(const var& cond, N a, const var& b) {
  return where(
      cond,
      dynamic::constant(double(a), dynamic::number_dtype(b.dtype(), std::is_floating_point_v<N>)),
      b);
}

namespace dynamic {
// max(x, lo) then min(., hi) by selection: lo > hi gives hi everywhere, as PyTorch's.
inline var clamp_between(const var& x, const var& lo, const var& hi) {
  const var t = where(x < lo, lo, x);
  return where(t > hi, hi, t);
}
}  // namespace dynamic

// x limited to [lo, hi], as torch.clamp: the gradient passes where lo <= x <= hi (bounds
// included) and is 0 outside; NaN stays NaN; lo > hi gives hi. Integers stay integers with
// integral bounds.
inline var clamp(const var& x, double lo, double hi) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("clamp", {{"min", lo}, {"max", hi}}, {&x},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                       return clamp(ins[0], at.f(0), at.f(1));
                     });
  if (!is_floating(x.dtype()) && (lo != std::floor(lo) || hi != std::floor(hi)))
    return clamp(x.to(dtype::float32), lo, hi);
  if (!is_floating(x.dtype()))
    return dynamic::clamp_between(x, var::scalar(lo, x.dtype()), var::scalar(hi, x.dtype()));
  const dtype c = dynamic::compute_dtype(x.dtype());
  // (apply_computed keeps the masks in the chain: one fused pass)
  const var xc = x.to(c), l = dynamic::constant(lo, c), h = dynamic::constant(hi, c);
  const var t =
      dynamic::apply_computed<ops::where_op>(dynamic::apply_computed<ops::less_op>(xc, l), l, xc);
  return dynamic::apply_computed<ops::where_op>(dynamic::apply_computed<ops::greater_op>(t, h), h,
                                                t)
      .to(x.dtype());
}

}  // namespace fg

FG_DIAGNOSTICS_END
