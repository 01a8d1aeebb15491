// The one writer behind every format (io/file.hpp): a link where a temporary used to go is not
// followed, two processes saving to one path never show a reader a torn file, a full disk and a
// throwing writer leave the old file and no temporary, a writer killed part way leaves nothing
// after the next save, and a new file gets the mode the umask gives.
#include "../testing.hpp"
#include "io_testing.hpp"

#include <fusegrad/dynamic.hpp>
#include <fusegrad/io/safetensors.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace fg;
using fg::testing::slurp;
using fg::testing::spit;

namespace {

namespace fs = std::filesystem;

// A fresh directory of this process's own, removed at the end.
struct scratch_dir {
  fs::path path = fs::temp_directory_path() / ("fg_file_test_" + std::to_string(::getpid()));
  scratch_dir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~scratch_dir() { fs::remove_all(path); }
  std::string operator/(const char* name) const { return (path / name).string(); }
  int entries() const {
    int n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(path))
      ++n;
    return n;
  }
};

io::tensor_map filled(double value, index_t n) {
  return {{"w", var::full({n}, value, dtype::float32)}};
}

// Which value fills the file's tensor, or -1 if it is torn (or does not load).
double loaded_value(const std::string& p, index_t n) {
  try {
    const var w = io::load_safetensors(p).at("w");
    if (w.size() != n)
      return -1;
    const float* d = w.data<float>();
    for (index_t i = 1; i < n; ++i)
      if (d[i] != d[0])
        return -1;
    return d[0];
  } catch (const std::exception&) {
    return -1;
  }
}

// The body of a forked writer: it never returns into the test runner.
[[noreturn]] void save_until_killed(const std::string& p, const io::tensor_map& t) {
  try {
    for (;;)
      io::save_safetensors(p, t);
  } catch (...) {
  }
  ::_exit(1);
}

}  // namespace

TEST_CASE("file / a link where the temporary used to go is not followed") {
  scratch_dir dir;
  const std::string victim = dir / "unrelated.txt", p = dir / "model.safetensors";
  spit(victim, "keep me");
  fs::create_symlink(victim, p + ".tmp");  // the old writer's fixed temporary name
  io::save_safetensors(p, filled(1.0, 16));
  CHECK(slurp(victim) == "keep me");
  CHECK(loaded_value(p, 16) == 1.0);
  CHECK(fs::is_symlink(p + ".tmp"));
}

TEST_CASE("file / two processes saving to one path: 300 reads, none torn") {
  scratch_dir dir;
  const std::string p = dir / "model.safetensors";
  constexpr index_t n = 1 << 16;  // 256 KiB per save
  io::save_safetensors(p, filled(1.0, n));
  pid_t writers[2];
  for (int k = 0; k < 2; ++k) {
    writers[k] = ::fork();
    REQUIRE(writers[k] >= 0);
    if (writers[k] == 0) {  // a writer: saves its own value until killed
      const io::tensor_map t = filled(k + 1.0, n);
      save_until_killed(p, t);
    }
  }
  int bad = 0, seen[3] = {0, 0, 0};
  for (int r = 0; r < 300; ++r) {
    const double v = loaded_value(p, n);
    bad += v != 1.0 && v != 2.0;
    if (v == 1.0 || v == 2.0)
      ++seen[int(v)];
  }
  for (pid_t w : writers) {
    ::kill(w, SIGKILL);
    ::waitpid(w, nullptr, 0);
  }
  CHECK(bad == 0);
  INFO("reads of writer 1: " << seen[1] << ", of writer 2: " << seen[2]);
  CHECK(seen[1] + seen[2] == 300);
  io::save_safetensors(p, filled(3.0, n));  // and the next save removes what the kills left
  CHECK(dir.entries() == 1);
}

TEST_CASE("file / a full disk or a throwing writer leaves the old file and no temporary") {
  scratch_dir dir;
  const std::string p = dir / "model.safetensors";
  io::save_safetensors(p, filled(1.0, 8));
  const std::string before = slurp(p);
  // A full disk, simulated by a file size limit: write(2) fails with EFBIG (SIGXFSZ ignored).
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  rlimit small = old;
  small.rlim_cur = 1 << 16;
  auto* const previous = std::signal(SIGXFSZ, SIG_IGN);
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  bool threw = false;
  try {
    io::save_safetensors(p, filled(2.0, 1 << 20));  // 4 MiB
  } catch (const std::runtime_error& e) {
    threw = true;
    CHECK(std::string(e.what()).find("fg::io::save_safetensors(): writing '" + p + "' failed") ==
          0);
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, previous);
  CHECK(threw);
  CHECK(slurp(p) == before);
  CHECK(dir.entries() == 1);
  // A writer that throws part way.
  CHECK_THROWS_WITH_AS(io::detail::write_atomically(p, "test",
                                                    [](std::ostream& out) {
                                                      out << "half a file";
                                                      throw std::logic_error("stopped");
                                                    }),
                       "stopped", std::logic_error);
  CHECK(slurp(p) == before);
  CHECK(dir.entries() == 1);
}

TEST_CASE("file / a writer killed part way leaves nothing after the next save") {
  scratch_dir dir;
  const std::string p = dir / "model.safetensors";
  const io::tensor_map big = filled(1.0, 1 << 20);  // 4 MiB: the kill lands mid-write often
  int left = 0;
  for (int round = 0; round < 10; ++round) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0)
      save_until_killed(p, big);
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + 7 * round));
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    left += dir.entries() > 1;  // a temporary the kill left behind
    io::save_safetensors(p, filled(2.0, 4));
    CHECK(dir.entries() == 1);
    CHECK(loaded_value(p, 4) == 2.0);
  }
  MESSAGE("kills that left a temporary behind: ", left, " of 10");
}

TEST_CASE("file / a new file has the mode the umask gives, and errors name the file") {
  scratch_dir dir;
  const std::string p = dir / "model.safetensors";
  const mode_t old = ::umask(022);
  io::save_safetensors(p, filled(1.0, 4));
  ::umask(old);
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
  CHECK_THROWS_WITH_AS(io::save_safetensors(dir / "no/such/dir/m.safetensors", filled(1.0, 4)),
                       doctest::Contains("cannot create a temporary file in '"),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(io::load_safetensors(dir / "missing.safetensors"),
                       ("fg::io::load_safetensors(): cannot open '" +
                        (dir / "missing.safetensors") + "': No such file or directory")
                           .c_str(),
                       std::runtime_error);
}
