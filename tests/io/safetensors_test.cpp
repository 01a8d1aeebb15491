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
  refused(bad, "header expected '\"'");
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
  CHECK_THROWS_AS(io::load_safetensors(temp_path("fg_no_such_file.safetensors")),
                  std::runtime_error);
  std::remove(p.c_str());
}

#ifdef FUSEGRAD_PYTHON_NUMPY
TEST_CASE("safetensors / Python reads our file and we read Python's") {
  const std::string ours = temp_path("fg_to_python.safetensors"),
                    theirs = temp_path("fg_from_python.safetensors");
  io::save_safetensors(ours, {{"w", reshape(var::arange(6, dtype::float32), {2, 3}) * 0.25},
                              {"b", var::from({-1.5, 2.0}, {2}, dtype::float64)},
                              {"ids", var::from({7, -3}, {2}, dtype::int64)},
                              {"mask", var::from({1, 0, 1}, {3}, dtype::bool_)}});
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
  std::remove(ours.c_str());
  std::remove(theirs.c_str());
}
#endif
