// tests/compose/compose_test.cpp — the composition test: seeded random expression trees over
// every op of the op table and every layout op, each run on every path (the static path with
// static and fg::dyn extents and each of its entry points, fg::var fused and under
// fg::no_fusion, fg::kernel where a tree is elementwise), in float64 and float32, against the
// reference (plain loops in long double, fourth-order central differences) and against each
// other. A failure prints the tree as C++, then the smallest failing tree the shrinker finds.
//
//   fusegrad_compose_test [--cases N] [--first I] [--seed S] [--depth D] [--quiet]
//                         [--no-shrink-static]
//
// Without --cases, the trees compiled into the static path (the build's seed) are run; --cases N
// runs trees I .. I + N - 1 of seed S on the run-time paths, and on the static path those that
// were compiled. A static-path failure is shrunk by compiling smaller trees (minutes), unless
// --no-shrink-static.
// SPDX-License-Identifier: MIT

#include "emit.hpp"
#include "paths.hpp"

#include <dlfcn.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>

#ifndef FUSEGRAD_COMPOSE_SEED
#error "the build gives the seed of the compiled trees"
#endif

namespace compose {

std::map<std::size_t, compiled_tree>& static_registry() {
  static std::map<std::size_t, compiled_tree> r;
  return r;
}

namespace {

constexpr int static_count = int(static_variant::count);

bool is_float(static_variant v) {
  return v == static_variant::static_float || v == static_variant::dyn_float ||
         v == static_variant::kernel_float;
}

struct check {
  std::string path;
  bool single;  // float32: compared with a float32 tolerance
  result r;
};

// |got - want| within tol * max(1, largest |want| of that tensor): a wrong element (a missed or
// doubled contribution) is off by the size of a gradient, far outside either tolerance.
bool close(const std::vector<double>& got, const std::vector<real>& want, double tol,
           std::string& why) {
  if (got.size() != want.size()) {
    why = "has " + std::to_string(got.size()) + " elements, not " + std::to_string(want.size());
    return false;
  }
  real scale = 1;
  for (real w : want)
    scale = std::max(scale, std::abs(w));
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!(std::abs(real(got[i]) - want[i]) <= real(tol) * scale)) {
      std::ostringstream o;
      o.precision(12);
      o << "element " << i << " is " << got[i] << ", the reference " << double(want[i]);
      why = o.str();
      return false;
    }
  return true;
}

struct expected {
  real value;
  std::vector<std::vector<real>> grads;  // per used leaf
};

expected reference_of(const tree& t, const std::vector<array>& in) {
  expected e;
  e.value = reference(t, in).run().value;
  const auto g = reference_gradient(t, in);
  for (int l : t.used_leaves())
    e.grads.push_back(g[std::size_t(l)]);
  return e;
}

// Compares one path's result with the reference; the reason when it differs.
bool agrees(const result& r, const expected& e, bool single, std::string& why,
            double tol64 = 1e-7) {
  const double tol = single ? 2e-3 : tol64;
  if (!close({r.value}, {e.value}, tol, why)) {
    why = "the value: " + why;
    return false;
  }
  if (r.grads.size() != e.grads.size()) {
    why = "gives " + std::to_string(r.grads.size()) + " gradients, not " +
          std::to_string(e.grads.size());
    return false;
  }
  for (std::size_t l = 0; l < e.grads.size(); ++l)
    if (!close(r.grads[l], e.grads[l], tol, why)) {
      why = "the gradient of leaf " + std::to_string(l) + ": " + why;
      return false;
    }
  return true;
}

result run_var(const tree& t, const std::vector<array>& in, bool fused, bool single) {
  const fg::dtype type = single ? fg::dtype::float32 : fg::dtype::float64;
  if (fused)
    return var_interpreter(t, in, type).run();
  fg::no_fusion eager;
  return var_interpreter(t, in, type).run();
}

// Runs every path on tree t; returns the name of the first path that disagrees (and why), or "".
std::string first_failure(const tree& t, std::size_t index, bool with_static, std::string& why,
                          int& paths_run) {
  const auto in = make_inputs(t);
  const expected e = reference_of(t, in);
  paths_run = 0;
  // The float64 paths also agree with the first of them far more closely than with the
  // reference's differences: only summation order separates them.
  std::optional<expected> first64;
  auto run = [&](bool single, auto fn) -> bool {
    ++paths_run;
    try {
      const result r = fn();
      if (!agrees(r, e, single, why))
        return false;
      if (single)
        return true;
      if (!first64) {
        first64 = expected{real(r.value), {}};
        for (const auto& g : r.grads)
          first64->grads.emplace_back(g.begin(), g.end());
      } else if (!agrees(r, *first64, false, why, 1e-10)) {
        why = "against the first float64 path (fg::var fused), " + why;
        return false;
      }
    } catch (const std::exception& ex) {
      why = std::string("threw: ") + ex.what();
      return false;
    }
    return true;
  };
  const char* var_names[] = {"fg::var fused, float64", "fg::var fused, float32",
                             "fg::var under fg::no_fusion, float64",
                             "fg::var under fg::no_fusion, float32"};
  for (int p = 0; p < 4; ++p)
    if (!run(p % 2 == 1, [&] { return run_var(t, in, p < 2, p % 2 == 1); }))
      return var_names[p];
  if (!with_static)
    return "";
  const auto found = static_registry().find(index);
  if (found == static_registry().end())
    return "";
  if (print(t) != found->second.expression) {
    why = std::string("was compiled from another tree, ") + found->second.expression +
          ": a stale build";
    return "the static path's registry";
  }
  for (int v = 0; v < static_count; ++v) {
    const auto sv = static_variant(v);
    if (!compiled(sv, index, t.kernel_form))
      continue;
    if (!run(is_float(sv), [&] { return found->second.run(sv, in); }))
      return variant_name(sv);
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// The shrinker: replaces a node by a same-shaped child or leaf while the tree still fails and
// stays well posed, until no replacement does. Run-time paths rerun each candidate; the static
// path compiles a round of candidates into a shared object and loads it.

int leaf_of_shape(const tree& t, const dims& s) {
  for (std::size_t l = 0; l < t.leaves.size(); ++l)
    if (t.leaves[l].shape == s)
      return int(l);
  return -1;
}

std::vector<int> reachable(const tree& t) {
  std::vector<int> ids;
  std::function<void(int)> walk = [&](int id) {
    ids.push_back(id);
    for (int k : t.nodes[std::size_t(id)].kids)
      walk(k);
  };
  walk(t.root);
  return ids;
}

// The well-posed trees one replacement smaller than t, smallest first.
std::vector<tree> smaller(const tree& t) {
  std::vector<tree> out;
  for (int id : reachable(t)) {
    const node nd = t.nodes[std::size_t(id)];
    std::vector<node> options;
    for (int k : nd.kids)
      if (t.nodes[std::size_t(k)].shape == nd.shape)
        options.push_back(t.nodes[std::size_t(k)]);
    if (const int l = leaf_of_shape(t, nd.shape); l >= 0 && nd.k != kind::leaf) {
      node lf;
      lf.k = kind::leaf;
      lf.leaf = l;
      lf.shape = nd.shape;
      options.push_back(lf);
    }
    for (const node& o : options) {
      tree c = t;
      c.nodes[std::size_t(id)] = o;
      const kind root = c.nodes[std::size_t(c.root)].k;  // the root stays an expression
      if (root != kind::leaf && root != kind::number && !c.used_leaves().empty() &&
          c.count(c.root) < t.count(t.root) && fair_test(c))
        out.push_back(std::move(c));
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const tree& a, const tree& b) { return a.count(a.root) < b.count(b.root); });
  return out;
}

// `first_failing(candidates)`: the index of a candidate that still fails, or -1.
template <class FirstFailing> tree shrink(tree t, FirstFailing first_failing) {
  for (;;) {
    const auto c = smaller(t);
    const int k = c.empty() ? -1 : first_failing(c);
    if (k < 0)
      return t;
    t = c[std::size_t(k)];
  }
}

tree shrink_runtime(const tree& t, const std::string& failing_path) {
  return shrink(t, [&](const std::vector<tree>& c) {
    for (std::size_t k = 0; k < c.size(); ++k) {
      std::string why;
      int n = 0;
      if (first_failure(c[k], std::size_t(-1), false, why, n) == failing_path)
        return int(k);
    }
    return -1;
  });
}

#if defined(FUSEGRAD_COMPOSE_CXX)
// Compiles the candidates for variant v into a shared object (registered at indices from `base`)
// and returns the first that still fails, or -1.
int first_failing_static(const std::vector<tree>& c, static_variant v, std::size_t& base) {
  const std::string dir = "compose_shrink";
  (void)std::system(("mkdir -p " + dir).c_str());
  const std::string src = dir + "/round_" + std::to_string(base) + ".cpp";
  const std::string lib = dir + "/round_" + std::to_string(base) + ".so";
  {
    std::ofstream o(src);
    emit_begin(o, "a shrinking round");
    for (std::size_t k = 0; k < c.size(); ++k)
      emit_tree(o, c[k], base + k, [&](static_variant w) { return w == v; });
    emit_end(o);
  }
  const std::string cmd = std::string(FUSEGRAD_COMPOSE_CXX) + " -fPIC -shared -o " + lib + " " +
                          src + " 2> " + src + ".log";
  std::cout << "  compiling " << c.size() << " smaller trees (" << src << ")\n" << std::flush;
  if (std::system(cmd.c_str()) != 0 || !dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
    std::cout << "  could not build or load them (" << src << ".log); stopping here\n";
    return -1;
  }
  const std::size_t first = base;
  base += c.size();
  for (std::size_t k = 0; k < c.size(); ++k) {
    const auto in = make_inputs(c[k]);
    std::string why;
    try {
      if (!agrees(static_registry().at(first + k).run(v, in), reference_of(c[k], in), is_float(v),
                  why))
        return int(k);
    } catch (const std::exception&) {
      return int(k);
    }
  }
  return -1;
}
#endif

}  // namespace
}  // namespace compose

int main(int argc, char** argv) {
  using namespace compose;
  std::uint64_t seed = FUSEGRAD_COMPOSE_SEED;
  std::size_t cases = static_registry().size(), first = 0;
  int depth = FUSEGRAD_COMPOSE_DEPTH;
  bool quiet = false;
  bool shrink_static = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cases" && i + 1 < argc)
      cases = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--first" && i + 1 < argc)
      first = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--seed" && i + 1 < argc)
      seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--depth" && i + 1 < argc)
      depth = std::atoi(argv[++i]);
    else if (a == "--quiet")
      quiet = true;
    else if (a == "--no-shrink-static")
      shrink_static = false;
    else {
      std::cerr << "usage: fusegrad_compose_test [--cases N] [--first I] [--seed S] [--depth D] "
                   "[--quiet] [--no-shrink-static]\n";
      return 2;
    }
  }
  const bool with_static = seed == FUSEGRAD_COMPOSE_SEED && depth == FUSEGRAD_COMPOSE_DEPTH;
  const auto start = std::chrono::steady_clock::now();
  std::size_t failures = 0, static_trees = 0, kernel_trees = 0, path_runs = 0;
  for (std::size_t i = first; i < first + cases; ++i) {
    const tree t = make_tree(seed, i, depth);
    std::string why;
    int n = 0;
    const std::string bad = first_failure(t, i, with_static, why, n);
    path_runs += std::size_t(n);
    if (with_static && static_registry().count(i)) {
      ++static_trees;
      kernel_trees += t.kernel_form;
    }
    if (bad.empty())
      continue;
    ++failures;
    std::cout << "MISMATCH tree " << i << " (seed " << seed << "), " << bad << ": " << why
              << "\n  f = " << print(t) << "\n";
    if (bad.rfind("fg::var", 0) == 0) {
      std::cout << "  smallest failing tree: " << print(shrink_runtime(t, bad)) << "\n";
    } else if (!shrink_static) {
      std::cout << "  to shrink it (compiling smaller trees, minutes): " << argv[0] << " --first "
                << i << " --cases 1\n";
    } else {
#if defined(FUSEGRAD_COMPOSE_CXX)
      static std::size_t base = 1000000000;  // candidate indices, after every generated tree
      static_variant v{};
      for (int k = 0; k < static_count; ++k)
        if (bad == variant_name(static_variant(k)))
          v = static_variant(k);
      const tree s =
          shrink(t, [&](const std::vector<tree>& c) { return first_failing_static(c, v, base); });
      std::cout << "  smallest failing tree: " << print(s) << "\n";
#else
      std::cout << "  (this build cannot compile candidate trees: no shrinking)\n";
#endif
    }
    if (failures >= 10) {
      std::cout << "stopping after 10 mismatches\n";
      break;
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!quiet || failures)
    std::cout << cases << " trees (seed " << seed << ", depth " << depth << "): " << static_trees
              << " also on the static path's entry points (" << kernel_trees
              << " through fg::kernel), " << path_runs << " path runs, " << failures
              << " mismatches, " << secs << " s\n";
  return failures ? 1 : 0;
}
