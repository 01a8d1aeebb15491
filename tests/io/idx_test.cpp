// IDX files: plain and gzip, every element type, and damaged files refused with clear errors.
#include "../testing.hpp"
#include "io_testing.hpp"

#include <fusegrad/dynamic.hpp>
#include <fusegrad/io/idx.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

using namespace fg;
using fg::testing::slurp;
using fg::testing::spit;
using fg::testing::temp_path;

namespace {
// A [2, 3] array of unsigned bytes 0, 1, 2, 253, 254, 255.
const std::string ubytes("\0\0\x08\x02\0\0\0\x02\0\0\0\x03\x00\x01\x02\xfd\xfe\xff", 18);
}  // namespace

TEST_CASE("idx / unsigned bytes, signed shorts and big-endian floats, plain and gzip") {
  const std::string p = temp_path("fg_test.idx");
  spit(p, ubytes);
  var v = io::read_idx(p);
  CHECK(v.shape() == extents{2, 3});
  CHECK(v.at(1) == 1);
  CHECK(v.at(5) == 255);
  spit(p, std::string("\0\0\x0B\x01\0\0\0\x02\xff\xfe\x01\x00", 12));
  var s = io::read_idx(p, dtype::float64);
  CHECK(s.at(0) == -2);
  CHECK(s.at(1) == 256);
  spit(p, std::string("\0\0\x0D\x01\0\0\0\x01\x3f\xc0\x00\x00", 12));  // 1.5f, big-endian
  CHECK(io::read_idx(p).item() == 1.5);
#if FUSEGRAD_HAVE_ZLIB
  const std::string gz = temp_path("fg_test.idx.gz");
  gzFile f = gzopen(gz.c_str(), "wb");
  REQUIRE(f);
  gzwrite(f, ubytes.data(), unsigned(ubytes.size()));
  gzclose(f);
  var z = io::read_idx(gz);
  CHECK(z.shape() == extents{2, 3});
  CHECK(z.at(3) == 253);
  std::remove(gz.c_str());
#endif
  std::remove(p.c_str());
}

TEST_CASE("idx / damaged files give errors that name the file and the fault") {
  const std::string p = temp_path("fg_bad.idx");
  auto says = [&](const std::string& bytes, const std::string& what) {
    spit(p, bytes);
    CHECK_THROWS_WITH_AS(io::read_idx(p), ("fg::io::read_idx(): '" + p + "' " + what).c_str(),
                         io::format_error);
  };
  says("PK\x03\x04", "is not an IDX file (its first two bytes must be 0)");
  says(std::string("\0\0\x07\x01\0\0\0\x01\0", 9), "has an unknown element type code 7");
  says(ubytes.substr(0, 10), "is truncated in its header");
  says(ubytes.substr(0, 16), "holds 4 bytes of elements; its header [2, 3] says 6");
  says(ubytes + "xy", "holds more bytes than its header announces (18): stopped reading");
  // A gzip bomb: a header of 6 elements, then 64 MiB of zeros in about 64 KiB of file. Reading
  // stops at the first 64 KiB chunk, past the 18 bytes the header announces.
  const std::string gz = temp_path("fg_bomb.idx.gz");
  gzFile f = gzopen(gz.c_str(), "wb9");
  REQUIRE(f);
  gzwrite(f, ubytes.data(), unsigned(ubytes.size()));
  const std::string zeros(1 << 20, '\0');
  for (int i = 0; i < 64; ++i)
    gzwrite(f, zeros.data(), unsigned(zeros.size()));
  gzclose(f);
  CHECK(std::filesystem::file_size(gz) < 1 << 20);
  CHECK_THROWS_WITH_AS(io::read_idx(gz),
                       ("fg::io::read_idx(): '" + gz +
                        "' holds more bytes than its header announces (18): stopped reading")
                           .c_str(),
                       io::format_error);
  std::remove(gz.c_str());
  CHECK_THROWS_AS(io::read_idx(temp_path("fg_no_such.idx")), std::runtime_error);
  std::remove(p.c_str());
}
