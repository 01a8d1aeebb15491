// fusegrad/cuda/broadcast.hpp — broadcasting a var on the device, and summing a gradient back
// to the broadcast operand's shape (or over axes), in the index form a CUDA thread computes.
// Plain host/device functions, no CUDA header: the host tests run them too.
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/var.hpp"

#include <cstddef>

FG_DIAGNOSTICS_BEGIN

namespace fg::gpu::broadcast {

// A small contiguous tensor read at every element of a big shape: the big extents, and the
// small tensor's strides seen from them (0 along the axes it is broadcast over). A kernel
// argument.
struct map {
  unsigned rank = 0;
  index_t big[max_rank] = {};
  std::ptrdiff_t small[max_rank] = {};
  index_t big_size = 0;    // elements of the big shape
  index_t small_size = 0;  // elements of the small tensor
  index_t folded = 0;      // big elements read from each small one
};

inline map make(const extents& big, const dynamic::strides& small) {
  map m;
  m.rank = unsigned(big.rank());
  m.big_size = big.size();
  index_t kept = 1;
  for (unsigned d = 0; d < m.rank; ++d) {
    m.big[d] = big[d];
    m.small[d] = small[d];
    kept *= small[d] ? big[d] : 1;
  }
  m.small_size = kept;
  m.folded = kept ? m.big_size / kept : 0;
  return m;
}

// The small tensor's element that big element i reads.
FG_HD inline index_t source(const map& m, index_t i) {
  index_t off = 0;
  for (unsigned d = m.rank; d-- > 0;) {
    off += (i % m.big[d]) * index_t(m.small[d]);
    i /= m.big[d];
  }
  return off;
}

// The r-th (r < m.folded) big element that reads small element j: j numbers the coordinates of
// the axes the small tensor has (it is contiguous over them), r those of the axes it is
// broadcast over, both last axis fastest.
FG_HD inline index_t member(const map& m, index_t j, index_t r) {
  index_t off = 0, stride = 1;
  for (unsigned d = m.rank; d-- > 0;) {
    index_t& digits = m.small[d] ? j : r;
    off += (digits % m.big[d]) * stride;
    digits /= m.big[d];
    stride *= m.big[d];
  }
  return off;
}

}  // namespace fg::gpu::broadcast

FG_DIAGNOSTICS_END
