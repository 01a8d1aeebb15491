// fusegrad/dynamic/dot.hpp — fg::to_dot(var): the tape behind a dynamic result as Graphviz DOT,
// one box per recorded op (name, output shape, and the ops of a fused chain) and per leaf that
// requires a gradient
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/fusion.hpp"

#include <sstream>
#include <unordered_map>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg {

inline std::string to_dot(const var& v) {
  std::ostringstream out;
  out << "digraph fusegrad {\n  node [shape=box, fontname=\"Helvetica\"];\n";
  std::unordered_map<const void*, int> ids;
  // The box of the node (or leaf) that produced x, written when first met; `fresh` says so.
  auto box = [&](const var& x, bool& fresh) -> int {
    const dynamic::node* n = x.ready().grad_fn.get();
    const void* key = n ? static_cast<const void*>(n) : static_cast<const void*>(&x.get());
    auto [it, added] = ids.try_emplace(key, int(ids.size()));
    fresh = added;
    if (!added)
      return it->second;
    const int id = it->second;
    if (!n) {
      out << "  n" << id << " [label=\"" << (x.requires_grad() ? "leaf" : "constant") << "\\n"
          << x.shape().str() << "\", style=rounded];\n";
      return id;
    }
    out << "  n" << id << " [label=\"" << n->name << "\\n" << n->shape.str();
    if (n->fused) {  // a fused chain: its ops, first to last
      out << "\\nfused:";
      for (const dynamic::fused_step& s : n->fused->steps)
        out << " " << s.op->name;
    }
    out << "\"];\n";
    return id;
  };
  // Depth first with a stack of its own (a graph may be a million ops deep); each input's
  // boxes are written before the edge from it.
  struct frame {
    const dynamic::node* n;
    int id;
    std::size_t next = 0;
  };
  std::vector<frame> stack;
  bool fresh = false;
  const int root = box(v, fresh);
  if (v.get().grad_fn)
    stack.push_back({v.get().grad_fn.get(), root});
  while (!stack.empty()) {
    frame& f = stack.back();
    if (f.next == f.n->inputs.size()) {
      const int done = f.id;
      stack.pop_back();
      if (!stack.empty()) {
        out << "  n" << done << " -> n" << stack.back().id << ";\n";
        ++stack.back().next;
      }
      continue;
    }
    const var& in = f.n->inputs[f.next];
    if (!in.defined()) {
      ++f.next;
      continue;
    }
    const int from = box(in, fresh);
    if (fresh && in.get().grad_fn) {
      stack.push_back({in.get().grad_fn.get(), from});  // its edge once its inputs are written
      continue;
    }
    out << "  n" << from << " -> n" << f.id << ";\n";
    ++f.next;
  }
  out << "}\n";
  return out.str();
}

}  // namespace fg

FG_DIAGNOSTICS_END
