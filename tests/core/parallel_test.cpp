// fg::parallel_for across fork() (core/parallel.hpp): the child of a process whose pool has run
// starts its own (libgomp's child hangs here: GCC bug 60035).
#include "../testing.hpp"

#include <fusegrad/core/parallel.hpp>

#include <atomic>
#include <csignal>

#include <sys/wait.h>
#include <unistd.h>

TEST_CASE("parallel / a forked child runs parallel_for after its parent did") {
  const int before = fg::get_num_threads();
  fg::set_num_threads(2);
  std::atomic<std::size_t> total{0};
  fg::parallel_for(0, 100, 1, [&](std::size_t lo, std::size_t hi) { total += hi - lo; });
  REQUIRE(total == 100);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // libgomp hangs here (GCC bug 60035)
    std::atomic<std::size_t> n{0};
    fg::parallel_for(0, 100, 1, [&](std::size_t lo, std::size_t hi) { n += hi - lo; });
    _exit(n == 100 ? 0 : 1);
  }
  int status = 0;
  for (int waited = 0; waited < 1000 && waitpid(child, &status, WNOHANG) == 0; ++waited)
    usleep(10000);  // at most 10 s
  if (waitpid(child, &status, WNOHANG) == 0) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    FAIL("the forked child hung in parallel_for");
  }
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  fg::set_num_threads(before);
}
