// libFuzzer target: arbitrary bytes as a (gunzipped) IDX file, read as float32 and as int64
// (see safetensors_fuzz.cpp for the contract).
#include "fuzz_target.hpp"

#include <fusegrad/io/idx.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const unsigned char> b(data, size);
  fg::fuzz::loaded_or_refused([&] {
    fg::fuzz::touch(fg::io::parse_idx(b, "fuzz", fg::dtype::float32));
    fg::fuzz::touch(fg::io::parse_idx(b, "fuzz", fg::dtype::int64));
  });
  return 0;
}
