// The index math of broadcasting on the device (cuda/broadcast.hpp), run on the host: spreading
// a small tensor by broadcast::source, and summing back by broadcast::member, give what the host
// path gives, and every big element is summed into exactly one small one.
#include "../dynamic/dynamic_testing.hpp"

#include <fusegrad/cuda/broadcast.hpp>

#include <vector>

using namespace fg;

namespace {

// small read at `big` as a device thread reads it (strides st), against the host's spread and
// fold.
void check_map(const extents& small, const extents& big, const dynamic::strides& st) {
  CAPTURE(small.str());
  CAPTURE(big.str());
  const gpu::broadcast::map m = gpu::broadcast::make(big, st);
  REQUIRE(m.small_size == small.size());
  REQUIRE(m.big_size == big.size());
  var x = fg::testing::leaf(small, -1, 1), g = fg::testing::leaf(big, -1, 1);
  const var spread = dynamic::spread(x, big, st), fold = dynamic::fold(g, small, st);
  for (index_t i = 0; i < m.big_size; ++i)
    CHECK(x.at(gpu::broadcast::source(m, i)) == spread.at(i));
  std::vector<int> seen(std::size_t(m.big_size), 0);
  for (index_t j = 0; j < m.small_size; ++j) {
    double acc = 0;
    for (index_t r = 0; r < m.folded; ++r) {
      const index_t i = gpu::broadcast::member(m, j, r);
      REQUIRE(i < m.big_size);
      CHECK(gpu::broadcast::source(m, i) == j);  // member() lists exactly the readers of j
      ++seen[std::size_t(i)];
      acc += g.at(i);
    }
    CHECK(acc == doctest::Approx(fold.at(j)).epsilon(1e-12));
  }
  for (int s : seen)
    CHECK(s == 1);
}

}  // namespace

TEST_CASE("cuda broadcast: a device thread's indices, run on the host, match the host path") {
  // Broadcasting operands (a bias row, a column, a lower rank, a number, none at all).
  for (const auto& [small, big] : std::vector<std::pair<extents, extents>>{{{7}, {5, 7}},
                                                                           {{5, 1}, {5, 7}},
                                                                           {{1, 3, 1}, {2, 3, 4}},
                                                                           {{3, 1}, {2, 3, 4}},
                                                                           {{}, {4, 3}},
                                                                           {{1}, {6}},
                                                                           {{2, 3}, {2, 3}},
                                                                           {{}, {}},
                                                                           {{4}, {0, 4}}})
    check_map(small, big, dynamic::broadcast_strides(small, big));
  // Sums over axes, as fg::sum(x, axes) plans them (the kept axes' strides), over extents of 1
  // and 0 too.
  for (const extents& x : {extents{3, 4, 5}, extents{3, 1, 5}, extents{3, 0, 5}, extents{0, 4}})
    for (const auto& axes : std::vector<std::array<bool, max_rank>>{{true},
                                                                    {false, true},
                                                                    {false, false, true},
                                                                    {true, false, true},
                                                                    {true, true, true}}) {
      const auto p = dynamic::plan_reduction(x, axes, false);
      check_map(p.out, x, p.from_input);
    }
}
