// fusegrad/io/dot.hpp — fg::to_dot(expression): a static expression's graph as Graphviz DOT,
// one box per node with its op name and extents (`dot -Tpng` renders it)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/expr/layout.hpp"
#include "fusegrad/expr/loss.hpp"
#include "fusegrad/expr/matmul.hpp"
#include "fusegrad/expr/reduce.hpp"
#include "fusegrad/grad/gradient.hpp"

#include <sstream>
#include <string>

FG_DIAGNOSTICS_BEGIN

namespace fg {

namespace detail {

struct dot_writer {
  std::ostringstream out;
  int next = 0;
  template <std::size_t R> int box(const std::string& label, const dims_t<R>& d) {
    message m;
    m << d;
    const int id = next++;
    out << "  n" << id << " [label=\"" << label << "\\n" << m.c_str() << "\"];\n";
    return id;
  }
  void edge(int from, int to) { out << "  n" << from << " -> n" << to << ";\n"; }
};

template <class E> std::string dot_label(const E&) {
  return "?";
}
template <class T, class S> std::string dot_label(const expr::view<T, S>&) {
  return "tensor";
}
template <class T, class S> std::string dot_label(const expr::owned<T, S>&) {
  return "tensor (owned)";
}
template <class T> std::string dot_label(const expr::scalar<T>& s) {
  std::ostringstream o;
  o << s.value;
  return o.str();
}
template <class Op, class... A> std::string dot_label(const expr::elementwise<Op, A...>&) {
  return Op::name;
}
template <class Red, class A, class Set, bool K>
std::string dot_label(const expr::reduce<Red, A, Set, K>&) {
  return std::string(Red::name) + (K ? " (keepdim)" : "");
}
template <class A, class B> std::string dot_label(const expr::matmul<A, B>&) {
  return "matmul";
}
template <class A> std::string dot_label(const expr::transpose<A>&) {
  return "transpose";
}
template <class A, class S> std::string dot_label(const expr::reshape<A, S>&) {
  return "reshape";
}
template <class Z, class Y> std::string dot_label(const expr::softmax_cross_entropy<Z, Y>&) {
  return "softmax_cross_entropy";
}
template <class F, class T, class S> std::string dot_label(const expr::gradient<F, T, S>&) {
  return "gradient";
}

// The node's operands, each written first, then an edge from each to it.
template <class E> int dot_node(dot_writer& w, const E& e);
template <class E> void dot_children(dot_writer&, const E&, int) {}
template <class Op, class... A>
void dot_children(dot_writer& w, const expr::elementwise<Op, A...>& e, int id) {
  fg::detail::for_each(e.args, [&](const auto& a) { w.edge(dot_node(w, a), id); });
}
template <class Red, class A, class Set, bool K>
void dot_children(dot_writer& w, const expr::reduce<Red, A, Set, K>& e, int id) {
  w.edge(dot_node(w, e.arg), id);
}
template <class A, class B> void dot_children(dot_writer& w, const expr::matmul<A, B>& e, int id) {
  w.edge(dot_node(w, e.a), id);
  w.edge(dot_node(w, e.b), id);
}
template <class A> void dot_children(dot_writer& w, const expr::transpose<A>& e, int id) {
  w.edge(dot_node(w, e.arg), id);
}
template <class A, class S> void dot_children(dot_writer& w, const expr::reshape<A, S>& e, int id) {
  w.edge(dot_node(w, e.arg), id);
}
template <class Z, class Y>
void dot_children(dot_writer& w, const expr::softmax_cross_entropy<Z, Y>& e, int id) {
  w.edge(dot_node(w, e.logits), id);
  w.edge(dot_node(w, e.target), id);
}
template <class F, class T, class S>
void dot_children(dot_writer& w, const expr::gradient<F, T, S>& e, int id) {
  w.edge(dot_node(w, e.f), id);
}
template <class E> int dot_node(dot_writer& w, const E& e) {
  const int id = w.box(dot_label(e), e.dims());
  dot_children(w, e, id);
  return id;
}

}  // namespace detail

// digraph of the expression: leaves at the top, the result at the bottom.
template <expression E> std::string to_dot(const E& e) {
  detail::dot_writer w;
  w.out << "digraph fusegrad {\n  node [shape=box, fontname=\"Helvetica\"];\n";
  detail::dot_node(w, e);
  w.out << "}\n";
  return w.out.str();
}

}  // namespace fg

FG_DIAGNOSTICS_END
