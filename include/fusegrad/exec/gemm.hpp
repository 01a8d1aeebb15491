// fusegrad/exec/gemm.hpp — a cache-blocked SIMD matrix product over strided operands (no BLAS
// needed) SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/parallel.hpp"
#include "fusegrad/core/simd.hpp"

#include <algorithm>
#include <cstddef>
#include <type_traits>
#if FG_HAS_THREADS
#include <vector>
#endif

FG_DIAGNOSTICS_BEGIN

namespace fg::exec {

// Register tile MR x NR (NR two SIMD batches wide), packed panels of KC x NC from B and MC x KC
// from A, as in BLIS: the micro-kernel streams both packed panels with unit stride.
template <class T> struct gemm_blocking {
  static constexpr index_t w = simd::width<T>;
  static constexpr index_t nr = w > 1 ? 2 * w : 4;
  static constexpr index_t mr = w > 1 ? 6 : 4;
  static constexpr index_t kc = 256;
  static constexpr index_t mc = 16 * mr;
  static constexpr index_t nc = 32 * nr;
  static constexpr index_t round_up(index_t x, index_t m) { return (x + m - 1) / m * m; }
  // One block each way: the micro-kernel can read A and B where they lie (see gemm()).
  static constexpr bool small(index_t m, index_t n, index_t k) {
    return k <= kc && m <= mc && n <= nc;
  }
  // Workspace elements for an M x N x K product. Small products pack only their edge tiles;
  // with SIMD a B that is not contiguous along N is packed whole, and the workspace covers that.
  static constexpr index_t workspace(index_t m, index_t n, index_t k) {
    const index_t kb = std::min(k, kc);
    if (w == 1 && small(m, n, k))
      return kb * (mr + nr);
    return kb * round_up(std::min(n, nc), nr) + round_up(std::min(m, mc), mr) * kb;
  }
};

namespace detail {

using simd::fma;

// C tile (mr_eff x nr_eff of MR x NR) = sum over p < kc of A(r, p) B(p, q), where A(r, p) is
// ap[p * a_ps + r * a_rs] and B(p, q) is bp[p * b_ps + q * b_qs]. Packed panels have the constant
// strides (MR, 1) and (NR, 1); Direct reads operands in place (b_qs must be 1 with SIMD), and
// UnitB says b_qs is 1 (fewer live strides: Thumb-2 has 13 general registers).
template <bool Direct, bool UnitB, class T>
void gemm_micro(index_t kc, const T* ap, std::ptrdiff_t a_ps, std::ptrdiff_t a_rs, const T* bp,
                std::ptrdiff_t b_ps, std::ptrdiff_t b_qs, T* c, index_t ldc, index_t mr_eff,
                index_t nr_eff, bool add) {
  using G = gemm_blocking<T>;
  using B = simd::batch<T>;
  constexpr index_t w = simd::lanes<B>;
  constexpr index_t nb = G::nr / w;
  if constexpr (!Direct) {
    a_ps = G::mr, a_rs = 1, b_ps = G::nr;
  }
  if constexpr (!Direct || UnitB)
    b_qs = 1;
  const std::ptrdiff_t b_step = w > 1 ? std::ptrdiff_t(w) : b_qs;  // between batches of a row
  // The tile loops must be unrolled so the accumulators live in registers: -O2 does not fully
  // unroll nested loops by itself, and on Cortex-M4F that cost a load and a store per multiply.
  B acc[G::mr][nb];
  FG_UNROLL for (index_t r = 0; r < G::mr; ++r) FG_UNROLL for (index_t q = 0; q < nb; ++q)
      acc[r][q] = B(T(0));
  for (index_t p = 0; p < kc; ++p, ap += a_ps, bp += b_ps) {
    B b[nb];
    FG_UNROLL for (index_t q = 0; q < nb; ++q) b[q] =
        simd::load<B>(bp + std::ptrdiff_t(q) * b_step);
    FG_UNROLL for (index_t r = 0; r < G::mr; ++r) {
      const B a(ap[std::ptrdiff_t(r) * a_rs]);
      FG_UNROLL for (index_t q = 0; q < nb; ++q) acc[r][q] = fma(a, b[q], acc[r][q]);
    }
  }
  if (mr_eff == G::mr && nr_eff == G::nr) {
    FG_UNROLL for (index_t r = 0; r < G::mr; ++r) FG_UNROLL for (index_t q = 0; q < nb; ++q) {
      T* dst = c + r * ldc + q * w;
      simd::store(dst, add ? acc[r][q] + simd::load<B>(dst) : acc[r][q]);
    }
    return;
  }
  alignas(simd::alignment) T tile[G::mr * G::nr];
  FG_UNROLL for (index_t r = 0; r < G::mr; ++r) FG_UNROLL for (index_t q = 0; q < nb; ++q)
      simd::store(tile + r * G::nr + q * w, acc[r][q]);
  for (index_t r = 0; r < mr_eff; ++r)
    for (index_t q = 0; q < nr_eff; ++q)
      c[r * ldc + q] = add ? c[r * ldc + q] + tile[r * G::nr + q] : tile[r * G::nr + q];
}

// Copies a kc x Width panel whose element (p, q) is src[p * sp + q * sq] to dst[p * Width + q],
// zero-padding columns from `width` on. Full panels take unrolled copies (small matrices spend
// a fair share of their time here).
template <index_t Width, class T>
void pack_panel(T* dst, const T* src, index_t kc, index_t width, std::ptrdiff_t sp,
                std::ptrdiff_t sq) {
  if (width == Width && sq == 1) {
    for (index_t p = 0; p < kc; ++p, dst += Width, src += sp)
      FG_UNROLL for (index_t q = 0; q < Width; ++q) dst[q] = src[q];
  } else if (width == Width) {
    for (index_t p = 0; p < kc; ++p, dst += Width, src += sp)
      FG_UNROLL for (index_t q = 0; q < Width; ++q) dst[q] = src[std::ptrdiff_t(q) * sq];
  } else {
    for (index_t p = 0; p < kc; ++p, dst += Width, src += sp) {
      index_t q = 0;
      for (; q < width; ++q)
        dst[q] = src[std::ptrdiff_t(q) * sq];
      for (; q < Width; ++q)
        dst[q] = T(0);
    }
  }
}

// sum_p x[p] * y[p] over contiguous x, y.
template <class T> T dot(index_t k, const T* x, const T* y) {
  using B = simd::batch<T>;
  constexpr index_t w = simd::lanes<B>;
  B acc[2] = {B(T(0)), B(T(0))};
  index_t p = 0;
  for (; p + 2 * w <= k; p += 2 * w) {
    acc[0] = fma(simd::load<B>(x + p), simd::load<B>(y + p), acc[0]);
    acc[1] = fma(simd::load<B>(x + p + w), simd::load<B>(y + p + w), acc[1]);
  }
  T r = simd::hsum(acc[0] + acc[1]);
  for (; p < k; ++p)
    r += x[p] * y[p];
  return r;
}
// y[0..n) += alpha * x[0..n) over contiguous x, y.
template <class T> void axpy(index_t n, T alpha, const T* x, T* y) {
  using B = simd::batch<T>;
  constexpr index_t w = simd::lanes<B>;
  const index_t body = n - n % w;
  for (index_t j = 0; j < body; j += w)
    simd::store(y + j, fma(B(alpha), simd::load<B>(x + j), simd::load<B>(y + j)));
  for (index_t j = body; j < n; ++j)
    y[j] += alpha * x[j];
}

// Matrix-vector products (N or M is 1) with at least one operand contiguous along the sum:
// the packed micro-kernel would spend most of its work on padding there. False: not handled.
template <class T>
bool gemv(index_t m, index_t n, index_t k, const T* a, std::ptrdiff_t rsa, std::ptrdiff_t csa,
          const T* b, std::ptrdiff_t rsb, std::ptrdiff_t csb, T* c, index_t ldc, bool add) {
  if (n == 1 && ldc == 1) {
    if (csa == 1 && rsb == 1) {  // rows of A dotted with b
      for (index_t i = 0; i < m; ++i) {
        const T v = dot(k, a + std::ptrdiff_t(i) * rsa, b);
        c[i] = add ? c[i] + v : v;
      }
      return true;
    }
    if (rsa == 1) {  // columns of A scaled by b(p), summed
      if (!add)
        std::fill(c, c + m, T(0));
      for (index_t p = 0; p < k; ++p)
        axpy(m, b[std::ptrdiff_t(p) * rsb], a + std::ptrdiff_t(p) * csa, c);
      return true;
    }
  }
  if (m == 1) {
    if (csb == 1) {  // rows of B scaled by a(p), summed
      if (!add)
        std::fill(c, c + n, T(0));
      for (index_t p = 0; p < k; ++p)
        axpy(n, a[std::ptrdiff_t(p) * csa], b + std::ptrdiff_t(p) * rsb, c);
      return true;
    }
    if (rsb == 1 && csa == 1) {  // a dotted with columns of B
      for (index_t j = 0; j < n; ++j) {
        const T v = dot(k, a, b + std::ptrdiff_t(j) * csb);
        c[j] = add ? c[j] + v : v;
      }
      return true;
    }
  }
  return false;
}

// A product of one block each way (gemm_blocking::small), operands read in place: only the
// ragged last row of tiles and column of tiles are packed (zero-padded), into `ws`.
template <class T>
void gemm_direct(index_t m, index_t n, index_t k, const T* a, std::ptrdiff_t rsa,
                 std::ptrdiff_t csa, const T* b, std::ptrdiff_t rsb, std::ptrdiff_t csb, T* c,
                 index_t ldc, bool add, T* ws) {
  using G = gemm_blocking<T>;
  T* a_edge = ws;
  T* b_edge = ws + k * G::mr;
  const index_t m_full = m - m % G::mr, n_full = n - n % G::nr;
  if (m_full < m)
    pack_panel<G::mr>(a_edge, a + std::ptrdiff_t(m_full) * rsa, k, m - m_full, csa, rsa);
  if (n_full < n)
    pack_panel<G::nr>(b_edge, b + std::ptrdiff_t(n_full) * csb, k, n - n_full, rsb, csb);
  auto tiles = [&](auto unit_b) {
    for (index_t jr = 0; jr < n; jr += G::nr) {
      const bool bd = jr < n_full;
      const T* bp = bd ? b + std::ptrdiff_t(jr) * csb : b_edge;
      for (index_t ir = 0; ir < m; ir += G::mr) {
        const bool ad = ir < m_full;
        gemm_micro<true, decltype(unit_b)::value>(
            k, ad ? a + std::ptrdiff_t(ir) * rsa : a_edge, ad ? csa : std::ptrdiff_t(G::mr),
            ad ? rsa : 1, bp, bd ? rsb : std::ptrdiff_t(G::nr), bd ? csb : 1, c + ir * ldc + jr,
            ldc, std::min(G::mr, m - ir), std::min(G::nr, n - jr), add);
      }
    }
  };
  if (csb == 1)
    tiles(std::true_type{});
  else
    tiles(std::false_type{});
}

// The packed (or, for one block each way, direct) product: every element of C is the micro-
// kernel's sum over k in blocks of KC, whatever the extents, so a block of C computed alone is
// bitwise the same as within the whole product.
template <class T>
void gemm_blocks(index_t m, index_t n, index_t k, const T* a, std::ptrdiff_t rsa,
                 std::ptrdiff_t csa, const T* b, std::ptrdiff_t rsb, std::ptrdiff_t csb, T* c,
                 index_t ldc, bool add, T* ws) {
  using G = gemm_blocking<T>;
  if (G::small(m, n, k) && (G::w == 1 || csb == 1)) {
    gemm_direct(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, add, ws);
    return;
  }
  const index_t kb_max = std::min(k, G::kc);
  T* bpack = ws;
  T* apack = ws + kb_max * G::round_up(std::min(n, G::nc), G::nr);
  for (index_t jc = 0; jc < n; jc += G::nc) {
    const index_t nc = std::min(G::nc, n - jc);
    for (index_t pc = 0; pc < k; pc += G::kc) {
      const index_t kc = std::min(G::kc, k - pc);
      const bool acc = add || pc > 0;
      // Pack B[pc:pc+kc, jc:jc+nc] into NR-wide panels and A[ic:ic+mc, pc:pc+kc] into MR-wide
      // ones, zero-padded.
      for (index_t jr = 0; jr < nc; jr += G::nr)
        pack_panel<G::nr>(bpack + jr * kc,
                          b + std::ptrdiff_t(pc) * rsb + std::ptrdiff_t(jc + jr) * csb, kc,
                          std::min(G::nr, nc - jr), rsb, csb);
      for (index_t ic = 0; ic < m; ic += G::mc) {
        const index_t mc = std::min(G::mc, m - ic);
        for (index_t ir = 0; ir < mc; ir += G::mr)
          pack_panel<G::mr>(apack + ir * kc,
                            a + std::ptrdiff_t(ic + ir) * rsa + std::ptrdiff_t(pc) * csa, kc,
                            std::min(G::mr, mc - ir), csa, rsa);
        for (index_t jr = 0; jr < nc; jr += G::nr)
          for (index_t ir = 0; ir < mc; ir += G::mr)
            gemm_micro<false, true>(kc, apack + ir * kc, 0, 0, bpack + jr * kc, 0, 0,
                                    c + (ic + ir) * ldc + jc + jr, ldc, std::min(G::mr, mc - ir),
                                    std::min(G::nr, nc - jr), acc);
      }
    }
  }
}

#if FG_HAS_THREADS
// Products of more than this many multiply-adds are cut into blocks of C for several threads
// (about 5 µs of one AVX2 core's work; 64^3, at the limit, was 8% slower on two threads than on
// one, 128^3 1.7x faster).
inline constexpr double gemm_parallel_min_flops = 1 << 18;

// A large product on several threads: the longer side of C, counted in register tiles, is cut
// into about four blocks per thread at tile boundaries, and each block runs gemm_blocks with its
// own workspace (its panels packed by the thread that uses them). Bitwise the same result as in
// one piece (gemm_blocks). False: left to one thread.
template <class T>
bool gemm_parallel(index_t m, index_t n, index_t k, const T* a, std::ptrdiff_t rsa,
                   std::ptrdiff_t csa, const T* b, std::ptrdiff_t rsb, std::ptrdiff_t csb, T* c,
                   index_t ldc, bool add) {
  using G = gemm_blocking<T>;
  const index_t threads = index_t(get_num_threads());
  if (threads < 2 || double(m) * double(n) * double(k) <= gemm_parallel_min_flops)
    return false;
  const index_t row_tiles = (m + G::mr - 1) / G::mr, col_tiles = (n + G::nr - 1) / G::nr;
  const bool by_rows = row_tiles >= col_tiles;
  const index_t tiles = std::max(row_tiles, col_tiles);
  const index_t blocks = std::min(tiles, 4 * threads);
  if (blocks < 2)
    return false;
  const index_t block = (tiles + blocks - 1) / blocks * (by_rows ? G::mr : G::nr);
  parallel_for(0, by_rows ? m : n, block, [&](index_t lo, index_t hi) {
    thread_local std::vector<T> ws;
    const index_t bm = by_rows ? hi - lo : m, bn = by_rows ? n : hi - lo;
    ws.resize(std::max(ws.size(), gemm_blocking<T>::workspace(bm, bn, k)));
    gemm_blocks(bm, bn, k, by_rows ? a + std::ptrdiff_t(lo) * rsa : a, rsa, csa,
                by_rows ? b : b + std::ptrdiff_t(lo) * csb, rsb, csb,
                by_rows ? c + lo * ldc : c + lo, ldc, add, ws.data());
  });
  return true;
}
#endif

}  // namespace detail

// C[M x N] (row-major, leading dimension ldc) = A[M x K] * B[K x N], or += when `add`.
// A(i, k) = a[i*rsa + k*csa] and B(k, j) = b[k*rsb + j*csb]: transposes cost nothing.
// `ws` holds gemm_blocking<T>::workspace(M, N, K) elements. Large products run on
// get_num_threads() threads, with the same result as on one.
template <class T>
void gemm(index_t m, index_t n, index_t k, const T* a, std::ptrdiff_t rsa, std::ptrdiff_t csa,
          const T* b, std::ptrdiff_t rsb, std::ptrdiff_t csb, T* c, index_t ldc, bool add, T* ws) {
  if (m == 0 || n == 0)
    return;
  if (k == 0) {
    if (!add)
      for (index_t i = 0; i < m; ++i)
        std::fill(c + i * ldc, c + i * ldc + n, T(0));
    return;
  }
  if ((m == 1 || n == 1) && detail::gemv(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, add))
    return;
#if FG_HAS_THREADS
  if (detail::gemm_parallel(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, add))
    return;
#endif
  detail::gemm_blocks(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, add, ws);
}

}  // namespace fg::exec

FG_DIAGNOSTICS_END
