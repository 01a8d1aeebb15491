// fg::parallel_for and fg::parallel_reduce (core/parallel.hpp): every index once, results that do
// not depend on the thread count, exceptions that reach the caller, nesting, several callers.
// A *_tsan_test: it runs again under ThreadSanitizer (fork, which TSan does not follow, is in
// parallel_test.cpp).
#include "../testing.hpp"

#include <fusegrad/core/parallel.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

// Sets the thread count for a scope.
struct with_threads {
  int before = fg::get_num_threads();
  explicit with_threads(int n) { fg::set_num_threads(n); }
  ~with_threads() { fg::set_num_threads(before); }
};

double float_sum(const std::vector<float>& x, std::size_t grain) {
  return fg::parallel_reduce(
      0, x.size(), grain, 0.0f,
      [&](std::size_t lo, std::size_t hi) {
        float s = 0;
        for (std::size_t i = lo; i < hi; ++i)
          s += x[i];
        return s;
      },
      [](float a, float b) { return a + b; });
}

}  // namespace

TEST_CASE("parallel / parallel_for runs every index once, at any thread count and grain") {
  for (int threads : {1, 2, 3, 4, 8}) {
    with_threads t(threads);
    CHECK(fg::get_num_threads() == threads);
    for (std::size_t n : {0u, 1u, 7u, 1000u, 100003u})
      for (std::size_t grain : {1u, 64u, 4096u}) {
        std::vector<std::atomic<int>> hits(n);
        std::atomic<int> too_long{0};
        fg::parallel_for(0, n, grain, [&](std::size_t lo, std::size_t hi) {
          too_long += hi - lo > grain;
          for (std::size_t i = lo; i < hi; ++i)
            hits[i].fetch_add(1, std::memory_order_relaxed);
        });
        std::size_t wrong = 0;
        for (auto& h : hits)
          wrong += h.load() != 1;
        CHECK(wrong == 0);
        CHECK(too_long == 0);
      }
  }
}

TEST_CASE("parallel / the work is shared: chunks run on more than one thread") {
  with_threads t(2);
  std::mutex m;
  std::set<std::thread::id> ran_on;
  fg::parallel_for(0, 200, 1, [&](std::size_t, std::size_t) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    const std::lock_guard<std::mutex> lock(m);
    ran_on.insert(std::this_thread::get_id());
  });
  CHECK(ran_on.size() == 2);
}

TEST_CASE("parallel / parallel_reduce is bit-identical for any thread count") {
  std::vector<float> x(1 << 18);
  for (std::size_t i = 0; i < x.size(); ++i)  // terms of mixed magnitude: order matters
    x[i] = float(std::sin(double(i)) * std::pow(10.0, double(i % 7) - 3));
  with_threads one(1);
  const float serial = float_sum(x, 1000);
  for (int threads : {2, 3, 4, 8}) {
    fg::set_num_threads(threads);
    for (int round = 0; round < 5; ++round)
      CHECK(float_sum(x, 1000) == serial);
  }
  // The grain is the one thing the result depends on: it fixes the chunks.
  CHECK(float_sum(x, 1000) != float_sum(x, 777));
}

TEST_CASE("parallel / an exception in a chunk reaches the caller, and the pool goes on") {
  with_threads t(4);
  for (int round = 0; round < 20; ++round) {
    CHECK_THROWS_WITH_AS(fg::parallel_for(0, 1000, 1,
                                          [&](std::size_t lo, std::size_t) {
                                            if (lo == 500)
                                              throw std::runtime_error("chunk 500 failed");
                                          }),
                         "chunk 500 failed", std::runtime_error);
    std::atomic<std::size_t> total{0};
    fg::parallel_for(0, 1000, 10, [&](std::size_t lo, std::size_t hi) { total += hi - lo; });
    CHECK(total == 1000);
  }
}

TEST_CASE("parallel / nested calls and calls from several threads at once are correct") {
  with_threads t(3);
  std::vector<std::atomic<int>> hits(64 * 64);
  fg::parallel_for(0, 64, 1, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i)
      fg::parallel_for(0, 64, 8, [&](std::size_t j0, std::size_t j1) {
        for (std::size_t j = j0; j < j1; ++j)
          hits[i * 64 + j]++;
      });
  });
  std::size_t wrong = 0;
  for (auto& h : hits)
    wrong += h.load() != 1;
  CHECK(wrong == 0);

  std::vector<float> x(100000, 0.5f);
  std::vector<std::thread> callers;
  std::atomic<int> bad{0};
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int r = 0; r < 50; ++r)
        bad += float_sum(x, 512) != 50000.0f;
    });
  for (auto& c : callers)
    c.join();
  CHECK(bad == 0);
}
