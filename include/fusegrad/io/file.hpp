// fusegrad/io/file.hpp — what the file formats share: atomic writes, raw element bytes, reading a
// whole file
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/var.hpp"
#include "fusegrad/io/format_error.hpp"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::io::detail {

// `write(out)` fills a temporary file beside `path`, which is then renamed over it: a crash
// never leaves a half-written file under the name. `who` names the caller in errors.
template <class Write>
void write_atomically(const std::string& path, const char* who, Write write) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      throw std::runtime_error(dynamic::text(who, ": cannot write '", tmp, "'"));
    write(out);
    out.flush();
    if (!out)
      throw std::runtime_error(dynamic::text(who, ": writing '", tmp, "' failed"));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(dynamic::text(who, ": cannot rename '", tmp, "' to '", path, "'"));
  }
}

// v's elements as they lie in memory (little-endian here).
inline void write_elements(std::ostream& out, const var& v) {
  const dynamic::impl& p = v.ready();
  const std::size_t es = dynamic::element_size(v.dtype());
  out.write(static_cast<const char*>(p.data->bytes) + p.offset * es,
            std::streamsize(std::size_t(v.size()) * es));
}

// A bool tensor read from a file holds its bytes as 0 or 1: any other byte, read as a C++ bool,
// would be undefined behaviour.
inline void normalise_bools(var& v) {
  auto* b = static_cast<unsigned char*>(v.get().data->bytes) + v.get().offset;
  for (index_t i = 0, n = v.size(); i < n; ++i)
    b[i] = b[i] != 0;
}

inline std::vector<char> read_file(const std::string& path, const char* who) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error(dynamic::text(who, ": cannot open '", path, "'"));
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace fg::io::detail

FG_DIAGNOSTICS_END
