// .npy: round trip, numpy reading ours and writing its own (where CMake found it), and damaged
// files refused with errors that name the file and the fault.
#include "../testing.hpp"
#include "io_testing.hpp"

#include <fusegrad/dynamic.hpp>
#include <fusegrad/io/npy.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace fg;
using fg::testing::slurp;
using fg::testing::spit;
using fg::testing::temp_path;

namespace {}  // namespace

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
          "holds elements of type  '<c8' (fusegrad reads '<f4', '<f8', '<f2', '<i8', "
          "'<i4', '|u1' and '|b1')");
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  refused(fortran, "is in Fortran order");
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
  std::remove(ours.c_str());
  std::remove(theirs.c_str());
}
#endif
