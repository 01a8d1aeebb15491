// expect: reads a device tensor; evaluate it on the device
// A host evaluation of an expression that reads device memory is refused at compile time (the
// host would dereference device addresses).
#include <fusegrad/cuda/thread.hpp>
#include <fusegrad/fusegrad.hpp>

int main() {
  float memory[4] = {};
  const fg::expr::device_view<float, fg::shape<4>> on_device{{}, memory, {}};
  fg::tensor<float, fg::shape<4>> t = on_device * 2.0f;
  return int(t[0]);
}
