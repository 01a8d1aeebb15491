// fusegrad/io/npy.hpp — one tensor in NumPy's .npy format (version 1.0, little-endian, any dtype
// NumPy shares with fg::var, C order): numpy.load reads what save_npy writes, and load_npy reads
// numpy.save's SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/var.hpp"
#include "fusegrad/io/file.hpp"

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::io {

static_assert(std::endian::native == std::endian::little,
              "fusegrad: .npy I/O is written for little-endian hosts");

namespace detail {
// NumPy's descr of each dtype it has (it has no bfloat16).
inline constexpr std::pair<dtype, const char*> npy_dtypes[] = {
    {dtype::float32, "<f4"}, {dtype::float64, "<f8"}, {dtype::float16, "<f2"},
    {dtype::int64, "<i8"},   {dtype::int32, "<i4"},   {dtype::uint8, "|u1"},
    {dtype::bool_, "|b1"}};
}  // namespace detail

// Written to a temporary file beside `path`, then renamed over it.
inline void save_npy(const std::string& path, const var& v) {
  const char* descr = nullptr;
  for (const auto& [t, d] : detail::npy_dtypes)
    descr = t == v.dtype() ? d : descr;
  if (!descr)
    throw dtype_error(dynamic::text("fg::io::save_npy(): NumPy has no ", dtype_name(v.dtype()),
                                    " dtype; convert the tensor first, e.g. x.to(fg::float32)"));
  std::string dict = dynamic::text("{'descr': '", descr, "', 'fortran_order': False, 'shape': (");
  for (std::size_t k = 0; k < v.rank(); ++k)
    dict += dynamic::text(v.shape()[k], v.rank() == 1 ? "," : k + 1 < v.rank() ? ", " : "");
  dict += "), }";
  const std::size_t unpadded = 10 + dict.size() + 1;  // magic, version, length, dict, '\n'
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  detail::write_atomically(path, "fg::io::save_npy()", [&](std::ostream& out) {
    const std::uint16_t n = std::uint16_t(dict.size());
    out.write("\x93NUMPY\x01\x00", 8);
    out.write(reinterpret_cast<const char*>(&n), 2);
    out << dict;
    detail::write_elements(out, v);
  });
}

inline var load_npy(const std::string& path) {
  const std::vector<char> f = detail::read_file(path, "fg::io::load_npy()");
  auto fail = [&](const std::string& why) {
    throw format_error(dynamic::text("fg::io::load_npy(): '", path, "' ", why));
  };
  if (f.size() < 10 || std::memcmp(f.data(), "\x93NUMPY", 6) != 0)
    fail("is not a .npy file (no \\x93NUMPY magic)");
  const int major = f[6];
  std::size_t len = 0, start = 0;
  if (major == 1) {
    len = std::size_t(std::uint8_t(f[8])) | std::size_t(std::uint8_t(f[9])) << 8;
    start = 10;
  } else if ((major == 2 || major == 3) && f.size() >= 12) {
    for (int i = 3; i >= 0; --i)
      len = len << 8 | std::uint8_t(f[std::size_t(8 + i)]);
    start = 12;
  } else {
    fail(dynamic::text("has format version ", major, " (1 to 3 are read)"));
  }
  if (len > f.size() - start)
    fail("is truncated in its header");
  const std::string h(f.data() + start, len);
  auto field = [&](const char* key) -> std::string {
    const std::size_t k = h.find(dynamic::text("'", key, "'"));
    if (k == std::string::npos)
      fail(dynamic::text("has no '", key, "' in its header"));
    const std::size_t colon = h.find(':', k);
    return colon == std::string::npos ? std::string() : h.substr(colon + 1);
  };
  const std::string descr = field("descr");
  const char* found = nullptr;
  dtype t = dtype::float32;
  for (const auto& [d, name] : detail::npy_dtypes) {
    // (one-byte types may be written with '<' or '=' too: NumPy ignores their byte order)
    const std::string quoted = dynamic::text("'", name, "'");
    std::string alt = quoted;
    if (name[0] == '|')
      alt[1] = '<';
    if (descr.find(quoted) < descr.find(',') || descr.find(alt) < descr.find(','))
      found = name, t = d;
  }
  if (!found)
    fail(dynamic::text("holds elements of type ", descr.substr(0, descr.find(',')),
                       " (fusegrad reads '<f4', '<f8', '<f2', '<i8', '<i4', '|u1' and '|b1')"));
  if (field("fortran_order").find("False") > field("fortran_order").find(','))
    fail("is in Fortran order (fusegrad reads C order)");
  const std::string shape = field("shape");
  const std::size_t open = shape.find('('), close = shape.find(')');
  if (open == std::string::npos || close == std::string::npos || close < open)
    fail("has an unreadable shape in its header");
  std::vector<index_t> dims;
  for (std::size_t i = open + 1; i < close;) {
    while (i < close && (shape[i] == ' ' || shape[i] == ','))
      ++i;
    if (i == close)
      break;
    index_t d = 0;
    const std::size_t from = i;
    while (i < close && shape[i] >= '0' && shape[i] <= '9')
      d = d * 10 + index_t(shape[i++] - '0');
    if (i == from)
      fail("has an unreadable shape in its header");
    dims.push_back(d);
  }
  if (dims.size() > max_rank)
    fail(dynamic::text("has ", dims.size(), " axes (at most ", max_rank, ")"));
  extents e = extents::of_rank(dims.size());
  std::size_t count = 1;
  for (std::size_t k = 0; k < dims.size(); ++k) {
    e[k] = dims[k];
    if (dims[k] && count > f.size() / std::size_t(dims[k]))  // more elements than bytes
      fail(dynamic::text("has a shape ", e.str(), " far larger than the file"));
    count *= std::size_t(dims[k]);
  }
  const std::size_t bytes = std::size_t(e.size()) * dynamic::element_size(t);
  if (f.size() - start - len != bytes)
    fail(dynamic::text("holds ", f.size() - start - len, " bytes of elements; its header ", e.str(),
                       " ", found, " says ", bytes));
  var v = var::empty(e, t);
  if (bytes)
    std::memcpy(v.get().data->bytes, f.data() + start + len, bytes);
  if (t == dtype::bool_)
    detail::normalise_bools(v);
  return v;
}

}  // namespace fg::io

FG_DIAGNOSTICS_END
