// tests/io/io_testing.hpp — temporary files for the file-format tests
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace fg::testing {

inline std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() / name).string();
}
inline std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
inline void spit(const std::string& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace fg::testing
