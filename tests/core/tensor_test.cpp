// fg::tensor storage: static tensors are constant-initialised zeros.
#include "../testing.hpp"

namespace {
// constinit: zero at compile time, no dynamic initialiser (firmware puts such tensors in .bss).
constinit fg::tensor<float, fg::shape<4, 4>> table;

// A namespace-scope tensor filled by an initialiser that runs before its own definition is
// reached: a dynamic zero-fill of its own would wipe what was written.
extern fg::tensor<float, fg::shape<4>> lut;
const bool lut_filled = [] {
  for (fg::index_t i = 0; i < 4; ++i)
    lut[i] = float(i + 1);
  return true;
}();
fg::tensor<float, fg::shape<4>> lut;
}  // namespace

TEST_CASE("static tensors are constant-initialised zeros") {
  CHECK(table(3, 3) == 0.0f);
  CHECK(lut_filled);
  CHECK(lut[3] == 4.0f);
  fg::tensor<double, fg::shape<3>> local;
  CHECK(local[2] == 0.0);
}
