// fusegrad/io/print.hpp — printing tensors (NumPy-like, with shape) and expression types
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/tensor.hpp"

#include <ostream>
#include <string>

FG_DIAGNOSTICS_BEGIN

namespace fg {

namespace detail {
// Nested brackets over row-major elements of extents dims[0..rank): shared by fg::tensor and
// fg::var (whose rank is known only at run time). `indent`: the column of the first '['.
template <class T>
void print_block(std::ostream& os, const T* p, const index_t* dims, std::size_t rank,
                 std::size_t indent) {
  if (rank == 0) {
    os << *p;
    return;
  }
  index_t inner = 1;
  for (std::size_t k = 1; k < rank; ++k)
    inner *= dims[k];
  os << '[';
  for (index_t i = 0; i < dims[0]; ++i) {
    if (i) {
      os << ',';
      if (rank > 1)
        os << '\n' << std::string(indent + 1, ' ');
      else
        os << ' ';
    }
    print_block(os, p + i * inner, dims + 1, rank - 1, indent + 1);
  }
  os << ']';
}
}  // namespace detail

// tensor([[1, 2], [3, 4]], shape=[2, 2], float)
template <class T, class S> std::ostream& operator<<(std::ostream& os, const tensor<T, S>& t) {
  os << "tensor(";
  const auto d = t.dims();
  detail::print_block(os, t.data(), d.data(), d.size(), 7);
  detail::message dims;
  dims << t.dims();
  return os << ", shape=" << dims.c_str() << ", " << (sizeof(T) == 4 ? "float" : "double") << ')';
}

}  // namespace fg

FG_DIAGNOSTICS_END
