// fusegrad/cuda/var.hpp — fg::var on the device: the CUDA backend of the dynamic path. An
// elementwise chain runs as one kernel, and the sum or mean of one, with the gradients of its
// leaves, as one more; matmul and its gradients go to cuBLAS (nvcc only)
// SPDX-License-Identifier: MIT
#pragma once

#if !defined(__CUDACC__)
#error "fusegrad/cuda/var.hpp holds CUDA kernels: compile this file with nvcc"
#endif

#include "fusegrad/cuda/broadcast.hpp"
#include "fusegrad/cuda/chain.hpp"
#include "fusegrad/cuda/launch.hpp"
#include "fusegrad/cuda/matmul.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg::gpu::detail {

static_assert(sizeof(chain::program<double>) <= 4096,
              "fusegrad: a chain must fit in a CUDA kernel's 4 KB of arguments");

// Each thread keeps the values and adjoints of its element's steps and leaves (in local memory:
// a chain is interpreted, so their count is known at run time only).
template <class T>
__global__ void __launch_bounds__(block_threads) chain_values_kernel(chain::program<T> c, T* out) {
  T vals[dynamic::fusion_limit];
  for (index_t i = first_index(); i < c.n; i += grid_stride())
    out[i] = chain::forward_element(c, i, vals);
}

// One-element leaves whose gradients a thread sums before one atomic add per block; further
// ones (rare: numbers wanting gradients) add per element.
inline constexpr unsigned summed_leaves = 8;

// The chain's pass: with `backward`, its leaves' gradients for the result's gradient g[i] (or
// `seed` without g); with `total`, the sum of its values times `scale` (sum_to).
template <class T>
__global__ void __launch_bounds__(block_threads)
    chain_sweep_kernel(chain::program<T> c, const T* g, T seed, bool backward, T* total,
                       double scale, sum_scratch<double> scratch) {
  T vals[dynamic::fusion_limit], adj[dynamic::fusion_limit], ladj[3 * dynamic::fusion_limit];
  T sums[summed_leaves] = {};
  double acc = 0;  // summed in double, as the host path does
  for (index_t i = first_index(); i < c.n; i += grid_stride()) {
    acc += chain::forward_element(c, i, vals);
    if (!backward)
      continue;
    chain::backward_element(c, i, vals, g ? g[i] : seed, adj, ladj);
    unsigned b = 0;
    for (unsigned k = 0; k < c.leaves; ++k) {
      T* dst = c.l[k].grad;
      if (!dst)
        continue;
      if (!c.l[k].broadcast)
        dst[i] = ladj[k];
      else if (b < summed_leaves)
        sums[b++] += ladj[k];
      else
        atomicAdd(dst, ladj[k]);
    }
  }
  if (backward) {  // the same leaves in the same order on every thread: block_sum is uniform
    unsigned b = 0;
    for (unsigned k = 0; k < c.leaves && b < summed_leaves; ++k)
      if (c.l[k].grad && c.l[k].broadcast) {
        const T s = block_sum(sums[b++]);
        if (threadIdx.x == 0)
          atomicAdd(c.l[k].grad, s);
      }
  }
  if (total)
    sum_to(acc, scratch, scale, total);
}

template <class T>
__global__ void __launch_bounds__(block_threads) add_kernel(T* into, const T* g, index_t n) {
  for (index_t i = first_index(); i < n; i += grid_stride())
    into[i] += g[i];
}
template <class T>
__global__ void __launch_bounds__(block_threads) scale_kernel(T* x, index_t n, T s) {
  for (index_t i = first_index(); i < n; i += grid_stride())
    x[i] *= s;
}

// Broadcasting, times s: each big element from the small element it reads; each small element
// as the sum, in double and in a fixed order, of the big elements that read it.
template <class T>
__global__ void __launch_bounds__(block_threads)
    spread_kernel(broadcast::map m, const T* small, T* big, T s) {
  for (index_t i = first_index(); i < m.big_size; i += grid_stride())
    big[i] = s * small[broadcast::source(m, i)];
}
// A thread per small element (when each sums few, or there are enough to fill the device), or
// a block per small element (when there are few: a bias's gradient, summed over the batch).
template <class T, bool ByBlock>
__global__ void __launch_bounds__(block_threads)
    fold_kernel(broadcast::map m, const T* big, T* small, double s) {
  const index_t first = ByBlock ? index_t(blockIdx.x) : first_index();
  const index_t step = ByBlock ? index_t(gridDim.x) : grid_stride();  // the same j block-wide
  for (index_t j = first; j < m.small_size; j += step) {
    double acc = 0;
    for (index_t r = ByBlock ? threadIdx.x : 0; r < m.folded; r += ByBlock ? blockDim.x : 1)
      acc += big[broadcast::member(m, j, r)];
    if constexpr (ByBlock)
      acc = block_sum(acc);
    if (!ByBlock || threadIdx.x == 0)
      small[j] = T(s * acc);
  }
}

// The backend's entries: every call on the current stream (fg::gpu::stream_guard), checked.
struct var_backend {
  static bool supports(const dynamic::fused_op* op) {
    return chain::position_in(chain::table{}, op) >= 0;
  }
  static void* allocate(std::size_t bytes) { return stream_allocate(bytes, current_stream()); }
  static void release(void* p) noexcept { stream_free(p, current_stream()); }
  static void zero(void* p, std::size_t bytes) {
    check(cudaMemsetAsync(p, 0, bytes, current_stream()), "cudaMemsetAsync");
  }
  static void to_host(void* dst, const void* src, std::size_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, current_stream()),
          "cudaMemcpyAsync (device to host)");
    synchronize();
  }
  static void from_host(void* dst, const void* src, std::size_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, current_stream()),
          "cudaMemcpyAsync (host to device)");
    synchronize();  // the source may be a temporary
  }
  static void copy(void* dst, const void* src, std::size_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, current_stream()),
          "cudaMemcpyAsync (device to device)");
  }
  static void add(dtype t, void* into, const void* g, index_t n) {
    if (n)
      fg::dispatch(t, [&](auto z) {
        using T = decltype(z);
        launch(add_kernel<T>, grid_for(n), "fg::var gradient accumulation", static_cast<T*>(into),
               static_cast<const T*>(g), n);
      });
  }
  static void scale(dtype t, void* x, index_t n, double s) {
    if (n)
      fg::dispatch(t, [&](auto z) {
        using T = decltype(z);
        launch(scale_kernel<T>, grid_for(n), "fg::var gradient scaling", static_cast<T*>(x), n,
               T(s));
      });
  }
  static void spread(dtype t, const void* small, void* big, const extents& e,
                     const dynamic::strides& s, double scale) {
    const broadcast::map m = broadcast::make(e, s);
    if (m.big_size)
      fg::dispatch(t, [&](auto z) {
        using T = decltype(z);
        launch(spread_kernel<T>, grid_for(m.big_size), "fg::var broadcast", m,
               static_cast<const T*>(small), static_cast<T*>(big), T(scale));
      });
  }
  static void fold(dtype t, const void* big, void* small, const extents& e,
                   const dynamic::strides& s, double scale) {
    const broadcast::map m = broadcast::make(e, s);
    if (m.small_size)
      fg::dispatch(t, [&](auto z) {
        using T = decltype(z);
        const auto* from = static_cast<const T*>(big);
        auto* to = static_cast<T*>(small);
        constexpr const char* what = "fg::var sum over broadcast axes";
        if (m.folded < block_threads || m.small_size >= index_t(max_grid()) * block_threads)
          launch(fold_kernel<T, false>, grid_for(m.small_size), what, m, from, to, scale);
        else
          launch(fold_kernel<T, true>, unsigned(std::min<index_t>(m.small_size, max_grid())), what,
                 m, from, to, scale);
      });
  }
  static void gemm(dtype t, index_t m, index_t n, index_t k, const void* a, bool ta, const void* b,
                   bool tb, void* c, bool add) {
    fg::dispatch(t, [&](auto z) {
      using T = decltype(z);
      fg::gpu::detail::gemm(static_cast<const T*>(a), ta, static_cast<const T*>(b), tb,
                            static_cast<T*>(c), m, n, k, add);
    });
  }
  static void realise(const dynamic::fused_program& p, void* out) {
    fg::dispatch(p.type, [&](auto z) {
      using T = decltype(z);
      launch(chain_values_kernel<T>, grid_for(p.n), "fg::var elementwise chain",
             chain::make<T>(p, nullptr), static_cast<T*>(out));
    });
  }
  static void sweep(const dynamic::fused_program& p, const void* g, double seed, void* total,
                    double scale, void* const* grads) {
    fg::dispatch(p.type, [&](auto z) {
      using T = decltype(z);
      const auto scratch = total ? scratch_for<double>(current_stream()) : sum_scratch<double>{};
      launch(chain_sweep_kernel<T>, grid_for(p.n), "fg::var elementwise chain (with gradients)",
             chain::make<T>(p, grads), static_cast<const T*>(g), T(seed), grads != nullptr,
             static_cast<T*>(total), scale, scratch);
    });
  }
};

inline constexpr dynamic::device_backend cuda_var_backend{"CUDA",
                                                          &var_backend::supports,
                                                          &var_backend::allocate,
                                                          &var_backend::release,
                                                          &var_backend::zero,
                                                          &var_backend::to_host,
                                                          &var_backend::from_host,
                                                          &var_backend::copy,
                                                          &var_backend::add,
                                                          &var_backend::scale,
                                                          &var_backend::spread,
                                                          &var_backend::fold,
                                                          &var_backend::gemm,
                                                          &var_backend::realise,
                                                          &var_backend::sweep};
// Part of every program that includes this header: var::to(fg::cuda) finds the backend here.
inline const bool cuda_var_backend_registered = (dynamic::cuda_backend() = &cuda_var_backend, true);

}  // namespace fg::gpu::detail

FG_DIAGNOSTICS_END
