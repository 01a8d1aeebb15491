// safetensors: round trip, atomic write, every kind of damaged file refused with a clear error,
// and (where CMake found python3 with numpy) files Python reads and writes.
#include "../testing.hpp"
#include "io_testing.hpp"

#include <fusegrad/dynamic.hpp>
#include <fusegrad/io/safetensors.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

using namespace fg;
using fg::testing::slurp;
using fg::testing::spit;
using fg::testing::temp_path;

namespace {
io::tensor_map sample() {
  return {{"w", reshape(var::arange(6, dtype::float32), {2, 3}) * 0.25},
          {"b", var::from({-1.5, 2.0}, {2}, dtype::float64)},
          {"empty", var::zeros({0, 4})},
          {"s", var::scalar(7)}};
}
}  // namespace

TEST_CASE(
    "safetensors / round trip of shapes and dtypes and metadata in a file written atomically") {
  const std::string p = temp_path("fg_round.safetensors");
  io::save_safetensors(p, sample(), {{"format", "pt"}});
  CHECK(!std::filesystem::exists(p + ".tmp"));
  const std::string bytes = slurp(p);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK((8 + n) % 8 == 0);  // the data starts aligned
  std::map<std::string, std::string> meta;
  const io::tensor_map t = io::load_safetensors(p, &meta);
  CHECK(meta.at("format") == "pt");
  CHECK(t.size() == 4);
  CHECK(t.at("w").shape() == extents{2, 3});
  CHECK(t.at("w").dtype() == dtype::float32);
  CHECK(t.at("w").at(5) == 1.25);
  CHECK(t.at("b").dtype() == dtype::float64);
  CHECK(t.at("b").at(0) == -1.5);
  CHECK(t.at("empty").shape() == extents{0, 4});
  CHECK(t.at("s").rank() == 0);
  CHECK(t.at("s").item() == 7);
  std::remove(p.c_str());
}

TEST_CASE("safetensors / every dtype round-trips, bools read as 0 or 1") {
  const std::string p = temp_path("fg_dtypes.safetensors");
  io::tensor_map m;
  for (dtype t :
       {dtype::float16, dtype::bfloat16, dtype::int64, dtype::int32, dtype::uint8, dtype::bool_})
    m[dtype_name(t)] = reshape(var::arange(0, 6, 1, t), {2, 3});
  io::save_safetensors(p, m);
  const io::tensor_map back = io::load_safetensors(p);
  for (const auto& [name, v] : m) {
    CHECK(back.at(name).dtype() == v.dtype());
    CHECK(back.at(name).shape() == v.shape());
    for (index_t i = 0; i < v.size(); ++i)
      CHECK(back.at(name).at(sindex_t(i)) == v.at(sindex_t(i)));
  }
  io::save_safetensors(p, {{"m", var::from({0, 1}, {2}, dtype::bool_)}});
  std::string bytes = slurp(p);
  bytes[bytes.size() - 1] = '\x05';
  spit(p, bytes);
  CHECK(io::load_safetensors(p).at("m").at<int>(1) == 1);
  std::remove(p.c_str());
}

TEST_CASE("safetensors / damaged files give errors that say what is wrong") {
  const std::string p = temp_path("fg_bad.safetensors");
  io::save_safetensors(p, sample());
  const std::string good = slurp(p);
  auto refused = [&](const std::string& bytes, const char* says) {
    spit(p, bytes);
    INFO("expected a message containing: " << std::string(says));
    try {
      io::load_safetensors(p);
      FAIL("loaded a damaged file");
    } catch (const io::format_error& e) {
      INFO("got: " << std::string(e.what()));
      CHECK(std::string(e.what()).find(says) != std::string::npos);
      CHECK(std::string(e.what()).find(p) != std::string::npos);
    }
  };
  refused(good.substr(0, 5), "too short for a safetensors file");
  refused(good.substr(0, 20), "truncated or not safetensors");
  std::string huge = good;
  const std::uint64_t too_long = 100'000'001;
  std::memcpy(huge.data(), &too_long, 8);
  refused(huge, "says its header is 100000001 bytes; safetensors headers are at most 100000000");
  refused(good.substr(0, good.size() - 3), "wrong size or past the end (truncated?)");
  std::string bad = good;
  bad[9] = '[';
  refused(bad, "header is not valid JSON ([json.exception.parse_error.101] parse error at line 1, "
               "column 2: syntax error while parsing object key");
  bad = good;
  bad.replace(bad.find("F32"), 3, "C64");
  refused(bad, "of dtype 'C64' (fusegrad reads F32, F64, F16, BF16, I64, I32, U8 and BOOL)");
  // A shape whose byte count wraps 2^64 is refused, not read past the data (4 bytes given).
  const std::string wraps =
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387905],"
      "\"data_offsets\":[0,4]}}";
  refused(std::string(1, char(wraps.size())) + std::string(7, '\0') + wraps + "abcd",
          "gives tensor 'x' an impossible shape");
  refused(std::string(8, '\xff') + "{}", "safetensors headers are at most 100000000");
  // The header as the format's reference reader checks it, each fault named.
  auto file = [](std::string header, const std::string& data) {
    header.append((8 - header.size() % 8) % 8, ' ');
    const std::uint64_t n = header.size();
    return std::string(reinterpret_cast<const char*>(&n), 8) + header + data;
  };
  const std::string x = R"("x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  refused(file("{" + x + R"(,"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "abcd"),
          "gives tensor 'y' the bytes [0, 4) where byte 4 comes next: tensors' bytes overlap or "
          "leave a gap");
  refused(file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", "abcdefgh"),
          "gives tensor 'x' the bytes [4, 8) where byte 0 comes next");
  refused(file("{" + x + "}", "abcdTAIL"), "describes 4 bytes of tensors, but 8 bytes of data follow it");
  refused(file("{" + x + "," + x + "}", "abcd"), "names tensor 'x' twice");
  refused(file(R"({"x":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "abcd"),
          "gives tensor 'x' two 'dtype' fields");
  refused(file(R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"),
          "has a negative number in field 'shape' of tensor 'x'");
  refused(file(R"({"x":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", "abcd"),
          "has a fractional number in field 'shape' of tensor 'x'");
  refused(file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}})", "abcd"),
          "gives tensor 'x' a data_offsets of more than 2 numbers");
  refused(file(R"({"x":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})",
               "abcd"),
          "gives tensor 'x' a shape of more than 8 axes");
  refused(file(R"({"x":{"dtype":"F32","shape":[1]}})", "abcd"),
          "describes tensor 'x' without all of dtype, shape and [begin, end] data_offsets");
  refused(file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"more":1}})", "abcd"),
          "has an unknown field 'more' for tensor 'x'");
  refused(file(R"({"__metadata__":{"k":1}})", ""), "has a number in __metadata__");
  refused(file(R"({"x":[]})", ""), "has a list where a tensor's object belongs");
  refused(file("[]", ""), "has a list where an object of tensors belongs");
  refused(file("{\"\xff\":{}}", ""), "is not valid JSON");  // not UTF-8
  // A million nested lists are refused at the first one, with no recursion to overflow.
  refused(file(R"({"x":{"shape":)" + std::string(1'000'000, '['), ""),
          "has a list in field 'shape' of tensor 'x'");
  CHECK_THROWS_AS(io::load_safetensors(temp_path("fg_no_such_file.safetensors")),
                  std::runtime_error);
  std::remove(p.c_str());
}

TEST_CASE("safetensors / names with quotes, escapes and any Unicode round-trip, invalid ones "
          "are refused on save") {
  const std::string p = temp_path("fg_names.safetensors");
  const std::string odd = "say \"hi\"\\ \n\t\x01 \xc3\xa9\xe2\x88\x87";  // quotes, controls, é, ∇
  io::save_safetensors(p, {{odd, var::scalar(2)}}, {{odd, odd}});
  std::map<std::string, std::string> meta;
  CHECK(io::load_safetensors(p, &meta).at(odd).item() == 2);
  CHECK(meta.at(odd) == odd);
  auto refused = [&](const io::tensor_map& m, const char* says) {
    try {
      io::save_safetensors(p, m);
      FAIL("saved");
    } catch (const std::invalid_argument& e) {
      INFO("got: " << std::string(e.what()));
      CHECK(std::string(e.what()).find(says) != std::string::npos);
    }
  };
  refused({{"bad \xff", var::scalar(1)}}, "a tensor name or metadata string is not valid UTF-8");
  refused({{"__metadata__", var::scalar(1)}}, "a tensor cannot be named '__metadata__'");
  refused({{"", var::scalar(1)}}, "a tensor cannot be named ''");
  CHECK(io::load_safetensors(p).at(odd).item() == 2);  // a refused save leaves the file as it was
  std::remove(p.c_str());
}

namespace {
const char* first_byte(const var& v) { return static_cast<const char*>(v.get().first_byte()); }
}  // namespace

TEST_CASE("safetensors / load_mode::map shares the file's bytes copy-on-write") {
  const std::string p = temp_path("fg_mapped.safetensors");
  io::tensor_map m = sample();
  for (dtype t :
       {dtype::float16, dtype::bfloat16, dtype::int64, dtype::int32, dtype::uint8, dtype::bool_})
    m[dtype_name(t)] = reshape(var::arange(0, 6, 1, t), {2, 3});
  io::save_safetensors(p, m);
  const std::string before = slurp(p);
  io::tensor_map mapped = io::load_safetensors(p, nullptr, io::load_mode::map);
  const io::tensor_map read = io::load_safetensors(p);
  for (const auto& entry : read) {
    const std::string& name = entry.first;
    const var& v = entry.second;
    CAPTURE(name);
    CHECK(mapped.at(name).dtype() == v.dtype());
    CHECK(mapped.at(name).shape() == v.shape());
    for (index_t i = 0; i < v.size(); ++i)
      CHECK(mapped.at(name).at(sindex_t(i)) == v.at(sindex_t(i)));
  }
  // Zero-copy: consecutive tensors lie as far apart in memory as in the file ("b" F64 [2] comes
  // first in the file, then "bfloat16").
  CHECK(first_byte(mapped.at("bfloat16")) - first_byte(mapped.at("b")) == 16);
  // A write changes this process's copy, never the file, and is tracked like any in-place write.
  mapped.at("w").set(0, 42);
  CHECK(mapped.at("w").at(0) == 42);
  CHECK(slurp(p) == before);
  // Replacing the file (our writer renames) leaves the mapped tensors as they were.
  io::save_safetensors(p, {{"w", var::zeros({2, 3})}});
  CHECK(mapped.at("w").at(5) == 1.25);
  CHECK(mapped.at("int64").at<std::int64_t>(5) == 5);
  // The tensors keep the mapping alive after the map that held them is gone.
  const var kept = mapped.at("int32");
  mapped.clear();
  CHECK(kept.at<int>(4) == 4);
  CHECK(sum(kept.to(dtype::float32)).item() == 15);
  std::remove(p.c_str());
}

TEST_CASE("safetensors / load_mode::map copies a tensor whose bytes are not aligned, and reads "
          "bools as 0 or 1") {
  const std::string p = temp_path("fg_unaligned.safetensors");
  // "a": 1 byte, so "b" (F32) starts at an odd address in the mapping.
  std::string header = R"({"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::uint64_t n = header.size();
  const float b[2] = {1.5f, -2.0f};
  spit(p, std::string(reinterpret_cast<const char*>(&n), 8) + header + "\x07" +
              std::string(reinterpret_cast<const char*>(b), 8));
  for (io::load_mode mode : {io::load_mode::read, io::load_mode::map}) {
    const io::tensor_map t = io::load_safetensors(p, nullptr, mode);
    CHECK(t.at("a").at<int>(0) == 1);
    CHECK(t.at("b").at(0) == 1.5);
    CHECK(t.at("b").at(1) == -2.0);
    CHECK(reinterpret_cast<std::uintptr_t>(first_byte(t.at("b"))) % alignof(float) == 0);
  }
  std::remove(p.c_str());
}

TEST_CASE("safetensors / load_mode::read keeps its tensors when the file is then rewritten") {
  const std::string p = temp_path("fg_read_then_rewritten.safetensors");
  io::save_safetensors(p, sample());
  const io::tensor_map t = io::load_safetensors(p);
  spit(p, "");  // truncated in place, as Python's save_file does before it writes
  CHECK(t.at("w").at(5) == 1.25);
  CHECK(t.at("b").at(1) == 2.0);
  std::remove(p.c_str());
}

#ifdef FUSEGRAD_PYTHON_NUMPY
TEST_CASE("safetensors / Python reads our file and we read Python's") {
  const std::string ours = temp_path("fg_to_python.safetensors"),
                    theirs = temp_path("fg_from_python.safetensors");
  io::save_safetensors(ours, {{"w", reshape(var::arange(6, dtype::float32), {2, 3}) * 0.25},
                              {"b", var::from({-1.5, 2.0}, {2}, dtype::float64)},
                              {"ids", var::from({7, -3}, {2}, dtype::int64)},
                              {"mask", var::from({1, 0, 1}, {3}, dtype::bool_)},
                              {"say \"hi\"\\ \n \xc3\xa9", var::scalar(5)}});
  const std::string cmd = std::string(FUSEGRAD_PYTHON_NUMPY) + " " + FUSEGRAD_TESTS_DIR +
                          "/io/safetensors_interop.py " + ours + " " + theirs;
  REQUIRE(std::system(cmd.c_str()) == 0);
  const io::tensor_map t = io::load_safetensors(theirs);
  CHECK(t.at("w2").shape() == extents{2, 3});
  CHECK(t.at("w2").at(5) == 2.5);
  CHECK(t.at("scalar").dtype() == dtype::float64);
  CHECK(t.at("scalar").item() == 3.25);
  CHECK(t.at("ids2").dtype() == dtype::int64);
  CHECK(t.at("ids2").at<std::int64_t>(1) == -6);
  CHECK(t.at("mask2").dtype() == dtype::bool_);
  CHECK(t.at("mask2").at<int>(0) == 0);
  CHECK(t.at("say \"hi\"\\ \n \xc3\xa9 (python)").item() == 6);
  std::remove(ours.c_str());
  std::remove(theirs.c_str());
}
#endif
