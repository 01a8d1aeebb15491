// The GEMM on several threads (exec/gemm.hpp): bitwise the same C as on one, for any thread count
// (3 and 4 oversubscribe this project's 2 vCPUs on purpose), over shapes that cut at tile edges,
// transposes, and accumulation into C. A *_tsan_test: it runs again under ThreadSanitizer.
#include "../testing.hpp"

#include <fusegrad/core/parallel.hpp>

#include <vector>

using namespace fg;

namespace {

template <class T>
std::vector<T> product(index_t m, index_t n, index_t k, const std::vector<T>& a,
                       const std::vector<T>& b, bool ta, bool tb, bool add, int threads) {
  const int before = get_num_threads();
  set_num_threads(threads);
  std::vector<T> c(m * n);
  for (index_t i = 0; i < c.size(); ++i)
    c[i] = T(double(i % 13) / 8);
  std::vector<T> ws(exec::gemm_blocking<T>::workspace(m, n, k));
  exec::gemm<T>(m, n, k, a.data(), ta ? 1 : std::ptrdiff_t(k), ta ? std::ptrdiff_t(m) : 1, b.data(),
                tb ? 1 : std::ptrdiff_t(n), tb ? std::ptrdiff_t(k) : 1, c.data(), n, add,
                ws.data());
  set_num_threads(before);
  return c;
}

template <class T> void same_at_every_thread_count(index_t m, index_t n, index_t k, int variant) {
  std::vector<T> a(m * k), b(k * n);
  std::uniform_real_distribution<double> u(-1, 1);
  for (auto& v : a)
    v = T(u(fg::testing::rng()));
  for (auto& v : b)
    v = T(u(fg::testing::rng()));
  const bool ta = variant & 1, tb = variant & 2, add = variant & 4;
  const std::vector<T> one = product(m, n, k, a, b, ta, tb, add, 1);
  for (int threads : {2, 3, 4}) {
    CAPTURE(threads);
    const std::vector<T> many = product(m, n, k, a, b, ta, tb, add, threads);
    index_t differ = 0;
    for (index_t i = 0; i < one.size(); ++i)
      differ += one[i] != many[i];  // bitwise, not approximately
    CHECK(differ == 0);
  }
}

}  // namespace

TEST_CASE("gemm threads / bitwise the same product at 1, 2, 3 and 4 threads") {
  // Above and below the size that is cut, cut by rows (tall) or by columns (wide), ragged
  // edges, k across the KC block.
  const index_t shapes[][3] = {{64, 64, 64},   {65, 63, 64},  {300, 40, 257}, {40, 300, 257},
                               {130, 130, 17}, {7, 1000, 50}, {1000, 7, 50},  {97, 513, 300}};
  for (const auto& s : shapes)
    for (int variant = 0; variant < 8; ++variant) {
      CAPTURE(s[0]);
      CAPTURE(s[1]);
      CAPTURE(s[2]);
      CAPTURE(variant);
      same_at_every_thread_count<float>(s[0], s[1], s[2], variant);
      if (variant % 3 == 0)
        same_at_every_thread_count<double>(s[0], s[1], s[2], variant);
    }
}
