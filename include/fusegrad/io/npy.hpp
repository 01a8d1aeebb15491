// fusegrad/io/npy.hpp — one tensor in NumPy's .npy format (any dtype NumPy shares with fg::var):
// numpy.load reads what save_npy writes (version 1.0, little-endian, C order), and load_npy reads
// numpy.save's (versions 1 to 3, either byte order, C or Fortran order)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/var.hpp"
#include "fusegrad/io/file.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <span>
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

namespace detail {
// The header of a .npy file: a Python dict literal with exactly the keys 'descr' (a string),
// 'fortran_order' (True or False) and 'shape' (a tuple of non-negative ints), in any order,
// quoted with ' or ", with the spacing and trailing commas Python allows.
struct npy_header {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;
};

inline npy_header parse_npy_header(const std::string& h,
                                   const std::function<void(std::string)>& fail) {
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t' || h[i] == '\n' || h[i] == '\r'))
      ++i;
  };
  auto expect = [&](char c, const char* where) {
    skip_space();
    if (i >= h.size() || h[i] != c)
      fail(dynamic::text("has an unreadable header: '", std::string(1, c), "' expected ", where,
                         " at byte ", i, " of the header"));
    ++i;
  };
  auto is = [&](char c) {
    skip_space();
    return i < h.size() && h[i] == c;
  };
  auto string_literal = [&](const char* what) {
    skip_space();
    if (i >= h.size() || (h[i] != '\'' && h[i] != '"'))
      fail(dynamic::text("has an unreadable header: a quoted string expected for ", what));
    const char q = h[i++];
    const std::size_t end = h.find(q, i);
    if (end == std::string::npos)
      fail(dynamic::text("has an unreadable header: a string for ", what, " is not closed"));
    std::string out = h.substr(i, end - i);
    i = end + 1;
    return out;
  };
  npy_header r;
  bool seen[3] = {false, false, false};
  expect('{', "to open the dict");
  while (!is('}')) {
    const std::string key = string_literal("a key");
    expect(':', dynamic::text("after the key '", key, "'").c_str());
    const int k = key == "descr" ? 0 : key == "fortran_order" ? 1 : key == "shape" ? 2 : -1;
    if (k < 0)
      fail(dynamic::text("has the key '", key,
                         "' in its header (NumPy writes only 'descr', 'fortran_order' and "
                         "'shape')"));
    if (seen[k])
      fail(dynamic::text("names '", key, "' twice in its header"));
    seen[k] = true;
    skip_space();
    if (k == 0) {
      r.descr = string_literal("'descr'");
    } else if (k == 1) {
      if (h.compare(i, 4, "True") == 0)
        r.fortran_order = true, i += 4;
      else if (h.compare(i, 5, "False") == 0)
        i += 5;
      else
        fail("has an unreadable header: 'fortran_order' must be True or False");
    } else {
      expect('(', "to open 'shape'");
      while (!is(')')) {
        skip_space();
        const std::size_t from = i;
        std::uint64_t d = 0;
        for (; i < h.size() && h[i] >= '0' && h[i] <= '9'; ++i) {
          if (d > (std::uint64_t(1) << 62) / 10)
            fail("has an extent too large for any file in its 'shape'");
          d = d * 10 + std::uint64_t(h[i] - '0');
        }
        if (i == from)
          fail("has an unreadable header: 'shape' must be a tuple of non-negative integers");
        r.shape.push_back(d);
        if (!is(','))
          break;
        ++i;
      }
      expect(')', "to close 'shape'");
    }
    if (!is(','))
      break;
    ++i;
  }
  expect('}', "to close the dict");
  if (!seen[0] || !seen[1] || !seen[2])
    fail(dynamic::text("has no '",
                       !seen[0]   ? "descr"
                       : !seen[1] ? "fortran_order"
                                  : "shape",
                       "' in its header"));
  return r;
}
}  // namespace detail

// Reads any byte order ('<', '>', '=' or '|' in descr) and Fortran order (transposed into C
// order as numpy.load does); the elements are checked to fill the file exactly. parse_npy reads
// a file already in memory (`path` names it in errors).
inline var parse_npy(std::span<const char> f, const std::string& path) {
  const std::function<void(std::string)> fail = [&](const std::string& why) {
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
  const detail::npy_header h = detail::parse_npy_header(std::string(f.data() + start, len), fail);
  // descr: a byte order then a kind and width; one-byte kinds ignore the byte order
  const std::string& d = h.descr;
  const char* found = nullptr;
  dtype t = dtype::float32;
  if (d.size() >= 3 && (d[0] == '<' || d[0] == '>' || d[0] == '=' || d[0] == '|'))
    for (const auto& [type, name] : detail::npy_dtypes)
      if (d.compare(1, std::string::npos, name + 1) == 0 && (name[0] == '|' || d[0] != '|'))
        found = name, t = type;
  if (!found)
    fail(dynamic::text("holds elements of type '", d,
                       "' (fusegrad reads f4, f8, f2, i8, i4 in either byte order, u1 and b1)"));
  const bool swap = d[0] == '>' && dynamic::element_size(t) > 1;
  if (h.shape.size() > max_rank)
    fail(dynamic::text("has ", h.shape.size(), " axes (at most ", max_rank, ")"));
  extents e = extents::of_rank(h.shape.size());
  std::size_t count = 1;
  for (std::size_t k = 0; k < h.shape.size(); ++k) {
    e[k] = index_t(h.shape[k]);
    if (h.shape[k] && count > f.size() / h.shape[k])  // more elements than bytes
      fail(dynamic::text("has a shape ", e.str(), " far larger than the file"));
    count *= std::size_t(h.shape[k]);
  }
  const std::size_t es = dynamic::element_size(t), bytes = count * es;
  if (f.size() - start - len != bytes)
    fail(dynamic::text("holds ", f.size() - start - len, " bytes of elements; its header ", e.str(),
                       " ", d, " says ", bytes));
  var v = var::empty(e, t);
  char* out = static_cast<char*>(v.get().data->bytes);
  const char* in = f.data() + start + len;
  if (!h.fortran_order || e.rank() < 2) {
    if (bytes)
      std::memcpy(out, in, bytes);
  } else {  // element (i0, ..., in-1) is at i0 + d0 (i1 + d1 (...)) in the file
    std::array<std::size_t, max_rank> fstride{};
    for (std::size_t k = 0, s = 1; k < e.rank(); s *= std::size_t(e[k]), ++k)
      fstride[k] = s;
    char* to = out;
    dynamic::for_each_index(e, [&](const auto& idx) {
      std::size_t at = 0;
      for (std::size_t k = 0; k < e.rank(); ++k)
        at += fstride[k] * std::size_t(idx[k]);
      to = std::copy_n(in + at * es, es, to);
    });
  }
  if (swap)
    for (std::size_t c = 0; c < count; ++c)
      std::reverse(out + c * es, out + (c + 1) * es);
  detail::normalise_bools(v);
  return v;
}
inline var load_npy(const std::string& path) {
  return parse_npy(detail::read_file(path, "fg::io::load_npy()"), path);
}

}  // namespace fg::io

FG_DIAGNOSTICS_END
