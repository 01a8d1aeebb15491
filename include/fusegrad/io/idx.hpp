// fusegrad/io/idx.hpp — IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed, as vars.
// Reading .gz needs zlib: link it (CMake: ZLIB::ZLIB, or -lz) where this header is used.
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/var.hpp"
#include "fusegrad/io/format_error.hpp"

#include <bit>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#if __has_include(<zlib.h>)
#include <zlib.h>
#define FUSEGRAD_HAVE_ZLIB 1
#else
#define FUSEGRAD_HAVE_ZLIB 0
#endif

FG_DIAGNOSTICS_BEGIN

namespace fg::io {

namespace detail {

// The bytes per element of IDX type code `type` (0: not an IDX type).
inline std::size_t idx_width(unsigned type) {
  return type == 0x08 || type == 0x09   ? 1
         : type == 0x0B                 ? 2
         : type == 0x0C || type == 0x0D ? 4
         : type == 0x0E                 ? 8
                                        : 0;
}
// The n bytes at b[at] as a big-endian unsigned integer.
inline std::uint64_t big_endian(std::span<const unsigned char> b, std::size_t at, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i)
    v = v << 8 | b[at + i];
  return v;
}

// The size an IDX file of these first bytes has in all (header and elements), once they hold
// the whole header; 0 while they do not, or when the header is not IDX (the parser says why).
inline std::size_t idx_size_from_header(std::span<const unsigned char> b) {
  if (b.size() < 4 || b[0] != 0 || b[1] != 0 || b.size() < 4 + 4 * std::size_t(b[3]))
    return 0;
  std::size_t total = idx_width(b[2]);
  for (std::size_t i = 0; i < b[3] && total; ++i) {
    const std::size_t d = big_endian(b, 4 + 4 * i, 4);
    if (d && total > (std::size_t(1) << 62) / d)
      return 0;
    total *= d;
  }
  return total ? total + 4 + 4 * std::size_t(b[3]) : 0;
}

// Every byte of an IDX file, gunzipped when it is gzip (zlib reads plain files as they are).
// Reading stops as soon as the bytes pass the size the header announces: a small compressed file
// that inflates without end (a gzip bomb) is refused at that size, not when memory runs out.
inline std::vector<unsigned char> read_all(const std::string& path) {
  std::vector<unsigned char> out;
  unsigned char chunk[1 << 16];
  auto too_long = [&] {
    const std::size_t announced = idx_size_from_header(out);
    if (announced && out.size() > announced)
      throw format_error(dynamic::text("fg::io::read_idx(): '", path,
                                       "' holds more bytes than its header announces (", announced,
                                       "): stopped reading"));
  };
#if FUSEGRAD_HAVE_ZLIB
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f)
    throw std::runtime_error(dynamic::text("fg::io: cannot open '", path, "'"));
  struct closer {
    gzFile f;
    ~closer() { gzclose(f); }
  } close_it{f};
  for (;;) {
    const int n = gzread(f, chunk, sizeof chunk);
    if (n < 0) {
      int code = 0;
      const std::string why = gzerror(f, &code);
      throw format_error(dynamic::text("fg::io: '", path, "' is not valid gzip (", why, ")"));
    }
    if (n == 0)
      break;
    out.insert(out.end(), chunk, chunk + n);
    too_long();
  }
#else
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f)
    throw std::runtime_error(dynamic::text("fg::io: cannot open '", path, "'"));
  for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, f.get())) > 0;) {
    out.insert(out.end(), chunk, chunk + n);
    too_long();
  }
  if (out.size() >= 2 && out[0] == 0x1f && out[1] == 0x8b)
    throw format_error(dynamic::text("fg::io: '", path,
                                     "' is gzip-compressed and fusegrad was built without zlib"));
#endif
  return out;
}

}  // namespace detail

// An IDX array: magic 0 0 <type> <rank>, the extents as big-endian 32-bit integers, then the
// elements, big-endian. Returned as a var of dtype `t` holding the element values (bytes stay
// 0..255: scale them yourself; class labels: read them as fg::int64).
// parse_idx reads one already in memory (gunzipped; `path` names it in errors).
inline var parse_idx(std::span<const unsigned char> b, const std::string& path,
                     dtype t = dtype::float32) {
  auto fail = [&](const std::string& why) {
    throw format_error(dynamic::text("fg::io::read_idx(): '", path, "' ", why));
  };
  if (b.size() < 4 || b[0] != 0 || b[1] != 0)
    fail("is not an IDX file (its first two bytes must be 0)");
  const unsigned type = b[2], rank = b[3];
  const std::size_t width = detail::idx_width(type);
  if (width == 0)
    fail(dynamic::text("has an unknown element type code ", type));
  if (rank == 0 || rank > max_rank)
    fail(dynamic::text("has rank ", rank, " (1 to ", max_rank, " supported)"));
  if (b.size() < 4 + 4 * std::size_t(rank))
    fail("is truncated in its header");
  auto be = [&](std::size_t at, std::size_t n) { return detail::big_endian(b, at, n); };
  extents e = extents::of_rank(rank);
  std::size_t count = 1;
  for (unsigned i = 0; i < rank; ++i) {
    e[i] = index_t(be(4 + 4 * i, 4));
    if (e[i] && count > b.size() / std::size_t(e[i]))  // more elements than the file has bytes
      fail(dynamic::text("has a header ", e.str(), " far larger than the file"));
    count *= std::size_t(e[i]);
  }
  const std::size_t start = 4 + 4 * std::size_t(rank);
  if (b.size() - start != count * width)
    fail(dynamic::text("holds ", b.size() - start, " bytes of elements; its header ", e.str(),
                       " says ", count * width));
  var v = var::empty(e, t);
  dispatch_any(t, [&](auto z) {
    using T = decltype(z);
    T* p = v.data<T>();
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t raw = be(start + i * width, width);
      switch (type) {
        case 0x08:
          p[i] = convert_element<T>(std::uint8_t(raw));
          break;
        case 0x09:
          p[i] = convert_element<T>(std::int8_t(raw));
          break;
        case 0x0B:
          p[i] = convert_element<T>(std::int16_t(raw));
          break;
        case 0x0C:
          p[i] = convert_element<T>(std::int32_t(raw));
          break;
        case 0x0D:
          p[i] = convert_element<T>(std::bit_cast<float>(std::uint32_t(raw)));
          break;
        default:
          p[i] = convert_element<T>(std::bit_cast<double>(raw));
          break;
      }
    }
  });
  return v;
}
inline var read_idx(const std::string& path, dtype t = dtype::float32) {
  return parse_idx(detail::read_all(path), path, t);
}

}  // namespace fg::io

FG_DIAGNOSTICS_END
