// fusegrad/dynamic/dot.hpp — fg::to_dot(var): the tape behind a dynamic result as Graphviz DOT,
// one box per recorded op (name and output shape) and per leaf that requires a gradient
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/tape.hpp"

#include <sstream>
#include <unordered_map>

namespace fg {

inline std::string to_dot(const var& v) {
  std::ostringstream out;
  out << "digraph fusegrad {\n  node [shape=box, fontname=\"Helvetica\"];\n";
  std::unordered_map<const void*, int> ids;
  // Returns the box of the node (or leaf) that produced x, writing it and its inputs first.
  auto visit = [&](auto& self, const var& x) -> int {
    const dynamic::node* n = x.get().grad_fn.get();
    const void* key = n ? static_cast<const void*>(n) : static_cast<const void*>(&x.get());
    if (auto it = ids.find(key); it != ids.end())
      return it->second;
    const int id = int(ids.size());
    ids[key] = id;
    if (!n) {
      out << "  n" << id << " [label=\"" << (x.requires_grad() ? "leaf" : "constant") << "\\n"
          << x.shape().str() << "\", style=rounded];\n";
      return id;
    }
    out << "  n" << id << " [label=\"" << n->name << "\\n" << n->shape.str() << "\"];\n";
    for (const var& in : n->inputs)
      if (in.defined()) {
        const int from = self(self, in);  // written before this edge
        out << "  n" << from << " -> n" << id << ";\n";
      }
    return id;
  };
  visit(visit, v);
  out << "}\n";
  return out.str();
}

}  // namespace fg
