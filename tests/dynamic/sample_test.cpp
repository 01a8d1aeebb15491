// multinomial: draws follow the weights (with and without replacement), reproducible from a
// seed, and bad weights are refused in words.
#include "dynamic_testing.hpp"

#include <fusegrad/dynamic/sample.hpp>

#include <cmath>
#include <cstdint>
#include <set>
#include <vector>

using namespace fg;

TEST_CASE("multinomial / with replacement: frequencies follow the weights") {
  generator g(11);
  const var w = var::from({1, 0, 3, 6}, {4});  // not normalised
  const index_t n = 20000;
  const var s = multinomial(w, n, true, g);
  CHECK(s.dtype() == dtype::int64);
  CHECK(s.shape() == extents{n});
  std::vector<double> count(4);
  for (index_t i = 0; i < n; ++i)
    ++count[std::size_t(s.at<std::int64_t>(sindex_t(i)))];
  CHECK(count[1] == 0.0);  // a zero weight is never drawn
  for (std::size_t c : {0u, 2u, 3u}) {
    const double p = w.at(sindex_t(c)) / 10.0, sd = std::sqrt(n * p * (1 - p));
    CHECK(std::abs(count[c] - n * p) < 5 * sd);
  }
}

TEST_CASE("multinomial / without replacement: distinct categories, rows independent") {
  generator g(3);
  const var w = var::from({1, 1, 1, 1, 1, 0, 5, 5, 5, 5}, {2, 5});
  const var s = multinomial(w, 4, false, g);
  CHECK(s.shape() == extents{2, 4});
  for (sindex_t r = 0; r < 2; ++r) {
    std::set<std::int64_t> seen;
    for (sindex_t j = 0; j < 4; ++j)
      seen.insert(s.at<std::int64_t>({r, j}));
    CHECK(seen.size() == 4);
    if (r == 1)
      CHECK(seen.count(0) == 0);  // the zero-weight category
  }
  // The first draw without replacement follows the weights as with replacement.
  std::vector<double> first(3);
  const var w3 = var::from({1, 2, 7}, {3});
  for (int i = 0; i < 4000; ++i)
    ++first[std::size_t(multinomial(w3, 2, false, g).at<std::int64_t>(0))];
  CHECK(std::abs(first[2] / 4000 - 0.7) < 0.04);
  // The default generator repeats after manual_seed.
  manual_seed(5);
  const var a = multinomial(w3, 6, true);
  manual_seed(5);
  const var b = multinomial(w3, 6, true);
  for (sindex_t i = 0; i < 6; ++i)
    CHECK(a.at<std::int64_t>(i) == b.at<std::int64_t>(i));
}

TEST_CASE("multinomial / bad weights and impossible requests are refused in words") {
  generator g(1);
  CHECK_THROWS_WITH_AS(multinomial(var::from({1, -1}, {2}), 1, true, g),
                       "fg::multinomial(): row 0 holds -1.000000 at category 1; weights must be "
                       "finite and non-negative",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(multinomial(var::zeros({2, 3}), 1, true, g),
                       "fg::multinomial(): row 0 has no positive weight to draw from",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(multinomial(var::from({1, 0, 2}, {3}), 3, false, g),
                       "fg::multinomial(): 3 draws without replacement from row 0, which has "
                       "only 2 categories of non-zero weight",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(multinomial(var::zeros({2, 2, 2}), 1, true, g),
                       "fg::multinomial(): the weights are [2, 2, 2]; they must be [categories] "
                       "or [rows, categories]",
                       shape_error);
  CHECK_THROWS_AS(multinomial(var::from({1, 2}, {2}, dtype::int64), 1, true, g), dtype_error);
}
