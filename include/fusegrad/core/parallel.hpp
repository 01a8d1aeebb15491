// fusegrad/core/parallel.hpp — intra-op parallelism: fg::parallel_for, a deterministic
// fg::parallel_reduce, and the thread count (fg::set_num_threads / fg::get_num_threads)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/config.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>

// Threads where the platform has them; FUSEGRAD_NO_THREADS (CMake: -DFUSEGRAD_THREADS=OFF) and
// firmware without a heap run everything on the calling thread, with the same results.
#if !defined(FUSEGRAD_NO_THREADS) && FG_HAS_HEAP && !defined(__CUDA_ARCH__) && \
    __has_include(<pthread.h>)
#define FG_HAS_THREADS 1
#else
#define FG_HAS_THREADS 0
#endif

#if FG_HAS_THREADS
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sched.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#endif

FG_DIAGNOSTICS_BEGIN

namespace fg {

#if FG_HAS_THREADS
namespace detail {

// The threads fusegrad may use: FUSEGRAD_NUM_THREADS, else OMP_NUM_THREADS, else the CPUs this
// process may run on (its affinity mask, as `taskset` or a container's cpuset sets it, not the
// machine's count).
inline int default_thread_count() {
  for (const char* name : {"FUSEGRAD_NUM_THREADS", "OMP_NUM_THREADS"})
    if (const char* v = std::getenv(name)) {
      char* end = nullptr;
      const long n = std::strtol(v, &end, 10);
      if (end != v && n >= 1)
        return int(std::min(n, 1024L));
    }
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    return std::max(1, CPU_COUNT(&set));
#endif
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// The pool behind parallel_for: `threads - 1` workers, the caller being the last one.
//
// Why a pool of its own rather than OpenMP or oneTBB: docs/threads.md has the measurements. In
// short: a job's chunks are claimed one at a time from a shared counter, so a worker the OS has
// not scheduled yet claims nothing and the caller does the work instead of waiting for it (the
// collapse of spinning OpenMP teams on a busy core); workers spin briefly after a job (the next op
// of a training step follows within microseconds) and then sleep in the kernel; no consumer flag
// (-fopenmp), no second runtime in the process, nothing to link, and safe across fork().
class thread_pool {
 public:
  static thread_pool& instance() {
    static thread_pool pool;
    return pool;
  }

  int threads() const { return threads_.load(std::memory_order_relaxed); }
  void set_threads(int n) {
    n = std::max(1, n);
    const std::lock_guard<std::mutex> job(job_mutex_);  // not while a job runs
    if (n == threads())
      return;  // keep the workers: a loop may set the count it already has each step
    stop_workers();
    threads_.store(n, std::memory_order_relaxed);
  }

  // Runs body(k) for k in [0, chunks), on up to threads() threads; returns when all have run.
  // The first exception a chunk throws stops the chunks not yet started and is rethrown here.
  // Nested calls, and calls from a second thread while a job runs, run on the calling thread.
  template <class Body> void run(std::size_t chunks, Body& body) {
    std::unique_lock<std::mutex> job(job_mutex_, std::try_to_lock);
    if (chunks <= 1 || threads() <= 1 || in_job() || !job.owns_lock()) {
      for (std::size_t k = 0; k < chunks; ++k)
        body(k);
      return;
    }
    start_workers();
    body_ = &body;
    call_ = [](void* b, std::size_t k) { (*static_cast<Body*>(b))(k); };
    chunks_ = chunks;
    next_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    failed_.store(false, std::memory_order_relaxed);
    const unsigned gen = generation_.load(std::memory_order_relaxed) + 1;
    open_.store(gen, std::memory_order_release);
    // seq_cst on both sides (a worker counts itself in sleeping_ and then waits on generation_),
    // so either it sees the new generation or this sees it asleep and wakes it.
    generation_.store(gen, std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_seq_cst))
      generation_.notify_all();
    in_job() = true;
    work();
    in_job() = false;
    open_.store(0, std::memory_order_seq_cst);  // no worker enters from now on
    // A worker still in a chunk may share this core (the other one busy): after a short spin,
    // give it the CPU.
    for (int i = 0; inside_.load(std::memory_order_seq_cst); ++i)
      if (i < spin_rounds)
        cpu_relax();
      else
        std::this_thread::yield();
    if (error_)
      std::rethrow_exception(error_);
  }

  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() { stop_workers(); }

 private:
  thread_pool() : threads_(default_thread_count()) {
    // A forked child has this pool's memory but none of its threads: it starts its own.
    pthread_atfork(nullptr, nullptr, [] { instance().forget_workers_after_fork(); });
  }

  static bool& in_job() {
    thread_local bool inside = false;
    return inside;
  }

  // Claims chunks until none are left (or one has thrown).
  void work() {
    for (;;) {
      const std::size_t k = next_.fetch_add(1, std::memory_order_relaxed);
      if (k >= chunks_ || failed_.load(std::memory_order_relaxed))
        return;
#if FG_HAS_EXCEPTIONS
      try {
        call_(body_, k);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_)
          error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
      }
#else
      call_(body_, k);
#endif
    }
  }

  void worker_loop(unsigned seen) {
    in_job() = true;  // a parallel_for inside a chunk runs serially
    for (;;) {
      // Spin a little for the next job, then sleep until one is posted.
      unsigned gen = generation_.load(std::memory_order_acquire);
      for (int i = 0; gen == seen && i < spin_rounds; ++i) {
        cpu_relax();
        gen = generation_.load(std::memory_order_acquire);
      }
      while (gen == seen) {
        sleeping_.fetch_add(1, std::memory_order_seq_cst);
        generation_.wait(seen, std::memory_order_seq_cst);
        sleeping_.fetch_sub(1, std::memory_order_seq_cst);
        gen = generation_.load(std::memory_order_acquire);
      }
      seen = gen;
      if (stopping_.load(std::memory_order_acquire))
        return;
      inside_.fetch_add(1, std::memory_order_seq_cst);
      if (open_.load(std::memory_order_seq_cst) == gen)  // still the job that woke us
        work();
      inside_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }

  void start_workers() {
    const std::size_t want = std::size_t(threads() - 1);
    while (workers_.size() < want) {
      const unsigned seen = generation_.load(std::memory_order_relaxed);
      workers_.emplace_back([this, seen] { worker_loop(seen); });
    }
  }
  void stop_workers() {
    if (workers_.empty())
      return;
    stopping_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_seq_cst);
    generation_.notify_all();
    for (std::thread& t : workers_)
      t.join();
    workers_.clear();
    stopping_.store(false, std::memory_order_relaxed);
  }
  void forget_workers_after_fork() {
    // The workers do not exist in the child: their handles are left unjoined, on purpose
    // (joining or detaching a thread that is not there fails).
    static_cast<void>(new std::vector<std::thread>(std::move(workers_)));
    workers_.clear();
    new (&job_mutex_) std::mutex;  // a parent's job may have held them
    new (&error_mutex_) std::mutex;
    inside_.store(0);
    sleeping_.store(0);
    open_.store(0);
  }

  // About 20 µs of pause instructions: longer than the gap between two ops of a step, far
  // shorter than a scheduler tick, so an idle pool costs nothing measurable.
  static constexpr int spin_rounds = 2000;

  std::atomic<int> threads_;
  std::vector<std::thread> workers_;
  std::mutex job_mutex_;                 // one job at a time
  std::atomic<unsigned> generation_{0};  // bumped for each job (and to stop)
  std::atomic<unsigned> open_{0};        // the generation of the job workers may join, or 0
  std::atomic<int> inside_{0};           // workers inside a job
  std::atomic<int> sleeping_{0};         // workers asleep in generation_.wait
  std::atomic<bool> stopping_{false};
  void* body_ = nullptr;
  void (*call_)(void*, std::size_t) = nullptr;
  std::size_t chunks_ = 0;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> failed_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace detail

// The number of threads fusegrad's ops use (default: see detail::default_thread_count).
inline int get_num_threads() {
  return detail::thread_pool::instance().threads();
}
// Sets it (at least 1; 1: everything on the calling thread). Results do not depend on it.
inline void set_num_threads(int n) {
  detail::thread_pool::instance().set_threads(n);
}
#else
inline int get_num_threads() {
  return 1;
}
inline void set_num_threads(int) {}
#endif

namespace detail {
// How the library's own loops over n elements are cut (the static path's passes, the dynamic
// path's reductions and broadcasts): up to serial_elements, one chunk on the calling thread
// (waking a worker costs a few microseconds, what such a loop takes in all); beyond, chunks of
// at least 4096 elements (a chunk's fixed cost, about 0.1 us, stays under 2% of the cheapest
// loop's), else a 64th of the loop, so that chunks spread evenly over any thread count up to 16
// (W1 at 1e5: 25 chunks, 13 and 12 on 2 threads; a fixed 16384 gave 7, split 4 and 3). The cut
// depends on n only, never on the thread count: what is summed per chunk and combined in chunk
// order gives the same bits for any of them.
inline constexpr std::size_t serial_elements = 32768;
inline std::size_t chunk_elements(std::size_t n) {
  if (n <= serial_elements)
    return std::max<std::size_t>(n, 1);
  return std::max<std::size_t>(4096, (n / 64 + 63) / 64 * 64);
}
// Indices per chunk, when each index covers `per` elements of a loop over n elements.
inline std::size_t chunk_indices(std::size_t n, std::size_t per) {
  return std::max<std::size_t>(1, chunk_elements(n) / std::max<std::size_t>(per, 1));
}
}  // namespace detail

// Calls f(lo, hi) over [begin, end) cut into chunks of `grain` indices (the last one shorter),
// on up to get_num_threads() threads, and returns once every chunk has run. f must write only
// what its own indices own; which thread runs a chunk varies, the chunks do not. Ranges of at
// most one grain, nested calls and builds without threads run on the calling thread.
template <class F> void parallel_for(std::size_t begin, std::size_t end, std::size_t grain, F&& f) {
  if (end <= begin)
    return;
  grain = std::max<std::size_t>(grain, 1);
  const std::size_t chunks = (end - begin + grain - 1) / grain;
#if FG_HAS_THREADS
  if (chunks > 1) {
    auto body = [&](std::size_t k) {
      const std::size_t lo = begin + k * grain;
      f(lo, std::min(end, lo + grain));
    };
    detail::thread_pool::instance().run(chunks, body);
    return;
  }
#endif
  (void)chunks;
  f(begin, end);
}

// The reduction of [begin, end): map(lo, hi) gives each chunk's partial value (chunks of `grain`
// indices, as in parallel_for), and the partials are combined left to right, combine(a, b).
// The chunks and the order of combining do not depend on the thread count, so neither does the
// result, bit for bit (a floating-point sum included).
template <class T, class Map, class Combine>
T parallel_reduce(std::size_t begin, std::size_t end, std::size_t grain, T identity, Map&& map,
                  Combine&& combine) {
  if (end <= begin)
    return identity;
  grain = std::max<std::size_t>(grain, 1);
  const std::size_t chunks = (end - begin + grain - 1) / grain;
  if (chunks == 1)
    return combine(std::move(identity), map(begin, end));
#if FG_HAS_THREADS
  auto reduce_in = [&](std::optional<T>* partial) {
    parallel_for(0, chunks, 1, [&](std::size_t k0, std::size_t k1) {
      for (std::size_t k = k0; k < k1; ++k) {
        const std::size_t lo = begin + k * grain;
        partial[k].emplace(map(lo, std::min(end, lo + grain)));
      }
    });
    T total = std::move(identity);
    for (std::size_t k = 0; k < chunks; ++k)
      total = combine(std::move(total), std::move(*partial[k]));
    return total;
  };
  // Up to 64 partials (the most the library's own loops make: detail::chunk_elements) live on
  // the stack, so that a step over large static tensors allocates nothing; more go on the heap.
  constexpr std::size_t on_stack = 64;
  if (chunks <= on_stack) {
    std::optional<T> partial[on_stack];
    return reduce_in(partial);
  }
  std::vector<std::optional<T>> partial(chunks);
  return reduce_in(partial.data());
#else
  T total = std::move(identity);
  for (std::size_t lo = begin; lo < end; lo += grain)
    total = combine(std::move(total), map(lo, std::min(end, lo + grain)));
  return total;
#endif
}

}  // namespace fg

FG_DIAGNOSTICS_END
