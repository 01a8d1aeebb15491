// fusegrad/exec/access.hpp — how a leaf is read (and its gradient written) inside one fused pass
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/shape.hpp"
#include "fusegrad/core/simd.hpp"

#include <array>
#include <cstddef>

FG_DIAGNOSTICS_BEGIN

namespace fg::exec {

template <std::size_t R> using strides_t = std::array<std::ptrdiff_t, R>;

// A pass runs over the elements of an R-d extent: rows of the last axis, SIMD batches within a
// row. `Flat` passes have every participant dense (same layout as the pass), so the whole extent
// is one row read at the pass's own linear index.
template <std::size_t R> index_t rows_of(const dims_t<R>& d) {
  if constexpr (R == 0)
    return 1;
  else
    return d[R - 1] ? size_of(d) / d[R - 1] : 0;
}
// fn(idx, row) for the rows [r0, r1) of extent d (idx: the row's index, last axis 0).
template <std::size_t R, class Fn>
FG_INLINE void for_each_row(const dims_t<R>& d, index_t r0, index_t r1, Fn&& fn) {
  dims_t<R> idx{};
  if constexpr (R == 0) {
    if (r0 < r1)
      fn(idx, index_t(0));
  } else {
    if (r0 >= r1)
      return;
    index_t first = r0;
    for (std::size_t k = R - 1; k-- > 0; first /= d[k])
      idx[k] = first % d[k];
    for (index_t r = r0; r < r1; ++r) {
      fn(idx, r);
      for (std::size_t k = R - 1; k-- > 0;) {
        if (++idx[k] < d[k])
          break;
        idx[k] = 0;
      }
    }
  }
}
template <std::size_t R, class Fn> FG_INLINE void for_each_row(const dims_t<R>& d, Fn&& fn) {
  for_each_row(d, 0, rows_of(d), [&](const dims_t<R>& idx, index_t) { fn(idx); });
}

// The two loops every pass runs over a row of n elements: SIMD batches, then a scalar tail.
// They are inlined into the pass's FG_LOOP functions (exec/pass.hpp).
// `step.template operator()<V>(j)` handles the elements at j as V (a batch, or one scalar), for
// j in [begin, end).
template <class T, class Step> FG_INLINE void for_batches(index_t begin, index_t end, Step step) {
  using B = simd::batch<T>;
  constexpr index_t w = simd::width<T>;
  index_t j = begin;
  if constexpr (w > 1)
    for (; j + w <= end; j += w)
      step.template operator()<B>(j);
  for (; j < end; ++j)
    step.template operator()<T>(j);
}

// As for_batches, folding what each step returns with Red (identity, combine). Cheap bodies are
// unrolled (U = 4) into four named accumulators, so a sum is not one add-latency chain (an
// indexed array of them was spilled to the stack each iteration).
template <class T, class Red, int U, class Step>
FG_INLINE T fold_batches(index_t begin, index_t end, Step step) {
  static_assert(U == 1 || U == 4, "fg: fold_batches unrolls by 1 or 4");
  using B = simd::batch<T>;
  constexpr index_t w = simd::width<T>;
  index_t j = begin;
  B a0 = Red::template identity<B>(), a1 = a0, a2 = a0, a3 = a0;
  if constexpr (w > 1) {
    if constexpr (U == 4) {
      for (; j + 4 * w <= end; j += 4 * w) {
        a0 = Red::combine(a0, step.template operator()<B>(j));
        a1 = Red::combine(a1, step.template operator()<B>(j + w));
        a2 = Red::combine(a2, step.template operator()<B>(j + 2 * w));
        a3 = Red::combine(a3, step.template operator()<B>(j + 3 * w));
      }
    }
    for (; j + w <= end; j += w)
      a0 = Red::combine(a0, step.template operator()<B>(j));
  }
  T tail = Red::template identity<T>();
  for (; j < end; ++j)
    tail = Red::combine(tail, step.template operator()<T>(j));
  a0 = Red::combine(Red::combine(a0, a1), Red::combine(a2, a3));
  alignas(simd::alignment) T lanes[simd::lanes<B>];
  simd::to_array(a0, lanes);
  for (std::size_t k = 0; k < simd::lanes<B>; ++k)
    tail = Red::combine(tail, lanes[k]);
  return tail;
}

// Strided addressing of one operand within a pass: strides are 0 along broadcast axes.
template <class T, std::size_t R> struct accessor {
  T* base = nullptr;
  strides_t<R> stride{};
  T* row = nullptr;
  std::ptrdiff_t inner = 1;
  bool dense = false;      // laid out exactly as the pass: readable at the pass's linear index
  bool uniform = false;    // one element broadcast over the whole pass
  bool broadcast = false;  // some element is read at more than one index of the pass

  // An operand of extents `ld` with element strides `ls`, broadcast into the pass extents `out`.
  template <std::size_t RL>
  void bind(T* p, const dims_t<RL>& ld, const strides_t<RL>& ls, const dims_t<R>& out) {
    static_assert(RL <= R, "fg: an operand has higher rank than the expression it is part of");
    strides_t<R> s{};
    for (std::size_t k = 0; k < R; ++k) {
      if (k + RL < R)  // (not k < R - RL: nvcc warns when RL == R)
        continue;
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
    broadcast = false;
    for (std::size_t k = 0; k < R; ++k) {
      if (out[k] > 1 && s[k] != std::ptrdiff_t(cs[k]))
        dense = false;
      if (out[k] > 1 && s[k] != 0)
        uniform = false;
      if (out[k] > 1 && s[k] == 0)
        broadcast = true;
    }
  }
  FG_HD FG_INLINE void set_row(const dims_t<R>& idx, bool flat) {
    if (flat || R == 0) {
      row = base;
      inner = 1;
      return;
    }
    std::ptrdiff_t off = 0;
    for (std::size_t k = 0; k + 1 < R; ++k)
      off += std::ptrdiff_t(idx[k]) * stride[k];
    row = base + off;
    inner = stride[R - 1];
  }
  template <class V, bool Flat> FG_HD FG_INLINE V load(index_t j) const {
    if constexpr (Flat) {
      return simd::load<V>(row + j);
    } else {
      if (inner == 1)
        return simd::load<V>(row + j);
      if (inner == 0)
        return simd::splat<V>(*row);
      return simd::gather<V>(row + std::ptrdiff_t(j) * inner, inner);
    }
  }
};

// `*p += v` where other threads of a CUDA pass may add to *p too; a plain add on the host,
// where one thread runs the pass.
template <class T> FG_HD FG_INLINE void shared_add(T* p, T v) {
#if defined(__CUDA_ARCH__)
  atomicAdd(p, v);
#else
  *p += v;
#endif
}

#if defined(__CUDACC__)
// The sum of v over the 32 lanes of a warp, in lane 0 (all lanes must call it together).
template <class T> __device__ __forceinline__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}
#endif

// Writes gradient g for the elements at j of a row (inner stride `inner`): `Add` accumulates;
// a broadcast operand (inner 0) always does, summing the batch first.
template <class V, bool Flat, bool Add, class T>
FG_HD FG_INLINE void write_at(T* row, std::ptrdiff_t inner, V g, index_t j) {
  if (Flat || inner == 1) {
    if constexpr (Add)
      g += simd::load<V>(row + j);
    simd::store(row + j, g);
  } else if (inner == 0) {
    shared_add(row, simd::hsum(g));
  } else {
    alignas(simd::alignment) T tmp[simd::lanes<V>];
    simd::to_array(g, tmp);
    for (std::size_t k = 0; k < simd::lanes<V>; ++k) {
      T& dst = row[std::ptrdiff_t(j + k) * inner];
      dst = Add ? dst + tmp[k] : tmp[k];
    }
  }
}

// As write_at<V, Flat, true>, for an operand broadcast over the pass: many elements of the pass
// add into each gradient element, so on a device every add is atomic. (V is one scalar there.)
template <class V, bool Flat, class T>
FG_HD FG_INLINE void accumulate_at(T* row, std::ptrdiff_t inner, V g, index_t j) {
#if defined(__CUDA_ARCH__)
  shared_add(row + std::ptrdiff_t(j) * (Flat ? 1 : inner), g);
#else
  write_at<V, Flat, true>(row, inner, g, j);
#endif
}

}  // namespace fg::exec

FG_DIAGNOSTICS_END
