// fusegrad/io/safetensors.hpp — save and load named tensors in the safetensors format (what
// Python's safetensors, PyTorch and JAX tools read): an 8-byte little-endian header length, a
// JSON header naming each tensor's dtype, shape and byte range, then the raw little-endian data
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/var.hpp"
#include "fusegrad/io/file.hpp"

#if !__has_include(<nlohmann/json.hpp>)
#error \
    "fusegrad/io/safetensors.hpp reads and writes the JSON header with nlohmann-json \
(header-only): install it (Debian: nlohmann-json3-dev) or put its include directory on the path"
#endif
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
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

// One tensor as the header describes it; `begin` and `end` count from the first data byte.
struct safetensors_entry {
  std::string name;
  dtype type = dtype::float32;
  extents shape;
  std::uint64_t begin = 0, end = 0;
};

// The header's reader. nlohmann-json's SAX parser checks the JSON (grammar, escapes, UTF-8,
// numbers; any nesting depth, without recursion) and this checks the format's schema event by
// event, keeping nothing but what it accepts: an object of tensors, each {"dtype": "F32",
// "shape": [..], "data_offsets": [begin, end]}, and an optional "__metadata__" object of strings.
class safetensors_header_reader {
 public:
  safetensors_header_reader(const std::string& path, std::uint64_t data_size,
                            std::map<std::string, std::string>* metadata)
      : path_(path), data_size_(data_size), metadata_(metadata) {}
  std::vector<safetensors_entry> entries;

  bool start_object(std::size_t) {
    if (depth_ > 1 || (depth_ == 1 && name_.empty()))
      refuse("an object");
    if (++depth_ == 2)
      field_ = none, seen_ = 0, shape_.clear(), offsets_.clear();
    return true;
  }
  bool key(std::string& k) {
    if (depth_ == 1) {
      if (k.empty())
        fail("names a tensor with the empty string");
      if (!names_.insert(k).second)
        fail(dynamic::text("names tensor '", k, "' twice"));
      name_ = std::move(k);
    } else if (in_metadata()) {
      key_ = std::move(k);
    } else {
      field_ = k == "dtype"          ? dtype_field
               : k == "shape"        ? shape_field
               : k == "data_offsets" ? offsets_field
                                     : none;
      if (field_ == none)
        fail(dynamic::text("has an unknown field '", k, "' for tensor '", name_, "'"));
      if (seen_ & (1u << field_))
        fail(dynamic::text("gives tensor '", name_, "' two '", k, "' fields"));
      seen_ |= 1u << field_;
    }
    return true;
  }
  bool string(std::string& v) {
    if (depth_ == 2 && in_metadata()) {
      if (metadata_)
        (*metadata_)[key_] = std::move(v);
    } else if (depth_ == 2 && field_ == dtype_field) {
      if (!safetensors_dtype(v, type_))
        fail(dynamic::text("holds tensor '", name_, "' of dtype '", v,
                           "' (fusegrad reads F32, F64, F16, BF16, I64, I32, U8 and BOOL)"));
    } else {
      refuse("a string");
    }
    return true;
  }
  bool start_array(std::size_t) {
    if (depth_ != 2 || in_metadata() || field_ == dtype_field)
      refuse("a list");
    ++depth_;
    return true;
  }
  bool number_unsigned(std::uint64_t v) {
    if (depth_ != 3)
      refuse("a number");
    const bool shape = field_ == shape_field;
    auto& list = shape ? shape_ : offsets_;
    if (const std::size_t most = shape ? max_rank : 2; list.size() == most)
      fail(dynamic::text("gives tensor '", name_, "' a ", field_name(), " of more than ", most,
                         shape ? " axes" : " numbers"));
    list.push_back(v);
    return true;
  }
  bool end_array() {
    --depth_;
    return true;
  }
  bool end_object() {
    if (--depth_ == 1 && !in_metadata())
      add_entry();
    name_.clear();
    return true;
  }
  bool number_integer(std::int64_t) { refuse("a negative number"); }
  bool number_float(double, const std::string&) { refuse("a fractional number"); }
  bool boolean(bool) { refuse("true or false"); }
  bool null() { refuse("null"); }
  bool binary(nlohmann::json::binary_t&) { refuse("binary data"); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& e) {
    fail(dynamic::text("is not valid JSON (", e.what(), ")"));
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw format_error(dynamic::text("fg::io::load_safetensors(): '", path_, "': header ", why));
  }

 private:
  enum field { dtype_field, shape_field, offsets_field, none };
  bool in_metadata() const { return name_ == "__metadata__"; }
  const char* field_name() const {
    return field_ == dtype_field ? "dtype" : field_ == shape_field ? "shape" : "data_offsets";
  }
  [[noreturn]] void refuse(const char* what) const {
    if (depth_ >= 2 && in_metadata())
      fail(dynamic::text("has ", what, " in __metadata__, which holds strings only"));
    if (depth_ >= 2)
      fail(dynamic::text("has ", what, " in field '", field_name(), "' of tensor '", name_,
                         "': dtype is a string, shape and data_offsets lists of integers >= 0"));
    fail(dynamic::text("has ", what, " where ",
                       depth_ == 0 ? "an object of tensors" : "a tensor's object", " belongs"));
  }
  void add_entry() {
    if (seen_ != 7u)
      fail(dynamic::text("describes tensor '", name_,
                         "' without all of dtype, shape and [begin, end] data_offsets"));
    if (offsets_.size() != 2)
      fail(dynamic::text("gives tensor '", name_, "' data_offsets of ", offsets_.size(),
                         " numbers, not [begin, end]"));
    safetensors_entry e{name_, type_, extents::of_rank(shape_.size()), offsets_[0], offsets_[1]};
    std::uint64_t bytes = dynamic::element_size(type_);
    for (std::size_t k = 0; k < shape_.size(); ++k) {
      if (shape_[k] && bytes > UINT64_MAX / shape_[k])
        fail(dynamic::text("gives tensor '", name_, "' an impossible shape"));
      bytes *= shape_[k];
      e.shape[k] = index_t(shape_[k]);
    }
    if (e.begin > e.end || e.end > data_size_ || e.end - e.begin != bytes)
      fail(dynamic::text("gives tensor '", name_, "' ", e.shape.str(), " ",
                         safetensors_dtype(type_), " the bytes [", e.begin, ", ", e.end, ") of ",
                         data_size_, ": wrong size or past the end (truncated?)"));
    entries.push_back(std::move(e));
  }

  const std::string& path_;
  std::uint64_t data_size_;
  std::map<std::string, std::string>* metadata_;
  std::set<std::string> names_;
  int depth_ = 0;  // 1: in the top object, 2: in a tensor's (or the metadata's), 3: in a list
  std::string name_, key_;
  field field_ = none;
  unsigned seen_ = 0;  // this tensor's fields seen so far, one bit each
  dtype type_ = dtype::float32;
  std::vector<std::uint64_t> shape_, offsets_;
};

// The tensors a header describes, checked as the format's reference reader checks them: each
// range holds exactly its shape's bytes, and the ranges, in order, tile the data with no gap and
// no overlap (two tensors never share bytes) up to its last byte.
inline std::vector<safetensors_entry> parse_safetensors_header(
    std::span<const char> header, std::uint64_t data_size, const std::string& path,
    std::map<std::string, std::string>* metadata) {
  safetensors_header_reader reader(path, data_size, metadata);
  nlohmann::json::sax_parse(header.begin(), header.end(), &reader);
  auto entries = std::move(reader.entries);
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  std::uint64_t next = 0;
  for (const safetensors_entry& e : entries) {
    if (e.begin != next)
      reader.fail(dynamic::text("gives tensor '", e.name, "' the bytes [", e.begin, ", ", e.end,
                                ") where byte ", next,
                                " comes next: tensors' bytes overlap or leave a gap"));
    next = e.end;
  }
  if (next != data_size)
    reader.fail(dynamic::text("describes ", next, " bytes of tensors, but ", data_size,
                              " bytes of data follow it"));
  return entries;
}

// The header's length, from the file's first 8 bytes, checked against the file's size.
inline std::uint64_t safetensors_header_size(const char* first8, std::uint64_t file_size,
                                             const std::string& path) {
  auto fail = [&](const std::string& why) {
    throw format_error(dynamic::text("fg::io::load_safetensors(): '", path, "' ", why));
  };
  if (file_size < 8)
    fail(dynamic::text("is ", file_size, " bytes long: too short for a safetensors file"));
  std::uint64_t n = 0;
  std::memcpy(&n, first8, 8);
  if (n > 100'000'000)  // the reference reader's limit: no JSON of that size describes tensors
    fail(dynamic::text("says its header is ", n,
                       " bytes; safetensors headers are at most 100000000"));
  if (n > file_size - 8)
    fail(dynamic::text("says its header is ", n, " bytes, but only ", file_size - 8,
                       " follow: truncated or not safetensors"));
  return n;
}

}  // namespace detail

// Writes `tensors` (of any dtype) to `path` with io/file.hpp's durable writer: a unique temporary
// file beside it, flushed to disk, then renamed over it, so that a crash never leaves a partial
// file under the name. Names and metadata must be valid UTF-8 (JSON's strings are).
inline void save_safetensors(const std::string& path, const tensor_map& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, v] : tensors) {
    if (name.empty() || name == "__metadata__")
      throw std::invalid_argument(dynamic::text("fg::io::save_safetensors(): '", path,
                                                "': a tensor cannot be named '", name, "'"));
    const std::uint64_t bytes = std::uint64_t(v.size()) * dynamic::element_size(v.dtype());
    header[name] = {{"dtype", detail::safetensors_dtype(v.dtype())},
                    {"shape", std::vector<index_t>(v.shape().begin(), v.shape().end())},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::type_error& e) {  // 316: a string that is not UTF-8
    throw std::invalid_argument(
        dynamic::text("fg::io::save_safetensors(): '", path,
                      "': a tensor name or metadata string is not valid UTF-8 (", e.what(), ")"));
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  detail::write_atomically(path, "fg::io::save_safetensors()", [&](std::ostream& out) {
    const std::uint64_t n = text.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(text.data(), std::streamsize(text.size()));
    for (const auto& [name, v] : tensors)
      detail::write_elements(out, v);
  });
}

// The tensors of a safetensors file already in memory; `path` names it in errors. Every size,
// offset, dtype and shape is checked: a corrupt or hostile file throws format_error naming the
// file, the tensor and the fault, and nothing is read out of bounds. (What tests/fuzz feeds with
// arbitrary bytes.)
inline tensor_map parse_safetensors(std::span<const char> file, const std::string& path,
                                    std::map<std::string, std::string>* metadata = nullptr) {
  const std::uint64_t n = detail::safetensors_header_size(file.data(), file.size(), path);
  const char* data = file.data() + 8 + n;
  tensor_map out;
  for (const auto& e : detail::parse_safetensors_header(file.subspan(8, std::size_t(n)),
                                                        file.size() - 8 - n, path, metadata)) {
    var v = var::empty(e.shape, e.type);
    if (e.end > e.begin)
      std::memcpy(v.get().data->bytes, data + e.begin, std::size_t(e.end - e.begin));
    detail::normalise_bools(v);
    out[e.name] = std::move(v);
  }
  return out;
}

// How load_safetensors() gets the tensors' bytes.
enum class load_mode {
  // With pread(2) straight into each tensor's own memory: one copy, and the tensors stay as they
  // were read whatever happens to the file afterwards.
  read,
  // Zero-copy: the tensors share a private copy-on-write mapping of the file (a tensor whose
  // bytes are not aligned to its element size gets a copy). Loading costs page-table work only;
  // pages are read when first touched, and writes to the tensors stay in this process. The file
  // must not be truncated or rewritten in place while they live: a page not yet touched is read
  // from the file as it is then (past a truncation: SIGBUS), as with every mapped file.
  // Replacing the file by rename, as fusegrad's writer does, is safe.
  map,
};

// Reads every tensor of a safetensors file (every dtype fg::var has), checked as
// parse_safetensors() checks; the header is read first and the tensors' bytes only once it has
// passed, straight into their place.
inline tensor_map load_safetensors(const std::string& path,
                                   std::map<std::string, std::string>* metadata = nullptr,
                                   load_mode mode = load_mode::read) {
  constexpr const char* who = "fg::io::load_safetensors()";
  const detail::input_file file(path, who);
  char first8[8] = {};
  file.read(first8, std::size_t(std::min<std::uint64_t>(file.size, 8)), 0, path, who);
  const std::uint64_t n = detail::safetensors_header_size(first8, file.size, path);
  std::vector<char> header(static_cast<std::size_t>(n));
  file.read(header.data(), header.size(), 8, path, who);
  const std::uint64_t data_begin = 8 + n;
  const auto entries =
      detail::parse_safetensors_header(header, file.size - data_begin, path, metadata);
  std::shared_ptr<const detail::mapped_file> mapping;
  if (mode == load_mode::map)
    mapping = std::make_shared<const detail::mapped_file>(file, path, who);
  tensor_map out;
  for (const auto& e : entries) {
    const std::size_t bytes = std::size_t(e.end - e.begin);
    char* at = mapping ? mapping->data() + data_begin + e.begin : nullptr;
    var v;
    if (at && bytes && std::uintptr_t(at) % dynamic::element_size(e.type) == 0) {
      v = detail::over_bytes(at, e.shape, e.type, mapping);
    } else {
      v = var::empty(e.shape, e.type);
      if (at && bytes)
        std::memcpy(v.get().data->bytes, at, bytes);
      else if (bytes)
        file.read(v.get().data->bytes, bytes, data_begin + e.begin, path, who);
    }
    detail::normalise_bools(v);
    out[e.name] = std::move(v);
  }
  return out;
}

}  // namespace fg::io

FG_DIAGNOSTICS_END
