// libFuzzer target: arbitrary bytes as an .npy file (see safetensors_fuzz.cpp for the contract).
#include "fuzz_target.hpp"

#include <fusegrad/io/npy.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fg::fuzz::loaded_or_refused(
      [&] { fg::fuzz::touch(fg::io::parse_npy(fg::fuzz::bytes(data, size), "fuzz")); });
  return 0;
}
