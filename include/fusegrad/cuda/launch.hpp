// fusegrad/cuda/launch.hpp — fused expressions as CUDA kernels: assignment, value-and-gradient
// and total reductions, each one launch (nvcc only)
// SPDX-License-Identifier: MIT
#pragma once

#if !defined(__CUDACC__)
#error "fusegrad/cuda/launch.hpp holds CUDA kernels: compile this file with nvcc"
#endif

#include "fusegrad/cuda/device_tensor.hpp"
#include "fusegrad/grad/reverse.hpp"

#include <thrust/execution_policy.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/system/system_error.h>
#include <thrust/transform_reduce.h>

#include <algorithm>
#include <tuple>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::gpu {
namespace detail {

inline constexpr unsigned block_threads = 256;

// Enough blocks to fill the current device, never more than the elements need; the kernels
// stride over the rest (a grid-stride loop), so a block's reduction covers many elements.
inline unsigned max_grid() {
  return unsigned(multiprocessors()) * 8;
}
inline unsigned grid_for(index_t n) {
  const index_t want = (n + block_threads - 1) / block_threads;
  return unsigned(std::max<index_t>(1, std::min<index_t>(want, max_grid())));
}

template <class K, class... Args>
void launch(K kernel, unsigned blocks, const char* what, Args... args) {
  kernel<<<blocks, block_threads, 0, current_stream()>>>(args...);
  check(cudaGetLastError(), what);
  ++launch_counter();
}

__device__ __forceinline__ index_t first_index() {
  return index_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ index_t grid_stride() {
  return index_t(gridDim.x) * blockDim.x;
}

template <class T, std::size_t R, bool Flat, class K>
__global__ void __launch_bounds__(block_threads)
    assign_kernel(K k, dims_t<R> d, T* out, index_t n) {
  if constexpr (Flat)
    k.row(dims_t<R>{}, true);
  for (index_t i = first_index(); i < n; i += grid_stride())
    exec::assign_element<T, R, Flat>(k, d, out, i);
}

// The sum of v over the block, in thread 0.
template <class T> __device__ __forceinline__ T block_sum(T v) {
  __shared__ T warp_sums[block_threads / 32];
  __syncthreads();  // warp_sums may still be read by a previous call
  v = exec::warp_sum(v);
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0)
    warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0)
    v = exec::warp_sum(lane < blockDim.x / 32 ? warp_sums[lane] : T(0));
  return v;
}

// Device memory for fg::detail::own_buffers (a gradient written over an input), ordered on the
// current stream.
template <class T> struct stream_memory {
  static T* allocate(index_t n) {
    return static_cast<T*>(stream_allocate(std::size_t(n) * sizeof(T), current_stream()));
  }
  static void release(T* p) noexcept { stream_free(p, current_stream()); }
  static void copy(T* dst, const T* src, index_t n) {
    check(cudaMemcpyAsync(dst, src, std::size_t(n) * sizeof(T), cudaMemcpyDeviceToDevice,
                          current_stream()),
          "cudaMemcpyAsync(device to device)");
  }
};

// Per-(device, stream) memory for a pass's sum: one partial per block, a ticket counter that the
// last block resets, and the total (8-byte slots: blocks partials, the counter, the total). Kept,
// not allocated per call, so that a gradient pass is exactly one kernel launch with no memset
// before it; zeroed once, on the stream that will use it.
template <class T> struct sum_scratch {
  T* partial;
  unsigned* done;
  T* total;
};
template <class T> sum_scratch<T> scratch_for(cudaStream_t stream) {
  struct entry {
    int device;
    cudaStream_t stream;
    void* memory;
  };
  struct cache {
    std::vector<entry> entries;
    ~cache() {
      for (auto& e : entries)
        (void)cudaFree(e.memory);  // at thread exit the context may be gone: nothing to report
    }
  };
  thread_local cache c;
  const int device = current_device();
  const index_t blocks = max_grid();
  void* memory = nullptr;
  for (auto& e : c.entries)
    if (e.device == device && e.stream == stream)
      memory = e.memory;
  if (!memory) {
    const index_t bytes = (blocks + 2) * sizeof(double);
    check(cudaMalloc(&memory, bytes), "cudaMalloc");
    check(cudaMemsetAsync(memory, 0, bytes, stream), "cudaMemsetAsync");
    c.entries.push_back({device, stream, memory});
  }
  auto* base = static_cast<unsigned char*>(memory);
  return {reinterpret_cast<T*>(base), reinterpret_cast<unsigned*>(base + blocks * sizeof(double)),
          reinterpret_cast<T*>(base + (blocks + 1) * sizeof(double))};
}

// Called by every thread of the grid with its part of a sum: the parts are summed per block, and
// the last block to finish sums the blocks' partials in a fixed order (so the value does not
// depend on scheduling) and writes scale * total to *dst.
template <class A, class T>
__device__ __forceinline__ void sum_to(A acc, sum_scratch<A> out, A scale, T* dst) {
  acc = block_sum(acc);
  __shared__ bool last;
  if (threadIdx.x == 0) {
    out.partial[blockIdx.x] = acc;
    __threadfence();  // the partial is visible before the ticket is
    last = atomicInc(out.done, gridDim.x - 1) == gridDim.x - 1;  // wraps to 0: ready again
    __threadfence();  // and the other blocks' partials are read after it
  }
  __syncthreads();
  if (!last)
    return;
  const volatile A* partial = out.partial;
  A total(0);
  for (unsigned b = threadIdx.x; b < gridDim.x; b += blockDim.x)
    total += partial[b];
  total = block_sum(total);
  if (threadIdx.x == 0)
    *dst = T(scale * total);
}

// Value and gradient in one kernel: per element, values up the tree and adjoints down it, the
// values summed (sum_to).
template <class T, std::size_t R, bool Flat, class K, class Seed>
__global__ void __launch_bounds__(block_threads)
    gradient_kernel(K k, Seed s, dims_t<R> d, index_t n, T scale, sum_scratch<T> out) {
  if constexpr (Flat) {
    k.row(dims_t<R>{}, true);
    s.row(dims_t<R>{}, true);
  }
  T acc(0);
  for (index_t i = first_index(); i < n; i += grid_stride())
    acc += exec::gradient_element<T, R, Flat>(k, s, d, i);
  k.end_pass();  // every thread of the block is here: warp sums of uniform operands' gradients
  sum_to(acc, out, scale, out.total);
}

template <class E> inline constexpr bool fusable_v = exec::device_fusable_v<std::remove_cvref_t<E>>;

// f(std::true_type{}) for a flat pass (every leaf laid out as the output), else
// f(std::false_type{}): the kernels take flatness as a template argument.
template <class F> void with_flat(bool dense, F f) {
  if (dense)
    f(std::true_type{});
  else
    f(std::false_type{});
}

// dst = e over the extents of dst, one launch.
template <class T, std::size_t R, class Ev> void run_assign(Ev& ev, const dims_t<R>& d, T* dst) {
  const index_t n = size_of(d);
  if (!n)
    return;
  auto k = ev.kernel();
  with_flat(ev.dense(), [&](auto flat) {
    launch(assign_kernel<T, R, decltype(flat)::value, decltype(k)>, grid_for(n),
           "fg::gpu assign kernel launch", k, d, dst, n);
  });
}

template <class T, class S, class E> void assign(device_tensor<T, S>& dst, const E& e) {
  static_assert(fusable_v<E>,
                "fg::gpu: only element-wise expressions over device tensors fuse into a CUDA "
                "kernel; compute reductions with fg::gpu::sum/mean/max/min and products with "
                "fg::gpu::matmul first");
  static_assert(std::is_same_v<typename E::value_type, T>,
                "fg::device_tensor = expression: the expression's element type differs from the "
                "tensor's");
  static_assert(assignable_v<S, typename E::shape_type>,
                "fg::device_tensor = expression: the expression's shape does not fit the tensor's");
  constexpr std::size_t R = S::rank;
  const auto want = broadcast_dims<R>("fg::device_tensor = expression", dims_t<0>{}, e.dims());
  if (dst.dims() != want || (dst.size() == 0 && size_of(want) != 0)) {
    // New extents: fresh storage (an element-wise pass reads each input element only where it
    // writes the same element, so same-extent assignment is safe in place).
    device_tensor<T, S> fresh(uninitialized, want);
    assign(fresh, e);
    dst = std::move(fresh);
    return;
  }
  exec::evaluator<E, R, exec::device_forward_mode> ev(e, want);
  run_assign<T, R>(ev, want, dst.data());
}

}  // namespace detail

// Evaluates an element-wise expression over device tensors into a new device tensor: one launch.
template <expression E> auto eval(const E& e) {
  using D = std::remove_cvref_t<E>;
  device_tensor<typename D::value_type, typename D::shape_type> out(uninitialized, e.dims());
  detail::assign(out, e);
  return out;
}

// Value of sum(e) or mean(e), e element-wise over device tensors, and its gradient with respect
// to each device tensor named, written into the caller's device tensors g (resized when their
// extents differ): one kernel launch. Returns the value (waiting for it).
template <expression F, device_tensor_like... G, device_tensor_like... X>
typename std::remove_cvref_t<F>::value_type value_and_grad_into(const F& f, std::tuple<G&...> g,
                                                                const X&... x) {
  using D = std::remove_cvref_t<F>;
  using T = typename D::value_type;
  using root = fg::detail::gradient_root<D>;
  using node = typename root::node;
  constexpr std::size_t R = root::rank;
  static_assert(fg::detail::is_total_sum_v<D> && detail::fusable_v<node>,
                "fg::gpu::value_and_grad(): f must be fg::sum(e) or fg::mean(e) of an element-wise "
                "expression e over device tensors: the pass that fuses into one kernel");
  static_assert(sizeof...(G) == sizeof...(X) && sizeof...(X) > 0,
                "fg::gpu::value_and_grad_into(): give one gradient tensor per tensor named");
  static_assert((std::is_same_v<typename X::value_type, T> && ...),
                "fg::gpu::value_and_grad(): the tensors must share the expression's element type");
  // (A moved-from tensor keeps static extents but holds no memory: the size says so.)
  std::apply(
      [&](auto&... gi) {
        ((gi.dims() != x.dims() || gi.size() != x.size()
              ? void(gi = std::remove_cvref_t<decltype(gi)>(uninitialized, x.dims()))
              : void()),
         ...);
      },
      g);
  exec::target<T> items[sizeof...(X)];
  fg::detail::fill_targets(items, g, x...);
  const auto d = root::dims(f);
  exec::evaluator<node, R, exec::device_gradient_mode> ev(root::of(f), d);
  exec::targets<T> tg{items, sizeof...(X), 0};
  fg::detail::plan_phase(ev, tg, 0);
  const cudaStream_t stream = current_stream();
  fg::detail::own_buffers<T, detail::stream_memory<T>> own(items, tg.aliased ? sizeof...(X) : 0);
  own.take();
  fg::detail::plan_phase(ev, tg, 1);
  for (auto& t : items)
    if (fg::detail::needs_zero(t) && t.size)
      check(cudaMemsetAsync(t.grad, 0, t.size * sizeof(T), stream), "cudaMemsetAsync");
  const T scale = root::template scale<T>(f);
  const index_t n = size_of(d);
  T value = scale * T(0);  // an empty mean is NaN, as on the host
  if (n) {
    const auto scratch = detail::scratch_for<T>(stream);
    auto k = ev.kernel();
    const exec::constant_seed<T> seed{scale};
    detail::with_flat(ev.dense(), [&](auto flat) {
      detail::launch(
          detail::gradient_kernel<T, R, decltype(flat)::value, decltype(k), exec::constant_seed<T>>,
          detail::grid_for(n), "fg::gpu gradient kernel launch", k, seed, d, n, scale, scratch);
    });
    check(cudaMemcpyAsync(&value, scratch.total, sizeof(T), cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync(device to host)");
  }
  own.finish();
  for (std::size_t i = 1; i < sizeof...(X); ++i)
    if (const std::size_t j = fg::detail::first_alias(items, i); j != i)
      check(cudaMemcpyAsync(items[i].grad, items[j].grad, items[i].size * sizeof(T),
                            cudaMemcpyDeviceToDevice, stream),
            "cudaMemcpyAsync(device to device)");
  synchronize();
  return value;
}

// As value_and_grad_into, returning std::tuple{value, dx, ...} with new device tensors.
template <expression F, device_tensor_like... X> auto value_and_grad(const F& f, const X&... x) {
  using T = typename std::remove_cvref_t<F>::value_type;
  std::tuple<device_tensor<typename X::value_type, typename X::shape_type>...> grads;
  const T value =
      std::apply([&](auto&... g) { return value_and_grad_into(f, std::tie(g...), x...); }, grads);
  return std::apply([&](auto&... g) { return std::tuple{value, std::move(g)...}; }, grads);
}

namespace detail {

// One element of an expression for Thrust: the kernel is copied per call (Thrust's functor is
// const) and pointed at the element's row, then read.
template <class T, std::size_t R, bool Flat, class K> struct element_value {
  K k;
  dims_t<R> d;
  __device__ T operator()(index_t i) const {
    K local = k;
    if constexpr (Flat)
      local.row(dims_t<R>{}, true);
    return exec::value_element<T, R, Flat>(local, d, i);
  }
};
template <class Red, class T> struct combine_with {
  __device__ T operator()(T a, T b) const { return Red::combine(a, b); }
};

// Thrust's temporary storage from the stream-ordered pool: Thrust's own allocates it with
// cudaMalloc and frees it with cudaFree, which synchronises the device, on every reduction.
struct thrust_temporaries {
  using value_type = char;
  cudaStream_t stream;
  char* allocate(std::ptrdiff_t bytes) {
    return static_cast<char*>(stream_allocate(std::size_t(bytes), stream));
  }
  void deallocate(char* p, std::size_t) noexcept { stream_free(p, stream); }
};

// Red over every element of e: Thrust's transform_reduce over the fused expression, so the
// expression is evaluated inside the reduction kernel and never stored.
template <class Red, class E> typename E::value_type reduce_all(const E& e, const char* what) {
  using T = typename E::value_type;
  constexpr std::size_t R = E::shape_type::rank;
  static_assert(fusable_v<E>,
                "fg::gpu::sum/mean/max/min(): the argument must be an element-wise expression "
                "over device tensors");
  const auto d = e.dims();
  const index_t n = size_of(d);
  exec::evaluator<E, R, exec::device_forward_mode> ev(e, d);
  auto k = ev.kernel();
  thrust_temporaries temporaries{current_stream()};
  const auto policy = thrust::cuda::par(temporaries).on(current_stream());
  const thrust::counting_iterator<index_t> first(0), last(n);
  T acc;
  try {
    with_flat(ev.dense(), [&](auto flat) {
      acc = thrust::transform_reduce(policy, first, last,
                                     element_value<T, R, decltype(flat)::value, decltype(k)>{k, d},
                                     Red::template identity<T>(), combine_with<Red, T>{});
    });
  } catch (const thrust::system_error& err) {
    check(cudaError_t(err.code().value()), what);
    throw;
  }
  return Red::finish(acc, T(0), T(n));
}

}  // namespace detail

template <expression E> auto sum(const E& e) {
  return detail::reduce_all<ops::sum_red>(e, "fg::gpu::sum (thrust::transform_reduce)");
}
template <expression E> auto mean(const E& e) {
  return detail::reduce_all<ops::mean_red>(e, "fg::gpu::mean (thrust::transform_reduce)");
}
template <expression E> auto max(const E& e) {
  return detail::reduce_all<ops::max_red>(e, "fg::gpu::max (thrust::transform_reduce)");
}
template <expression E> auto min(const E& e) {
  return detail::reduce_all<ops::min_red>(e, "fg::gpu::min (thrust::transform_reduce)");
}
// A device tensor reduces as the expression that reads it.
template <device_tensor_like X> auto sum(const X& x) {
  return gpu::sum(x.node());  // qualified: ADL would find fg::sum, the lazy one
}
template <device_tensor_like X> auto mean(const X& x) {
  return gpu::mean(x.node());  // qualified: ADL would find fg::mean, the lazy one
}
template <device_tensor_like X> auto max(const X& x) {
  return gpu::max(x.node());  // qualified: ADL would find fg::max, the lazy one
}
template <device_tensor_like X> auto min(const X& x) {
  return gpu::min(x.node());  // qualified: ADL would find fg::min, the lazy one
}

}  // namespace fg::gpu

FG_DIAGNOSTICS_END
