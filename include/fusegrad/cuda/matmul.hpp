// fusegrad/cuda/matmul.hpp — matrix products of device tensors: cuBLAS, or a tiled kernel of our
// own where cuBLAS is absent (nvcc only)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/cuda/launch.hpp"

// cuBLAS ships with the toolkit; FUSEGRAD_NO_CUBLAS (or its absence) selects the tiled kernel,
// which needs nothing but the runtime.
#if !defined(FUSEGRAD_NO_CUBLAS) && __has_include(<cublas_v2.h>)
#include <cublas_v2.h>
#define FG_HAS_CUBLAS 1
#else
#define FG_HAS_CUBLAS 0
#endif

FG_DIAGNOSTICS_BEGIN

namespace fg::gpu {
namespace detail {

inline constexpr unsigned tile = 16;

// C[m x n] (+)= op(A) op(B), row-major, op transposing when asked: A's element (i, q) is at
// a[i * ar + q * ac] (and B's likewise), so one kernel serves every transpose. Each block
// computes a tile x tile block of C from tiles of A and B staged through shared memory.
template <class T>
__global__ void __launch_bounds__(tile* tile)
    tiled_matmul_kernel(const T* a, index_t ar, index_t ac, const T* b, index_t br, index_t bc,
                        T* c, index_t m, index_t n, index_t k, bool add) {
  __shared__ T as[tile][tile];
  __shared__ T bs[tile][tile];
  const index_t row = index_t(blockIdx.y) * tile + threadIdx.y;
  const index_t col = index_t(blockIdx.x) * tile + threadIdx.x;
  T acc(0);
  for (index_t t = 0; t < k; t += tile) {
    const index_t ak = t + threadIdx.x, bk = t + threadIdx.y;
    as[threadIdx.y][threadIdx.x] = row < m && ak < k ? a[row * ar + ak * ac] : T(0);
    bs[threadIdx.y][threadIdx.x] = bk < k && col < n ? b[bk * br + col * bc] : T(0);
    __syncthreads();
    for (unsigned q = 0; q < tile; ++q)
      acc += as[threadIdx.y][q] * bs[q][threadIdx.x];
    __syncthreads();
  }
  if (row < m && col < n)
    c[row * n + col] = add ? c[row * n + col] + acc : acc;
}

#if FG_HAS_CUBLAS
inline const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
    default:
      return "cuBLAS error";
  }
}
inline void check_cublas(cublasStatus_t s, const char* call) {
  if (s != CUBLAS_STATUS_SUCCESS)
    raise_failure(call, cublas_status_name(s), nullptr, cudaErrorUnknown);
}
// One handle per host thread (cuBLAS handles are not to be shared across threads), set to the
// current stream on every use.
inline cublasHandle_t cublas_handle() {
  struct holder {
    cublasHandle_t h = nullptr;
    ~holder() {
      if (h)
        (void)cublasDestroy(h);
    }
  };
  thread_local holder handle;
  if (!handle.h)
    check_cublas(cublasCreate(&handle.h), "cublasCreate");
  check_cublas(cublasSetStream(handle.h, current_stream()), "cublasSetStream");
  return handle.h;
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS is given B first.
template <class T>
void cublas_gemm(const T* a, bool ta, const T* b, bool tb, T* c, int m, int n, int k, bool add) {
  const T one = 1, beta = add ? 1 : 0;
  const cublasOperation_t ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N, oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int ldb = tb ? k : n, lda = ta ? m : k;
  if constexpr (std::is_same_v<T, float>)
    check_cublas(cublasSgemm(cublas_handle(), ob, oa, n, m, k, &one, b, ldb, a, lda, &beta, c, n),
                 "cublasSgemm");
  else
    check_cublas(cublasDgemm(cublas_handle(), ob, oa, n, m, k, &one, b, ldb, a, lda, &beta, c, n),
                 "cublasDgemm");
}
#endif

// Which implementation matmul uses; the tests run both.
enum class matmul_path { cublas, tiled };
inline matmul_path& default_matmul_path() {
  thread_local matmul_path p = FG_HAS_CUBLAS ? matmul_path::cublas : matmul_path::tiled;
  return p;
}

// C[m x n] (+)= op(A) op(B) over row-major device operands (A is [m, k], or [k, m] when `ta`;
// B likewise), on cuBLAS or the tiled kernel.
template <class T>
void gemm(const T* a, bool ta, const T* b, bool tb, T* c, index_t m, index_t n, index_t k,
          bool add = false) {
  if (m == 0 || n == 0)
    return;
  if (k == 0) {
    if (!add)
      check(cudaMemsetAsync(c, 0, m * n * sizeof(T), current_stream()), "cudaMemsetAsync");
    return;
  }
#if FG_HAS_CUBLAS
  if (default_matmul_path() == matmul_path::cublas) {
    cublas_gemm(a, ta, b, tb, c, int(m), int(n), int(k), add);
    return;
  }
#endif
  const dim3 blocks(unsigned((n + tile - 1) / tile), unsigned((m + tile - 1) / tile));
  tiled_matmul_kernel<T><<<blocks, dim3(tile, tile), 0, current_stream()>>>(
      a, ta ? 1 : k, ta ? m : 1, b, tb ? 1 : n, tb ? k : 1, c, m, n, k, add);
  check(cudaGetLastError(), "fg::gpu tiled matmul kernel launch");
  ++launch_counter();
}

}  // namespace detail

// C = A B for 2-d device tensors A [m, k] and B [k, n].
template <class T, class SA, class SB>
device_tensor<T, shape<dyn, dyn>> matmul(const device_tensor<T, SA>& a,
                                         const device_tensor<T, SB>& b) {
  static_assert(SA::rank == 2 && SB::rank == 2, "fg::gpu::matmul(): both operands must be 2-d");
  if (a.extent(1) != b.extent(0)) {
    fg::detail::message msg;
    msg << "fg::gpu::matmul(): inner extents differ: A is " << a.dims() << ", B is " << b.dims();
    raise_shape_error(msg.c_str());
  }
  device_tensor<T, shape<dyn, dyn>> c(uninitialized, {a.extent(0), b.extent(1)});
  detail::gemm(a.data(), false, b.data(), false, c.data(), a.extent(0), b.extent(1), a.extent(1));
  return c;
}

}  // namespace fg::gpu

FG_DIAGNOSTICS_END
