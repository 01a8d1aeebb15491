// fusegrad/cuda/runtime.hpp — the CUDA runtime as fusegrad uses it: checked calls, the current
// stream, device queries and a launch counter
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/error.hpp"
#include "fusegrad/core/message.hpp"

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

FG_DIAGNOSTICS_BEGIN

namespace fg {

#if FG_HAS_EXCEPTIONS
// Thrown when a CUDA call fails; what() names the call and CUDA's own error name and string.
class cuda_error : public std::runtime_error {
 public:
  cuda_error(const char* message, cudaError_t code) : std::runtime_error(message), code_(code) {}
  cudaError_t code() const noexcept { return code_; }

 private:
  cudaError_t code_;
};
#endif

namespace gpu {

namespace detail {
// "fg::gpu: <call> failed: <why>" as fg::cuda_error, or to fg::error_handler() when built without
// exceptions: the one way every CUDA and cuBLAS failure is reported.
[[noreturn]] inline void raise_failure(const char* call, const char* why, const char* detail,
                                       cudaError_t code) {
  fg::detail::message msg;
  msg << "fg::gpu: " << call << " failed: " << why;
  if (detail)
    msg << " (" << detail << ")";
#if FG_HAS_EXCEPTIONS
  throw cuda_error(msg.c_str(), code);
#else
  (void)code;
  error_handler()(msg.c_str());
  fg::detail::stop();
#endif
}
}  // namespace detail

// Every CUDA call fusegrad makes goes through check(): a failure throws fg::cuda_error (or, built
// without exceptions, reaches fg::error_handler()) naming the call.
inline void check(cudaError_t status, const char* call) {
  if (status == cudaSuccess)
    return;
  (void)cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  detail::raise_failure(call, cudaGetErrorName(status), cudaGetErrorString(status), status);
}

// The number of usable CUDA devices; 0 without a driver or a device (never throws).
inline int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();
      n = 0;
    }
    return n;
  }();
  return count;
}
inline bool available() {
  return device_count() > 0;
}

// The stream fusegrad's device work goes on, per host thread (the default stream unless a
// stream_guard says otherwise), as PyTorch's current stream.
inline cudaStream_t& current_stream_slot() {
  thread_local cudaStream_t stream = nullptr;
  return stream;
}
inline cudaStream_t current_stream() {
  return current_stream_slot();
}
// Puts the evaluations of its scope on the user's stream.
class stream_guard {
 public:
  explicit stream_guard(cudaStream_t s) : previous_(current_stream_slot()) {
    current_stream_slot() = s;
  }
  ~stream_guard() { current_stream_slot() = previous_; }
  stream_guard(const stream_guard&) = delete;
  stream_guard& operator=(const stream_guard&) = delete;

 private:
  cudaStream_t previous_;
};
// Waits for the current stream's work; reports an error a kernel raised asynchronously.
inline void synchronize() {
  check(cudaStreamSynchronize(current_stream()), "cudaStreamSynchronize");
}

// Kernels fusegrad has launched in this process: how the tests prove a pass is one launch.
inline std::atomic<std::uint64_t>& launch_counter() {
  static std::atomic<std::uint64_t> n{0};
  return n;
}
inline std::uint64_t launches() {
  return launch_counter().load();
}

inline int current_device() {
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  return dev;
}

// Streaming multiprocessors of the current device, for sizing grids (queried once per device).
inline int multiprocessors() {
  constexpr int max_devices = 64;
  static std::atomic<int> known[max_devices] = {};
  const int dev = current_device();
  int sms = dev < max_devices ? known[dev].load(std::memory_order_relaxed) : 0;
  if (!sms) {
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev),
          "cudaDeviceGetAttribute(cudaDevAttrMultiProcessorCount)");
    if (dev < max_devices)
      known[dev].store(sms, std::memory_order_relaxed);
  }
  return sms;
}

namespace detail {
// The default pool of cudaMallocAsync gives memory back to the system at every synchronisation
// (release threshold 0), and fusegrad synchronises whenever a value comes back to the host: a
// training loop would pay for fresh memory every step. Keep it, as PyTorch's caching allocator
// does; once per device.
inline void keep_pool_memory() {
  constexpr int max_devices = 64;
  static std::atomic<bool> done[max_devices] = {};
  const int dev = current_device();
  if (dev >= max_devices || done[dev].exchange(true))
    return;
  cudaMemPool_t pool = nullptr;
  check(cudaDeviceGetDefaultMemPool(&pool, dev), "cudaDeviceGetDefaultMemPool");
  std::uint64_t keep = ~std::uint64_t(0);
  check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep),
        "cudaMemPoolSetAttribute(cudaMemPoolAttrReleaseThreshold)");
}

// Device memory from that pool, ordered on `stream` (cudaMallocAsync), checked.
inline void* stream_allocate(std::size_t bytes, cudaStream_t stream) {
  keep_pool_memory();
  void* p = nullptr;
  check(cudaMallocAsync(&p, bytes, stream), "cudaMallocAsync");
  return p;
}
// Gives p back to that pool on `stream`. Called from destructors, which cannot report: a failure
// is cleared, not left for the next launch's check to blame on its kernel.
inline void stream_free(void* p, cudaStream_t stream) noexcept {
  if (cudaFreeAsync(p, stream) != cudaSuccess)
    (void)cudaGetLastError();
}
}  // namespace detail

}  // namespace gpu
}  // namespace fg

FG_DIAGNOSTICS_END
