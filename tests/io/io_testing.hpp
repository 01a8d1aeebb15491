// tests/io/io_testing.hpp — temporary files for the file-format tests, and the names of the ops
// a graph records
#pragma once

#include <fusegrad/dynamic.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <string>

namespace fg::testing {

inline std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() / name).string();
}
inline std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
inline void spit(const std::string& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// Every name an op records itself under in a graph: read from the headers (a new op that
// records itself is found), the op table's elementwise ops and reductions, and the made tensors.
inline std::set<std::string> recorded_op_names() {
  std::set<std::string> names{"detach", "to_host", "rand", "randn", "randint", "randperm"};
  const std::regex recorded(R"re(record(?:_list)?\(\s*"(\w+)")re");
  const auto root = std::filesystem::path(FUSEGRAD_TESTS_DIR) / ".." / "include" / "fusegrad";
  for (const auto& f : std::filesystem::recursive_directory_iterator(root)) {
    if (!f.is_regular_file())
      continue;
    const std::string text = slurp(f.path().string());
    for (std::sregex_iterator m(text.begin(), text.end(), recorded), end; m != end; ++m)
      names.insert((*m)[1].str());
  }
#define FG_TABLE_NAME(fn, op_type) names.insert(dynamic::graph_name<ops::op_type>);
  FG_UNARY_FUNCTIONS(FG_TABLE_NAME)
  FG_BINARY_FUNCTIONS(FG_TABLE_NAME)
#undef FG_TABLE_NAME
  for (const char* r : {ops::sum_red::name, ops::mean_red::name, ops::prod_red::name,
                        ops::max_red::name, ops::min_red::name, ops::logsumexp_red::name})
    names.insert(r);
  names.insert(ops::neg_op::name);
  return names;
}

}  // namespace fg::testing
