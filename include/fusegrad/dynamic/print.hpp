// fusegrad/dynamic/print.hpp — printing vars: values, shape, dtype and the op that made them
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/var.hpp"

#include <ostream>

namespace fg {

namespace dynamic {
inline void print_block(std::ostream& os, const var& v, std::size_t axis, index_t& e,
                        std::size_t indent) {
  const extents& d = v.shape();
  if (d.rank() == 0) {
    os << v.at(0);
    return;
  }
  os << '[';
  for (index_t i = 0; i < d[axis]; ++i) {
    if (i) {
      os << ',';
      if (axis + 1 < d.rank())
        os << '\n' << std::string(indent + 1, ' ');
      else
        os << ' ';
    }
    if (axis + 1 < d.rank())
      print_block(os, v, axis + 1, e, indent + 1);
    else
      os << v.at(e++);
  }
  os << ']';
}
}  // namespace dynamic

// var([[1, 2], [3, 4]], shape=[2, 2], float32, op=matmul)
inline std::ostream& operator<<(std::ostream& os, const var& v) {
  if (!v.defined())
    return os << "var(undefined)";
  os << "var(";
  index_t e = 0;
  dynamic::print_block(os, v, 0, e, 4);
  os << ", shape=" << v.shape().str() << ", " << dtype_name(v.dtype());
  if (*v.op_name())
    os << ", op=" << v.op_name();
  else if (v.requires_grad())
    os << ", requires_grad";
  return os << ')';
}

}  // namespace fg
