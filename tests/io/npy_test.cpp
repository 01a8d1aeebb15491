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
  for (const var& v : {var::scalar(2.5), reshape(var::arange(6), {2, 3}),
                       reshape(var::arange(24, dtype::float64), {2, 3, 4}), var::arange(5)}) {
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

TEST_CASE("npy / damaged files give errors that say what is wrong") {
  const std::string p = temp_path("fg_bad.npy");
  io::save_npy(p, reshape(var::arange(6), {2, 3}));
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
  other.replace(other.find("<f4"), 3, "<i8");
  refused(other, "holds elements of type  '<i8' (fusegrad reads '<f4' and '<f8')");
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  refused(fortran, "is in Fortran order");
  std::remove(p.c_str());
}

#ifdef FUSEGRAD_PYTHON_NUMPY
TEST_CASE("npy / numpy loads ours and we load numpy's") {
  const std::string ours = temp_path("fg_to_numpy.npy"), theirs = temp_path("fg_from_numpy.npy");
  io::save_npy(ours, reshape(var::arange(6), {2, 3}) * 0.5);
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
  std::remove(ours.c_str());
  std::remove(theirs.c_str());
}
#endif
