// fg::generator: reachable from <fusegrad/fusegrad.hpp> alone (the README's static examples seed
// one), the same stream for the same seed, and a state that restores the stream.
#include <fusegrad/fusegrad.hpp>

#include "../testing.hpp"

TEST_CASE("generator / the umbrella header brings it, and its state restores its stream") {
  fg::generator a(42), b(42);
  for (int i = 0; i < 5; ++i)
    CHECK(a.next() == b.next());
  const std::uint64_t saved = a.state();
  const float u = a.uniform(-1.0f, 1.0f);
  CHECK(u >= -1.0f);
  CHECK(u < 1.0f);
  a.next();
  a.set_state(saved);
  CHECK(a.uniform(-1.0f, 1.0f) == u);
}
