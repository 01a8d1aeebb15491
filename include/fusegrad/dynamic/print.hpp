// fusegrad/dynamic/print.hpp — printing vars: values, shape, dtype and the op that made them
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/var.hpp"
#include "fusegrad/io/print.hpp"

#include <ostream>

FG_DIAGNOSTICS_BEGIN

namespace fg {

// var([[1, 2], [3, 4]], shape=[2, 2], float32, op=matmul)
inline std::ostream& operator<<(std::ostream& os, const var& v) {
  if (!v.defined())
    return os << "var(undefined)";
  os << "var(";
  dispatch(v.dtype(), [&](auto z) {
    using T = decltype(z);
    detail::print_block(os, v.data<T>(), v.shape().begin(), v.rank(), 4);
  });
  os << ", shape=" << v.shape().str() << ", " << dtype_name(v.dtype());
  if (*v.op_name())
    os << ", op=" << v.op_name();
  else if (v.requires_grad())
    os << ", requires_grad";
  return os << ')';
}

}  // namespace fg

FG_DIAGNOSTICS_END
