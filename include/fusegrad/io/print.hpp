// fusegrad/io/print.hpp — printing tensors (NumPy-like, with shape) and expression types
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/tensor.hpp"

#include <ostream>

namespace fg {

namespace detail {
template <class T, std::size_t R>
void print_block(std::ostream& os, const T* p, const dims_t<R>& d, std::size_t axis,
                 std::size_t indent) {
  if constexpr (R == 0) {
    os << *p;
  } else {
    const auto st = contiguous_strides(d);
    os << '[';
    for (index_t i = 0; i < d[axis]; ++i) {
      if (i) {
        os << ',';
        if (axis + 1 < R)
          os << '\n' << std::string(indent + 1, ' ');
        else
          os << ' ';
      }
      if (axis + 1 < R)
        print_block(os, p + i * st[axis], d, axis + 1, indent + 1);
      else
        os << p[i];
    }
    os << ']';
  }
}
}  // namespace detail

// tensor([[1, 2], [3, 4]], shape=[2, 2], float)
template <class T, class S> std::ostream& operator<<(std::ostream& os, const tensor<T, S>& t) {
  os << "tensor(";
  detail::print_block(os, t.data(), t.dims(), 0, 7);
  detail::message dims;
  dims << t.dims();
  return os << ", shape=" << dims.c_str() << ", " << (sizeof(T) == 4 ? "float" : "double") << ')';
}

}  // namespace fg
