// libFuzzer target: arbitrary bytes as a safetensors file. Refusing them with fg::io::format_error
// is the expected outcome; a crash, a sanitizer report or another exception type is a bug. Every
// tensor that loads is read whole (the reads past the end the overflow bug once allowed).
#include "fuzz_target.hpp"

#include <fusegrad/io/safetensors.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fg::fuzz::loaded_or_refused([&] {
    for (const auto& [name, v] : fg::io::parse_safetensors(fg::fuzz::bytes(data, size), "fuzz"))
      fg::fuzz::touch(v);
  });
  return 0;
}
