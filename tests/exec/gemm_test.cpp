// The blocked GEMM against a triple loop, over sizes around the register and cache tiles,
// with transposed (strided) operands.
#include "../testing.hpp"

#include <vector>

using namespace fg;

template <class T> void check_gemm(index_t m, index_t n, index_t k, bool ta, bool tb) {
  std::vector<T> a(m * k), b(k * n), c(m * n, T(7)), ref(m * n);
  std::uniform_real_distribution<double> u(-1, 1);
  for (auto& v : a)
    v = T(u(fg::testing::rng()));
  for (auto& v : b)
    v = T(u(fg::testing::rng()));
  // A(i, p) and B(p, j) through strides: transposed storage when asked.
  auto A = [&](index_t i, index_t p) { return ta ? a[p * m + i] : a[i * k + p]; };
  auto B = [&](index_t p, index_t j) { return tb ? b[j * k + p] : b[p * n + j]; };
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      double s = 0;
      for (index_t p = 0; p < k; ++p)
        s += double(A(i, p)) * double(B(p, j));
      ref[i * n + j] = T(s);
    }
  std::vector<T> ws(exec::gemm_blocking<T>::workspace(m, n, k));
  exec::gemm<T>(m, n, k, a.data(), ta ? 1 : std::ptrdiff_t(k), ta ? std::ptrdiff_t(m) : 1, b.data(),
                tb ? 1 : std::ptrdiff_t(n), tb ? std::ptrdiff_t(k) : 1, c.data(), n, false,
                ws.data());
  for (index_t i = 0; i < m * n; ++i)
    REQUIRE(double(c[i]) == doctest::Approx(double(ref[i])).epsilon(1e-4).scale(1.0));
}

TEST_CASE("gemm matches a triple loop across tile edges and transposes") {
  const index_t sizes[] = {1, 2, 5, 6, 7, 16, 17, 33, 97, 130, 300};  // n = 1: matrix-vector
  for (index_t m : {index_t(1), index_t(7), index_t(97), index_t(130)})
    for (index_t n : sizes)
      for (index_t k : {index_t(1), index_t(17), index_t(300)}) {
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(k);
        check_gemm<float>(m, n, k, false, false);
        check_gemm<double>(m, n, k, m % 2 == 1, n % 2 == 0);
        check_gemm<float>(m, n, k, true, true);
      }
  // Matrix-vector shapes in every storage order (the gemv path).
  for (index_t len : {index_t(1), index_t(9), index_t(40)})
    for (int t = 0; t < 4; ++t) {
      check_gemm<double>(len, 1, 37, t & 1, t & 2);
      check_gemm<double>(1, len, 37, t & 1, t & 2);
    }
}
