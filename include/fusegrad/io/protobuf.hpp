// fusegrad/io/protobuf.hpp — the protocol-buffer wire format, written and read by hand: what
// fg::io's ONNX files need (varints, fixed-width numbers, nested messages), with no libprotobuf
// to link and no schema compiler to run, so the ONNX support stays header-only
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/config.hpp"
#include "fusegrad/io/format_error.hpp"

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::io::protobuf {

static_assert(std::endian::native == std::endian::little,
              "fg::io::protobuf copies fixed-width numbers as they lie in memory: the wire "
              "format is little-endian, and so must the host be");

// The wire types of a field's key (the protobuf encoding guide's numbering).
enum class wire : unsigned { varint = 0, fixed64 = 1, bytes = 2, fixed32 = 5 };

// Appends fields to a message. A nested message is written into its own writer, then added
// whole (its length precedes it on the wire).
class writer {
 public:
  void varint(int field, std::uint64_t v) {
    key(field, wire::varint);
    put_varint(v);
  }
  // int64, int32 and enums: two's complement in a varint (negative numbers take 10 bytes).
  void int64(int field, std::int64_t v) { varint(field, std::uint64_t(v)); }
  void f32(int field, float v) {
    key(field, wire::fixed32);
    put_raw(&v, sizeof v);
  }
  void bytes(int field, std::string_view s) {
    key(field, wire::bytes);
    put_varint(s.size());
    buf_.append(s);
  }
  void message(int field, const writer& w) { bytes(field, w.data()); }
  void packed_int64(int field, std::span<const std::int64_t> v) {
    writer inner;
    for (std::int64_t x : v)
      inner.put_varint(std::uint64_t(x));
    bytes(field, inner.data());
  }
  void packed_f32(int field, std::span<const float> v) {
    bytes(field, std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  }
  const std::string& data() const { return buf_; }

 private:
  void key(int field, wire w) { put_varint((std::uint64_t(field) << 3) | unsigned(w)); }
  void put_varint(std::uint64_t v) {
    for (; v >= 0x80; v >>= 7)
      buf_.push_back(char(v | 0x80));
    buf_.push_back(char(v));
  }
  void put_raw(const void* p, std::size_t n) { buf_.append(static_cast<const char*>(p), n); }
  std::string buf_;
};

// Walks the fields of a message: `while (r.next()) switch (r.field()) ...`. A field of an
// unexpected wire type is read by the accessor that fits it or refused by the others; a key, a
// varint or a length that runs past the message throws format_error naming `what` (the file).
// The reader views the message's bytes, which must outlive it.
class reader {
 public:
  reader(std::string_view message, std::string what) : rest_(message), what_(std::move(what)) {}

  bool next() {
    if (rest_.empty())
      return false;
    const std::uint64_t k = get_varint();
    field_ = k >> 3;
    wire_ = wire(k & 7);
    if (field_ == 0)
      fail("a field numbered 0");
    switch (wire_) {
      case wire::varint:
        value_ = get_varint();
        break;
      case wire::fixed64:
        body_ = take(8);
        break;
      case wire::fixed32:
        body_ = take(4);
        break;
      case wire::bytes:
        body_ = take(get_varint());
        break;
      default:
        fail("a field of an unknown wire type (groups are not read)");
    }
    return true;
  }
  std::uint64_t field() const { return field_; }
  wire type() const { return wire_; }

  std::uint64_t varint() const {
    expect(wire::varint, "an integer");
    return value_;
  }
  std::int64_t int64() const { return std::int64_t(varint()); }
  float f32() const {
    expect(wire::fixed32, "a float");
    float v;
    std::memcpy(&v, body_.data(), 4);
    return v;
  }
  double f64() const {
    expect(wire::fixed64, "a double");
    double v;
    std::memcpy(&v, body_.data(), 8);
    return v;
  }
  std::string_view bytes() const {
    expect(wire::bytes, "a string or a message");
    return body_;
  }
  reader message() const { return reader(bytes(), what_); }
  // A repeated int64 field: packed (one run of varints) or one element per field.
  void append_int64s(std::vector<std::int64_t>& out) const {
    if (wire_ == wire::varint) {
      out.push_back(int64());
      return;
    }
    reader packed(bytes(), what_);
    while (!packed.rest_.empty())
      out.push_back(std::int64_t(packed.get_varint()));
  }
  // A repeated float field: packed or one element per field.
  void append_f32s(std::vector<float>& out) const {
    if (wire_ == wire::fixed32) {
      out.push_back(f32());
      return;
    }
    const std::string_view b = bytes();
    if (b.size() % 4)
      fail("a packed float list of a length that is not a multiple of 4");
    const std::size_t n = out.size();
    out.resize(n + b.size() / 4);
    std::memcpy(out.data() + n, b.data(), b.size());
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw format_error(what_ + ": not a valid protobuf message: " + why);
  }

 private:
  std::uint64_t get_varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (rest_.empty())
        fail("a varint runs past the end of its message");
      const auto b = std::uint8_t(rest_.front());
      rest_.remove_prefix(1);
      v |= std::uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80))
        return v;
    }
    fail("a varint longer than 10 bytes");
  }
  std::string_view take(std::uint64_t n) {
    if (n > rest_.size())
      fail("a field runs past the end of its message");
    const std::string_view b = rest_.substr(0, std::size_t(n));
    rest_.remove_prefix(std::size_t(n));
    return b;
  }
  void expect(wire w, const char* what) const {
    if (wire_ != w)
      fail("field " + std::to_string(field_) + " is not " + what);
  }

  std::string_view rest_, body_;
  std::string what_;
  std::uint64_t field_ = 0, value_ = 0;
  wire wire_ = wire::varint;
};

}  // namespace fg::io::protobuf

FG_DIAGNOSTICS_END
