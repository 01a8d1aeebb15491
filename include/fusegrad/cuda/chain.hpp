// fusegrad/cuda/chain.hpp — a dynamic elementwise chain (fg::var ops waiting to run) in the form
// a CUDA thread runs it: the chain's op list, interpreted per element through the op structs.
// Plain host/device functions, no CUDA header: the host tests run them too.
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/fusion.hpp"
#include "fusegrad/ops/binary.hpp"
#include "fusegrad/ops/unary.hpp"

#include <cstdint>

FG_DIAGNOSTICS_BEGIN

namespace fg::gpu::chain {

// An op of the table with its arity; a chain's step names its op by position in `table`.
template <class Op, unsigned N> struct entry {};
template <class List, unsigned N> struct with_arity;
template <class... Ops, unsigned N> struct with_arity<fg::type_list<Ops...>, N> {
  using type = fg::type_list<entry<Ops, N>...>;
};
template <class... L> struct join;
template <class... A, class... B, class... C, class... D>
struct join<fg::type_list<A...>, fg::type_list<B...>, fg::type_list<C...>, fg::type_list<D...>> {
  using type = fg::type_list<A..., B..., C..., D...>;
};
// Every op a dynamic chain can hold (fg/dynamic/elementwise.hpp makes no others).
using table = typename join<typename with_arity<ops::unary_ops, 1>::type,
                            typename with_arity<ops::binary_ops, 2>::type,
                            typename with_arity<ops::comparison_ops, 2>::type,
                            fg::type_list<entry<ops::where_op, 3>>>::type;

// Where a step's op is in `table`, found by the address of the op's host-side record; -1: not
// there (an op of a user's, or a record from another shared object built with hidden
// visibility).
template <class E> struct record_of;
template <class Op, unsigned N> struct record_of<entry<Op, N>> {
  static constexpr const dynamic::fused_op* value = &dynamic::fused_op_of<Op, N>;
};
template <class... E> int position_in(fg::type_list<E...>, const dynamic::fused_op* op) {
  static constexpr const dynamic::fused_op* known[] = {record_of<E>::value...};
  for (std::size_t k = 0; k < sizeof...(E); ++k)
    if (known[k] == op)
      return int(k);
  return -1;
}

struct step {
  std::uint8_t op = 0;  // position in `table`
  std::uint8_t arity = 0;
  bool wants = false;         // a gradient flows through it
  std::int16_t args[3] = {};  // step j as j, leaf k as -(k + 1)
};
template <class T> struct leaf {
  const T* ptr = nullptr;  // null: a number, `value`
  T value = 0;
  bool broadcast = false;  // one element, read for every element
  T* grad = nullptr;       // where its gradient goes (null: none wanted)
};
// A chain as a kernel argument: fixed arrays for the longest chain (fusion_limit ops), 3.4 KB
// for double, within CUDA's 4 KB of kernel arguments (asserted in cuda/var.hpp).
template <class T> struct program {
  index_t n = 0;
  unsigned steps = 0, leaves = 0;
  step s[dynamic::fusion_limit];
  leaf<T> l[3 * dynamic::fusion_limit];
};

// Op `id` of the table on x[0..arity): its value, or its local partials into d.
template <class T, class... E> struct op_switch;
template <class T> struct op_switch<T> {
  FG_HD static T forward(unsigned, const T*) { return T(0); }
  FG_HD static void partials(unsigned, T, const T*, T*) {}
};
template <class T, class Op, unsigned N, class... Rest> struct op_switch<T, entry<Op, N>, Rest...> {
  FG_HD static T forward(unsigned id, const T* x) {
    if (id != 0)
      return op_switch<T, Rest...>::forward(id - 1, x);
    if constexpr (N == 1)
      return Op::forward(x[0]);
    else if constexpr (N == 2)
      return Op::forward(x[0], x[1]);
    else
      return Op::forward(x[0], x[1], x[2]);
  }
  FG_HD static void partials(unsigned id, T y, const T* x, T* d) {
    if (id != 0)
      return op_switch<T, Rest...>::partials(id - 1, y, x, d);
    if constexpr (N == 1) {
      const auto p = fg::detail::local_partials<Op, T>(y, no_aux{}, x[0]);
      d[0] = p[0];
    } else if constexpr (N == 2) {
      const auto p = fg::detail::local_partials<Op, T>(y, no_aux{}, x[0], x[1]);
      d[0] = p[0];
      d[1] = p[1];
    } else {
      const auto p = fg::detail::local_partials<Op, T>(y, no_aux{}, x[0], x[1], x[2]);
      d[0] = p[0];
      d[1] = p[1];
      d[2] = p[2];
    }
  }
};
template <class T, class List> struct switch_of;
template <class T, class... E> struct switch_of<T, fg::type_list<E...>> {
  using type = op_switch<T, E...>;
};
template <class T> using ops_of = typename switch_of<T, table>::type;

template <class T> FG_HD FG_INLINE T leaf_value(const leaf<T>& l, index_t i) {
  return !l.ptr ? l.value : l.broadcast ? l.ptr[0] : l.ptr[i];
}
template <class T>
FG_HD FG_INLINE T arg_value(const program<T>& c, const T* vals, std::int16_t a, index_t i) {
  return a >= 0 ? vals[a] : leaf_value(c.l[-a - 1], i);
}

// The chain's value at element i; every step's value is left in vals.
template <class T> FG_HD T forward_element(const program<T>& c, index_t i, T* vals) {
  T x[3] = {};
  for (unsigned j = 0; j < c.steps; ++j) {
    const step& s = c.s[j];
    for (unsigned a = 0; a < s.arity; ++a)
      x[a] = arg_value(c, vals, s.args[a], i);
    vals[j] = ops_of<T>::forward(s.op, x);
  }
  return vals[c.steps - 1];
}

// After forward_element(i): the adjoints of element i's leaves into ladj (every leaf's, zero
// where none flows), the result's being g. adj is scratch for the steps'.
template <class T>
FG_HD void backward_element(const program<T>& c, index_t i, const T* vals, T g, T* adj, T* ladj) {
  for (unsigned j = 0; j < c.steps; ++j)
    adj[j] = T(0);
  for (unsigned k = 0; k < c.leaves; ++k)
    ladj[k] = T(0);
  adj[c.steps - 1] = g;
  T x[3] = {}, d[3] = {};
  for (unsigned j = c.steps; j-- > 0;) {
    const step& s = c.s[j];
    if (!s.wants)
      continue;
    for (unsigned a = 0; a < s.arity; ++a)
      x[a] = arg_value(c, vals, s.args[a], i);
    ops_of<T>::partials(s.op, vals[j], x, d);
    for (unsigned a = 0; a < s.arity; ++a) {
      const T contribution = adj[j] * d[a];
      if (s.args[a] >= 0)
        adj[s.args[a]] += contribution;
      else
        ladj[-s.args[a] - 1] += contribution;
    }
  }
}

// The device form of a planned chain. Leaves in device memory are read there; host leaves (one
// element: numbers) travel by value. grads[k] receives leaf k's gradient (null: not wanted).
// Host-side code: the chain's ops were checked by the backend's `supports` when deferred.
template <class T> program<T> make(const dynamic::fused_program& p, void* const* grads) {
  program<T> c;
  c.n = p.n;
  c.steps = unsigned(p.steps.size());
  c.leaves = unsigned(p.leaves.size());
  for (unsigned j = 0; j < c.steps; ++j) {
    const dynamic::fused_step& s = p.steps[j];
    const int id = position_in(table{}, s.op);
    if (id < 0)
      throw std::logic_error(dynamic::text("fg::var: the op '", s.op->name,
                                           "' has no device form (it is not in the op table)"));
    c.s[j].op = std::uint8_t(id);
    c.s[j].arity = std::uint8_t(s.op->arity);
    c.s[j].wants = s.wants;
    for (unsigned a = 0; a < 3; ++a)
      c.s[j].args[a] = s.args[a];
  }
  for (unsigned k = 0; k < c.leaves; ++k) {
    const dynamic::fused_leaf& l = p.leaves[k];
    const T* data = static_cast<const T*>(l.data->bytes) + l.offset;
    leaf<T>& out = c.l[k];
    out.broadcast = l.broadcast;
    // A host operand of a device chain is one element (dynamic::defer checks): a number. (A
    // host program, as the host tests run, reads its whole operands where they are.)
    if (l.data->device || (!p.device && !l.broadcast))
      out.ptr = data;
    else
      out.value = *data;
    out.grad = grads && l.wants ? static_cast<T*>(grads[k]) : nullptr;
  }
  return c;
}

}  // namespace fg::gpu::chain

FG_DIAGNOSTICS_END
