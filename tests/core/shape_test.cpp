#include "../testing.hpp"

using namespace fg;

static_assert(std::is_same_v<broadcast_t<shape<3, 1>, shape<4>>, shape<3, 4>>);
static_assert(std::is_same_v<broadcast_t<shape<dyn, 4>, shape<4>>, shape<dyn, 4>>);
static_assert(std::is_same_v<broadcast_t<shape<>, shape<2, 2>>, shape<2, 2>>);
static_assert(!broadcastable_v<shape<3, 4>, shape<5>>);
static_assert(shape<2, 3, 4>::static_size == 24);
static_assert(sizeof(tensor<float, shape<4>>) == 16 || sizeof(tensor<float, shape<4>>) == 32 ||
                  sizeof(tensor<float, shape<4>>) == 64,
              "static tensors hold their elements inline, extents cost nothing");
static_assert(std::is_trivially_copyable_v<decltype(std::declval<tensor<float, shape<4>>&>() *
                                                        std::declval<tensor<float, shape<4>>&>() +
                                                    1.0f)>,
              "expressions over tensors are trivially copyable (kernel arguments)");

TEST_CASE("run-time broadcast mismatch throws fg::shape_error naming both shapes") {
  tensor<float, shape<dyn, dyn>> a(dims_t<2>{3, 4}), b(dims_t<2>{3, 5});
  CHECK_THROWS_WITH_AS(a + b, "fg::add(): cannot broadcast shapes [3, 4] and [3, 5]", shape_error);
  tensor<float, shape<dyn>> c(dims_t<1>{7});
  tensor<float, shape<4>> d;
  CHECK_THROWS_WITH_AS(exp(c) * d, "fg::mul(): cannot broadcast shapes [7] and [4]", shape_error);
}

TEST_CASE("dyn tensors: extents / resize / element access") {
  tensor<double, shape<dyn, 3>> t(dims_t<2>{2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(t.extent(0) == 2);
  CHECK(t(1, 2) == 6.0);
  CHECK_THROWS_AS(t.resize({2, 4}), shape_error);
  t.resize({4, 3});
  CHECK(t.size() == 12);
}
