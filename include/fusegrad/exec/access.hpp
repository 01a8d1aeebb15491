// fusegrad/exec/access.hpp — how a leaf is read (and its gradient written) inside one fused pass
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/shape.hpp"
#include "fusegrad/core/simd.hpp"

#include <array>
#include <cstddef>

namespace fg::exec {

template <std::size_t R>
using strides_t = std::array<std::ptrdiff_t, R>;

// A pass runs over the elements of an R-d extent: rows of the last axis, SIMD batches within a
// row. `Flat` passes have every participant dense (same layout as the pass), so the whole extent
// is one row read at the pass's own linear index.
template <std::size_t R, class Fn>
FG_INLINE void for_each_row(const dims_t<R>& d, Fn&& fn) {
  dims_t<R> idx{};
  if constexpr (R == 0) {
    fn(idx);
  } else {
    const index_t rows = d[R - 1] ? size_of(d) / d[R - 1] : 0;
    for (index_t r = 0; r < rows; ++r) {
      fn(idx);
      for (std::size_t k = R - 1; k-- > 0;) {
        if (++idx[k] < d[k]) break;
        idx[k] = 0;
      }
    }
  }
}

// Calls step.template operator()<V>(j) over [0, n): batches, then a scalar tail.
template <class T, class Step>
FG_INLINE void for_each_batch(index_t n, Step&& step) {
  using B = simd::batch<T>;
  constexpr index_t w = simd::width<T>;
  index_t j = 0;
  if constexpr (w > 1)
    for (; j + w <= n; j += w) step.template operator()<B>(j);
  for (; j < n; ++j) step.template operator()<T>(j);
}

// As for_each_batch, with `unroll` batches per iteration, each told its slot (0..unroll-1) so
// that running sums keep independent accumulators instead of one add-latency chain.
inline constexpr int unroll = 4;  // the slots below are spelled out for 4
template <class T, class Step>
FG_INLINE void for_each_batch_unrolled(index_t n, Step&& step) {
  using B = simd::batch<T>;
  constexpr index_t w = simd::width<T>;
  index_t j = 0;
  if constexpr (w > 1) {
    for (; j + unroll * w <= n; j += unroll * w) {
      step.template operator()<B, 0>(j);
      step.template operator()<B, 1>(j + w);
      step.template operator()<B, 2>(j + 2 * w);
      step.template operator()<B, 3>(j + 3 * w);
    }
    for (; j + w <= n; j += w) step.template operator()<B, 0>(j);
  }
  for (; j < n; ++j) step.template operator()<T, 0>(j);
}

// Strided addressing of one operand within a pass: strides are 0 along broadcast axes.
template <class T, std::size_t R>
struct accessor {
  T* base = nullptr;
  strides_t<R> stride{};
  T* row = nullptr;
  std::ptrdiff_t inner = 1;
  bool dense = false;    // laid out exactly as the pass: readable at the pass's linear index
  bool uniform = false;  // one element broadcast over the whole pass

  // An operand of extents `ld` with element strides `ls`, broadcast into the pass extents `out`.
  template <std::size_t RL>
  void bind(T* p, const dims_t<RL>& ld, const strides_t<RL>& ls, const dims_t<R>& out) {
    static_assert(RL <= R, "fg: an operand has higher rank than the expression it is part of");
    strides_t<R> s{};
    for (std::size_t k = 0; k < R; ++k) {
      if (k < R - RL) continue;
      std::size_t d = k - (R - RL);
      s[k] = (ld[d] == 1 && out[k] != 1) ? 0 : ls[d];
    }
    bind_strided(p, s, out);
  }
  void bind_strided(T* p, const strides_t<R>& s, const dims_t<R>& out) {
    base = p;
    stride = s;
    row = p;
    const auto cs = contiguous_strides(out);
    dense = true;
    uniform = true;
    for (std::size_t k = 0; k < R; ++k) {
      if (out[k] > 1 && s[k] != std::ptrdiff_t(cs[k])) dense = false;
      if (out[k] > 1 && s[k] != 0) uniform = false;
    }
  }
  FG_INLINE void set_row(const dims_t<R>& idx, bool flat) {
    if (flat || R == 0) {
      row = base;
      inner = 1;
      return;
    }
    std::ptrdiff_t off = 0;
    for (std::size_t k = 0; k + 1 < R; ++k) off += std::ptrdiff_t(idx[k]) * stride[k];
    row = base + off;
    inner = stride[R - 1];
  }
  template <class V, bool Flat>
  FG_INLINE V load(index_t j) const {
    if constexpr (Flat) {
      return simd::load<V>(row + j);
    } else {
      if (inner == 1) return simd::load<V>(row + j);
      if (inner == 0) return simd::splat<V>(*row);
      return simd::gather<V>(row + std::ptrdiff_t(j) * inner, inner);
    }
  }
  // Gradient writes: `store` when this is the only contribution each element gets, else `add`.
  template <class V, bool Flat, bool Add>
  FG_INLINE void write(V g, index_t j) const {
    if (Flat || inner == 1) {
      if constexpr (Add) g += simd::load<V>(row + j);
      simd::store(row + j, g);
    } else if (inner == 0) {
      *row += simd::hsum(g);  // a broadcast operand always accumulates
    } else {
      alignas(simd::alignment) T tmp[simd::lanes<V>];
      simd::to_array(g, tmp);
      for (std::size_t k = 0; k < simd::lanes<V>; ++k) {
        T& dst = row[std::ptrdiff_t(j + k) * inner];
        dst = Add ? dst + tmp[k] : tmp[k];
      }
    }
  }
};

}  // namespace fg::exec
