// Downstream smoke test: sum(x*x) for x = {1, 2, 3} must be 14, and a safetensors file (whose
// header needs nlohmann-json, a dependency the package must bring) round-trips.
#include <fusegrad/dynamic.hpp>
#include <fusegrad/fusegrad.hpp>
#include <fusegrad/io/safetensors.hpp>

#include <cstdio>
#include <filesystem>

int main() {
  fg::tensor<float, fg::shape<3>> x{1.f, 2.f, 3.f};
  float s = fg::eval(fg::sum(x * x));
  std::printf("consumer: sum(x*x) = %g (expected 14)\n", static_cast<double>(s));
  const std::string path = (std::filesystem::temp_directory_path() / "fg_consumer.safetensors").string();
  fg::io::save_safetensors(path, {{"x", fg::var::from({1, 2, 3}, {3})}});
  const double back = fg::io::load_safetensors(path).at("x").at(2);
  std::filesystem::remove(path);
  std::printf("consumer: safetensors round trip gives %g (expected 3)\n", back);
  return s == 14.f && back == 3 ? 0 : 1;
}
