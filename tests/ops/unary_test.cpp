// The op table for ops/unary.hpp: every unary op, value and gradient.
#include "op_table.hpp"

using namespace fg;
using namespace fg::testing;

TEST_CASE("every unary op: value and gradient / static and dyn extents") {
  for_each_op(ops::unary_ops{}, []<class Op>() {
    SUBCASE(Op::name) {
      check_unary<Op, S>();
      check_unary<Op, D>();
    }
  });
}
