// .npy: round trip, numpy reading ours and writing its own (where CMake found it), and damaged
// files refused with errors that name the file and the fault.
#include "../testing.hpp"
#include "io_testing.hpp"

#include <fusegrad/dynamic.hpp>
#include <fusegrad/io/npy.hpp>

#include <algorithm>
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
// A version 1.0 .npy file with the header dict `dict` (padded as NumPy pads) and `data`.
std::string npy_file(std::string dict, const std::string& data) {
  dict.append((64 - (10 + dict.size() + 1) % 64) % 64, ' ');
  dict += '\n';
  std::string f = std::string("\x93NUMPY\x01\x00", 8);
  f += char(dict.size() & 0xff);
  f += char(dict.size() >> 8);
  return f + dict + data;
}
template <class T> std::string bytes_of(std::initializer_list<T> values, bool big_endian = false) {
  std::string out;
  for (T v : values) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    if (big_endian)
      std::reverse(b, b + sizeof(T));
    out.append(b, sizeof(T));
  }
  return out;
}
}  // namespace

TEST_CASE(
    "npy / any key order, Fortran order and big-endian elements are read as numpy reads "
    "them") {
  const std::string p = temp_path("fg_orders.npy");
  // [[0, 1, 2], [3, 4, 5]] in Fortran order is 0 3 1 4 2 5; 'fortran_order' last (the case that
  // once loaded transposed)
  spit(p, npy_file("{\"shape\": (2, 3), 'descr': '<f4', 'fortran_order': True}",
                   bytes_of<float>({0, 3, 1, 4, 2, 5})));
  var v = io::load_npy(p);
  CHECK(v.shape() == extents{2, 3});
  for (sindex_t i = 0; i < 6; ++i)
    CHECK(v.at(i) == double(i));
  spit(p, npy_file("{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }",
                   bytes_of<double>({1.5, -2, 1e300}, true)));
  v = io::load_npy(p);
  CHECK(v.dtype() == dtype::float64);
  CHECK(v.at(2) == 1e300);
  CHECK(v.at(1) == -2.0);
  spit(p, npy_file("{'descr': '>i4', 'fortran_order': True, 'shape': (2, 2, 2), }",
                   bytes_of<std::int32_t>({0, 4, 2, 6, 1, 5, 3, -7}, true)));
  v = io::load_npy(p);
  CHECK(v.dtype() == dtype::int32);
  for (sindex_t i = 0; i < 7; ++i)
    CHECK(v.at<std::int64_t>(i) == i);
  CHECK(v.at<std::int64_t>(7) == -7);
  spit(p, npy_file("{'descr': '|u1', 'fortran_order': False, 'shape': ()}", "\x07"));
  CHECK(io::load_npy(p).item<int>() == 7);
  std::remove(p.c_str());
}

TEST_CASE("npy / round trip of float32 and float64 at ranks 0 to 3") {
  const std::string p = temp_path("fg_round.npy");
  for (const var& v :
       {var::scalar(2.5), reshape(var::arange(6, dtype::float32), {2, 3}),
        reshape(var::arange(24, dtype::float64), {2, 3, 4}), var::arange(5, dtype::float32)}) {
    io::save_npy(p, v);
    CHECK(slurp(p).size() % 64 ==
          (std::size_t(v.size()) * (v.dtype() == dtype::float32 ? 4 : 8)) % 64);
    const var w = io::load_npy(p);
    CHECK(w.shape() == v.shape());
    CHECK(w.dtype() == v.dtype());
    for (index_t i = 0; i < v.size(); ++i)
      CHECK(w.at(i) == v.at(i));
  }
  std::remove(p.c_str());
}

TEST_CASE("npy / round trip of every dtype NumPy has, and bfloat16 refused in words") {
  const std::string p = temp_path("fg_dtypes.npy");
  for (dtype t : {dtype::float16, dtype::int64, dtype::int32, dtype::uint8, dtype::bool_}) {
    const var v = reshape(var::arange(0, 6, 1, t), {3, 2});
    io::save_npy(p, v);
    const var w = io::load_npy(p);
    CHECK(w.dtype() == t);
    CHECK(w.shape() == v.shape());
    for (index_t i = 0; i < v.size(); ++i)
      CHECK(w.at(sindex_t(i)) == v.at(sindex_t(i)));
  }
  // A bool byte other than 0 or 1 reads as true (never as an invalid C++ bool).
  io::save_npy(p, var::from({1, 0}, {2}, dtype::bool_));
  std::string bytes = slurp(p);
  bytes[bytes.size() - 2] = '\x07';
  spit(p, bytes);
  CHECK(io::load_npy(p).at<int>(0) == 1);
  CHECK_THROWS_WITH_AS(io::save_npy(p, var::zeros({2}, dtype::bfloat16)),
                       "fg::io::save_npy(): NumPy has no bfloat16 dtype; convert the tensor "
                       "first, e.g. x.to(fg::float32)",
                       dtype_error);
  std::remove(p.c_str());
}

TEST_CASE("npy / damaged files give errors that say what is wrong") {
  const std::string p = temp_path("fg_bad.npy");
  io::save_npy(p, reshape(var::arange(6, dtype::float32), {2, 3}));
  const std::string good = slurp(p);
  auto refused = [&](const std::string& bytes, const char* says) {
    spit(p, bytes);
    try {
      io::load_npy(p);
      FAIL("loaded a damaged file");
    } catch (const io::format_error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(says) != std::string::npos);
    }
  };
  refused("PK", "is not a .npy file");
  refused(good.substr(0, 40), "is truncated in its header");
  refused(good.substr(0, good.size() - 4),
          "holds 20 bytes of elements; its header [2, 3] <f4 says 24");
  std::string other = good;
  other.replace(other.find("<f4"), 3, "<c8");
  refused(other,
          "holds elements of type '<c8' (fusegrad reads f4, f8, f2, i8, i4 in either byte order, "
          "u1 and b1)");
  const std::string data = bytes_of<float>({1, 2});
  refused(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", data),
          "has the key 'extra' in its header (NumPy writes only 'descr', 'fortran_order' and "
          "'shape')");
  refused(npy_file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", data),
          "names 'descr' twice in its header");
  refused(npy_file("{'descr': '<f4', 'shape': (2,)}", data),
          "has no 'fortran_order' in its header");
  refused(npy_file("{'descr': '<f4', 'fortran_order': 1, 'shape': (2,)}", data),
          "'fortran_order' must be True or False");
  refused(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", data),
          "'shape' must be a tuple of non-negative integers");
  refused(
      npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", data),
      "has an extent too large for any file in its 'shape'");
  refused(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", data),
          "'}' expected to close the dict");
  std::remove(p.c_str());
}

#ifdef FUSEGRAD_PYTHON_NUMPY
TEST_CASE("npy / numpy loads ours and we load numpy's") {
  const std::string ours = temp_path("fg_to_numpy.npy"), theirs = temp_path("fg_from_numpy.npy");
  io::save_npy(ours, reshape(var::arange(6, dtype::float32), {2, 3}) * 0.5);
  const std::string cmd =
      std::string(FUSEGRAD_PYTHON_NUMPY) +
      " -c \"import numpy as np, sys; a = np.load(sys.argv[1]); "
      "assert a.dtype == np.float32 and a.shape == (2, 3) and a[1, 2] == 2.5, a; "
      "np.save(sys.argv[2], np.arange(4.0).reshape(2, 2) + 0.25)\" " +
      ours + " " + theirs;
  REQUIRE(std::system(cmd.c_str()) == 0);
  const var t = io::load_npy(theirs);
  CHECK(t.dtype() == dtype::float64);
  CHECK(t.shape() == extents{2, 2});
  CHECK(t.at(3) == 3.25);
  // Integers and bools both ways: numpy reads their dtypes, and we read numpy's.
  for (dtype t : {dtype::int64, dtype::int32, dtype::uint8, dtype::bool_, dtype::float16}) {
    io::save_npy(ours, var::from({1, 0, 1}, {3}, t));
    const std::string check =
        std::string(FUSEGRAD_PYTHON_NUMPY) +
        " -c \"import numpy as np, sys; a = np.load(sys.argv[1]); "
        "assert a.dtype == np.dtype(sys.argv[3]) and list(a) == [1, 0, 1], a; "
        "np.save(sys.argv[2], (a * 3).astype(a.dtype))\" " +
        ours + " " + theirs + " " + (t == dtype::bool_ ? "bool" : dtype_name(t));
    REQUIRE(std::system(check.c_str()) == 0);
    const var back = io::load_npy(theirs);
    CHECK(back.dtype() == t);
    CHECK(back.at(0) == (t == dtype::bool_ ? 1.0 : 3.0));
  }
  // numpy's own Fortran-order and big-endian files
  const std::string orders =
      std::string(FUSEGRAD_PYTHON_NUMPY) +
      " -c \"import numpy as np, sys; "
      "np.save(sys.argv[1], np.asfortranarray(np.arange(24.0).reshape(2, 3, 4)).astype('>f4'))\" " +
      theirs;
  REQUIRE(std::system(orders.c_str()) == 0);
  const var f = io::load_npy(theirs);
  CHECK(f.dtype() == dtype::float32);
  CHECK(f.shape() == extents{2, 3, 4});
  for (sindex_t i = 0; i < 24; ++i)
    CHECK(f.at(i) == double(i));
  std::remove(ours.c_str());
  std::remove(theirs.c_str());
}
#endif
