// fusegrad/io/safetensors.hpp — save and load named tensors in the safetensors format (what
// Python's safetensors, PyTorch and JAX tools read): an 8-byte little-endian header length, a
// JSON header naming each tensor's dtype, shape and byte range, then the raw little-endian data
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/var.hpp"
#include "fusegrad/io/file.hpp"

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <span>
#include <string>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::io {

static_assert(std::endian::native == std::endian::little,
              "fusegrad: safetensors I/O is written for little-endian hosts");

using tensor_map = std::map<std::string, var>;

namespace detail {

// safetensors' name of each dtype.
inline constexpr std::pair<dtype, const char*> safetensors_dtypes[] = {
    {dtype::float32, "F32"},   {dtype::float64, "F64"}, {dtype::float16, "F16"},
    {dtype::bfloat16, "BF16"}, {dtype::int64, "I64"},   {dtype::int32, "I32"},
    {dtype::uint8, "U8"},      {dtype::bool_, "BOOL"}};
inline const char* safetensors_dtype(dtype t) {
  for (const auto& [d, name] : safetensors_dtypes)
    if (d == t)
      return name;
  return "?";
}
inline bool safetensors_dtype(const std::string& name, dtype& t) {
  for (const auto& [d, n] : safetensors_dtypes)
    if (name == n)
      t = d;
  return name == safetensors_dtype(t);
}

// A reader of the header's JSON: an object of objects with strings, integers and arrays of
// integers (and "__metadata__", an object of strings). Anything else is a format_error.
class json_reader {
 public:
  json_reader(const std::string& text, const std::string& path) : s_(text), path_(path) {}
  void expect(char c) {
    skip_space();
    if (i_ >= s_.size() || s_[i_] != c)
      fail(dynamic::text("expected '", std::string(1, c), "' at byte ", i_));
    ++i_;
  }
  bool peek(char c) {
    skip_space();
    return i_ < s_.size() && s_[i_] == c;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      if (s_[i_] == '\\') {
        if (++i_ >= s_.size())
          break;
        const char e = s_[i_];
        out += e == 'n' ? '\n' : e == 't' ? '\t' : e;  // names are plain in practice
      } else {
        out += s_[i_];
      }
      ++i_;
    }
    expect('"');
    return out;
  }
  std::uint64_t integer() {
    skip_space();
    const std::size_t start = i_;
    std::uint64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (v > (UINT64_MAX - 9) / 10)
        fail(dynamic::text("an integer at byte ", start, " is too large"));
      v = v * 10 + std::uint64_t(s_[i_++] - '0');
    }
    if (i_ == start)
      fail(dynamic::text("expected a non-negative integer at byte ", start));
    return v;
  }
  std::vector<std::uint64_t> integers() {
    std::vector<std::uint64_t> out;
    expect('[');
    if (!peek(']'))
      do
        out.push_back(integer());
      while (comma());
    expect(']');
    return out;
  }
  bool comma() {
    if (!peek(','))
      return false;
    ++i_;
    return true;
  }
  void end() {
    skip_space();
    if (i_ != s_.size())
      fail(dynamic::text("has text after the header's object, at byte ", i_));
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw format_error(dynamic::text("fg::io::load_safetensors(): '", path_, "': header ", why));
  }

 private:
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
      ++i_;
  }
  const std::string& s_;
  const std::string& path_;
  std::size_t i_ = 0;
};

inline std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out;
}

}  // namespace detail

// Writes `tensors` (of any dtype) to `path` atomically: to a temporary file beside it,
// then renamed over it, so a crash never leaves a half-written file under the name.
inline void save_safetensors(const std::string& path, const tensor_map& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  std::string header = "{";
  std::uint64_t offset = 0;
  bool first = true;
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (auto it = metadata.begin(); it != metadata.end(); ++it)
      header +=
          dynamic::text(it == metadata.begin() ? "" : ",", "\"", detail::json_escape(it->first),
                        "\":\"", detail::json_escape(it->second), "\"");
    header += "}";
    first = false;
  }
  for (const auto& [name, v] : tensors) {
    const std::uint64_t bytes = std::uint64_t(v.size()) * dynamic::element_size(v.dtype());
    header += dynamic::text(first ? "" : ",", "\"", detail::json_escape(name), "\":{\"dtype\":\"",
                            detail::safetensors_dtype(v.dtype()), "\",\"shape\":[");
    for (std::size_t k = 0; k < v.rank(); ++k)
      header += dynamic::text(k ? "," : "", v.shape()[k]);
    header += dynamic::text("],\"data_offsets\":[", offset, ",", offset + bytes, "]}");
    offset += bytes;
    first = false;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  detail::write_atomically(path, "fg::io::save_safetensors()", [&](std::ostream& out) {
    const std::uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(header.data(), std::streamsize(header.size()));
    for (const auto& [name, v] : tensors)
      detail::write_elements(out, v);
  });
}

// Reads every tensor of a safetensors file (every dtype fg::var has). A truncated or corrupt file
// throws format_error naming the file and the fault; nothing is read out of bounds.
// The tensors of a safetensors file already in memory; `path` names it in errors. (What
// load_safetensors runs, and what tests/fuzz feeds with arbitrary bytes.)
inline tensor_map parse_safetensors(std::span<const char> file, const std::string& path,
                                    std::map<std::string, std::string>* metadata = nullptr) {
  auto fail = [&](const std::string& why) {
    throw format_error(dynamic::text("fg::io::load_safetensors(): '", path, "' ", why));
  };
  if (file.size() < 8)
    fail(dynamic::text("is ", file.size(), " bytes long: too short for a safetensors file"));
  std::uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);
  if (n > 100'000'000)  // the reference reader's limit: no JSON of that size describes tensors
    fail(dynamic::text("says its header is ", n,
                       " bytes; safetensors headers are at most 100000000"));
  if (n > file.size() - 8)
    fail(dynamic::text("says its header is ", n, " bytes, but only ", file.size() - 8,
                       " follow: truncated or not safetensors"));
  const std::string header(file.data() + 8, std::size_t(n));
  const char* data = file.data() + 8 + n;
  const std::uint64_t data_size = file.size() - 8 - n;
  tensor_map out;
  detail::json_reader j(header, path);
  j.expect('{');
  if (!j.peek('}'))
    do {
      const std::string name = j.string();
      j.expect(':');
      j.expect('{');
      if (name == "__metadata__") {
        if (!j.peek('}'))
          do {
            std::string k = j.string();
            j.expect(':');
            std::string v = j.string();
            if (metadata)
              (*metadata)[k] = v;
          } while (j.comma());
        j.expect('}');
        continue;
      }
      std::string type;
      std::vector<std::uint64_t> shape, range;
      bool has_shape = false;
      do {
        const std::string key = j.string();
        j.expect(':');
        if (key == "dtype")
          type = j.string();
        else if (key == "shape")
          shape = j.integers(), has_shape = true;
        else if (key == "data_offsets")
          range = j.integers();
        else
          j.fail(dynamic::text("has an unknown field '", key, "' for tensor '", name, "'"));
      } while (j.comma());
      j.expect('}');
      dtype t = dtype::float32;
      if (!detail::safetensors_dtype(type, t))
        fail(dynamic::text("holds tensor '", name, "' of dtype '", type,
                           "' (fusegrad reads F32, F64, F16, BF16, I64, I32, U8 and BOOL)"));
      if (!has_shape || shape.size() > max_rank || range.size() != 2)
        fail(dynamic::text("describes tensor '", name, "' without a shape of at most ", max_rank,
                           " axes and a [begin, end] data_offsets"));
      extents e = extents::of_rank(shape.size());
      std::uint64_t count = 1;
      for (std::size_t k = 0; k < shape.size(); ++k) {
        e[k] = index_t(shape[k]);
        if (shape[k] && count > UINT64_MAX / shape[k])
          fail(dynamic::text("gives tensor '", name, "' an impossible shape"));
        count *= shape[k];
      }
      if (count > UINT64_MAX / dynamic::element_size(t))
        fail(dynamic::text("gives tensor '", name, "' an impossible shape"));
      const std::uint64_t bytes = count * dynamic::element_size(t);
      if (range[0] > range[1] || range[1] > data_size || range[1] - range[0] != bytes)
        fail(dynamic::text("gives tensor '", name, "' ", e.str(), " ", type, " the bytes [",
                           range[0], ", ", range[1], ") of ", data_size,
                           ": wrong size or past the end (truncated?)"));
      if (out.count(name))
        fail(dynamic::text("names tensor '", name, "' twice"));
      var v = var::empty(e, t);
      if (bytes)
        std::memcpy(v.get().data->bytes, data + range[0], std::size_t(bytes));
      if (t == dtype::bool_)
        detail::normalise_bools(v);
      out[name] = v;
    } while (j.comma());
  j.expect('}');
  j.end();
  return out;
}

inline tensor_map load_safetensors(const std::string& path,
                                   std::map<std::string, std::string>* metadata = nullptr) {
  return parse_safetensors(detail::read_file(path, "fg::io::load_safetensors()"), path, metadata);
}

}  // namespace fg::io

FG_DIAGNOSTICS_END
