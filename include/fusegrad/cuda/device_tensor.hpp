// fusegrad/cuda/device_tensor.hpp — fg::device_tensor: a tensor in CUDA device memory, and the
// checked copies between it and the host
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/device.hpp"
#include "fusegrad/cuda/runtime.hpp"
#include "fusegrad/cuda/thread.hpp"

#include <utility>

FG_DIAGNOSTICS_BEGIN

namespace fg {

template <class T, class S> class device_tensor;
template <class T, class S> inline constexpr bool is_device_tensor_v<device_tensor<T, S>> = true;

namespace gpu::detail {
template <class T, class S, class E> void assign(device_tensor<T, S>& dst, const E& e);
}  // namespace gpu::detail

// Row-major elements in device memory, owned (copies copy on the device). Memory comes from the
// stream-ordered allocator (cudaMallocAsync, its pool set to keep what it frees, so a loop does
// not pay cudaMalloc) on the stream current at creation, and goes back on that stream: a tensor
// used on another stream must be synchronised with it first.
template <class T, class S> class device_tensor {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "fg::device_tensor: the element type must be float or double");
  static_assert(is_shape_v<S>, "fg::device_tensor: the second argument must be an fg::shape<...>");

 public:
  using value_type = T;
  using shape_type = S;
  static constexpr std::size_t rank = S::rank;

  device_tensor() requires(S::is_static) : device_tensor(extents_holder<S>{}.dims()) {}
  device_tensor() requires(!S::is_static) = default;
  // Zeros of the given extents, or uninitialised ones for a caller that writes them all.
  explicit device_tensor(const dims_t<rank>& d) : device_tensor(uninitialized, d) { zero(); }
  device_tensor(uninitialized_t, const dims_t<rank>& d) : stream_(gpu::current_stream()) {
    check_extents(d);
    ext_ = extents_holder<S>(d);
    n_ = size_of(d);
    if (n_)
      p_ = static_cast<T*>(gpu::detail::stream_allocate(n_ * sizeof(T), stream_));
  }
  device_tensor(const device_tensor& o) : device_tensor(uninitialized, o.dims()) {
    copy_device(o.p_);
  }
  device_tensor(device_tensor&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)),
        n_(std::exchange(o.n_, 0)),
        ext_(o.ext_),
        stream_(o.stream_) {
    if constexpr (!S::is_static)
      o.ext_ = {};  // the moved-from tensor is empty
  }
  device_tensor& operator=(const device_tensor& o) {
    if (this != &o) {
      device_tensor copy(o);
      swap(copy);
    }
    return *this;
  }
  device_tensor& operator=(device_tensor&& o) noexcept {
    swap(o);
    return *this;
  }
  ~device_tensor() {
    if (p_)
      gpu::detail::stream_free(p_, stream_);
  }

  // Evaluates an element-wise expression over device tensors in one kernel launch (nvcc only).
  template <expression E>
  device_tensor(const E& e) {  // NOLINT: implicit, as `device_tensor d = a * b;` should read
    gpu::detail::assign(*this, e);
  }
  template <expression E> device_tensor& operator=(const E& e) {
    gpu::detail::assign(*this, e);
    return *this;
  }

  T* data() { return p_; }
  const T* data() const { return p_; }
  index_t size() const { return n_; }
  dims_t<rank> dims() const { return ext_.dims(); }
  index_t extent(std::size_t i) const { return dims()[i]; }
  cudaStream_t stream() const { return stream_; }

  void zero() {
    if (n_)
      gpu::check(cudaMemsetAsync(p_, 0, n_ * sizeof(T), gpu::current_stream()), "cudaMemsetAsync");
  }
  // The leaf an expression reads this tensor through.
  expr::device_view<T, S> node() const { return {{}, p_, extents_holder<S>(dims())}; }

  // Host -> device, into this tensor's storage (extents must match).
  void copy_from(const tensor<T, S>& h) {
    require_same_extents(h.dims(), "copy_from");
    if (n_)
      gpu::check(cudaMemcpyAsync(p_, h.data(), n_ * sizeof(T), cudaMemcpyHostToDevice,
                                 gpu::current_stream()),
                 "cudaMemcpyAsync(host to device)");
  }
  // Device -> host; waits for the copy (and so for the work before it on the stream).
  void copy_to(tensor<T, S>& h) const {
    if constexpr (!S::is_static)
      if (h.dims() != dims())
        h.resize(dims(), false);
    if (n_) {
      gpu::check(cudaMemcpyAsync(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost,
                                 gpu::current_stream()),
                 "cudaMemcpyAsync(device to host)");
      gpu::synchronize();
    }
  }
  tensor<T, S> to(host_device) const {
    tensor<T, S> h;
    copy_to(h);
    return h;
  }
  device_tensor to(cuda_device) const { return *this; }

  void swap(device_tensor& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    std::swap(ext_, o.ext_);
    std::swap(stream_, o.stream_);
  }

 private:
  static void check_extents(const dims_t<rank>& d) {
    for (std::size_t i = 0; i < rank; ++i)
      if (S::static_extents[i] != dyn && S::static_extents[i] != d[i]) {
        detail::message msg;
        msg << "fg::device_tensor: extent " << index_t(i) << " must be " << S::static_extents[i]
            << ", was given " << d[i];
        raise_shape_error(msg.c_str());
      }
  }
  void require_same_extents(const dims_t<rank>& d, const char* what) const {
    if (d != dims()) {
      detail::message msg;
      msg << "fg::device_tensor::" << what << "(): the host tensor is " << d
          << ", the device tensor is " << dims();
      raise_shape_error(msg.c_str());
    }
  }
  void copy_device(const T* src) {
    if (n_)
      gpu::check(
          cudaMemcpyAsync(p_, src, n_ * sizeof(T), cudaMemcpyDeviceToDevice, gpu::current_stream()),
          "cudaMemcpyAsync(device to device)");
  }

  T* p_ = nullptr;
  index_t n_ = 0;
  [[no_unique_address]] extents_holder<S> ext_{};
  cudaStream_t stream_ = nullptr;
};

#if !defined(__CUDACC__)
namespace gpu::detail {
template <class T, class S, class E> void assign(device_tensor<T, S>&, const E&) {
  static_assert(sizeof(E) == 0,
                "fg::device_tensor = expression: device kernels are compiled by nvcc; evaluate "
                "device expressions in a .cu file (include <fusegrad/cuda.hpp>)");
}
}  // namespace gpu::detail
#endif

// tensor::to(fg::cuda) lands here.
template <class T, class S> device_tensor<T, S> transfer(const tensor<T, S>& h, cuda_device) {
  device_tensor<T, S> d(uninitialized, h.dims());
  d.copy_from(h);
  return d;
}

}  // namespace fg

FG_DIAGNOSTICS_END
