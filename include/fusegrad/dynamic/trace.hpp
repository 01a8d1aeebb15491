// fusegrad/dynamic/trace.hpp — define-then-run at run time: fg::trace records a function of vars
// into an fg::graph, fg::function traces once per input signature and runs the graph after;
// printing and Graphviz DOT of a graph
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/graph.hpp"

#include <array>
#include <atomic>
#include <concepts>
#include <memory>
#include <mutex>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg {

namespace dynamic {
template <class R>
concept trace_result = std::same_as<R, var> || std::same_as<R, std::vector<var>>;

// A graph's outputs as the traced function returned them: one var, or a list.
template <class R> R as_result(var_list&& out) {
  if constexpr (std::is_same_v<R, var>)
    return std::move(out.front());
  else
    return R(std::make_move_iterator(out.begin()), std::make_move_iterator(out.end()));
}
}  // namespace dynamic

// Runs f once on tensors like `example` (same extents, dtypes and elements) and records the ops
// it runs into a graph; f returns a var or a std::vector<var>. What f computes from its inputs
// with fusegrad's ops is recorded; the tensors it uses that are not computed from its inputs
// (a model's parameters, constants) are captured, parameters by reference (an optimiser's
// update is seen by the graph). Plain C++ control flow runs once, as it goes for these inputs:
// a branch on an element's value (item(), at()) is frozen, and the graph's warnings() say so.
// fg::where keeps a data-dependent choice inside the graph.
namespace dynamic {
template <class F, std::same_as<var>... V> graph trace_with(bool dry, F& f, const V&... example);
template <class Body> graph trace_span(bool dry, std::span<const var> example, Body&& body);
}  // namespace dynamic
template <class F, std::same_as<var>... V>
requires dynamic::trace_result<std::invoke_result_t<F&, const V&...>> graph
trace(F&& f, const V&... example) {
  return dynamic::trace_with(false, f, example...);
}

// Records `body`, a function of a span of inputs like `example` returning their results (a
// std::vector<var>), into a graph: the core of fg::trace, for callers whose input count is known
// at run time only (a model loaded from a file). `dry`: the run that records has no effects
// (fg::function's graph runs right after).
template <class Body>
graph dynamic::trace_span(bool dry, std::span<const var> example, Body&& body) {
  graph g;
  dynamic::tracer t(g);
  // The inputs require a gradient while f runs, so that whatever an unrecorded op computes
  // from them is linked to them on the tape and refused (tracer::id_of) instead of frozen.
  std::vector<var> in;
  for (const var& x : example) {
    var a = x.detach();
    if (is_floating(x.dtype()))
      a.requires_grad(true);
    t.add_input(a);
    in.push_back(std::move(a));
  }
  {
    const dynamic::switch_scope<dynamic::grad_enabled, true> grad;
    const dynamic::recording on(t, dry);
    for (const var& y : body(std::span<const var>(in)))
      t.add_output(y);
  }
  t.finish();
  return g;
}

template <class F, std::same_as<var>... V>
graph dynamic::trace_with(bool dry, F& f, const V&... example) {
  const std::array<var, sizeof...(V)> ex{example...};
  return trace_span(dry, ex, [&](std::span<const var> in) {
    auto out = [&]<std::size_t... I>(std::index_sequence<I...>) {
      return f(in[I]...);
    }
    (std::index_sequence_for<V...>{});
    if constexpr (std::is_same_v<decltype(out), var>)
      return std::vector<var>{std::move(out)};
    else
      return out;
  });
}

// A function of vars traced once per input signature (the inputs' extents, dtypes and device):
// calling it with a signature it has seen runs that graph; a new one traces f again. After
// `max_traces` signatures it runs f eagerly instead (as torch.compile falls back past its cache
// limit): a function called with a new length every time is better left eager. Calls from
// several threads at once are safe; finding the graph takes no lock.
template <class F> class function {
 public:
  explicit function(F f, std::size_t max_traces = 8)
      : f_(std::move(f)),
        slots_(std::make_unique<std::atomic<const graph*>[]>(max_traces)),
        max_(max_traces) {}

  template <std::same_as<var>... V>
  requires dynamic::trace_result<std::invoke_result_t<F&, const V&...>>
  auto operator()(const V&... x) {
    using R = std::invoke_result_t<F&, const V&...>;
    const std::array<var, sizeof...(V)> in{x...};
    const graph* g = find(in);
    if (!g)
      g = add_trace(x...);
    if (!g)
      return f_(x...);
    dynamic::var_list out;
    g->run_into(in, out);
    return dynamic::as_result<R>(std::move(out));
  }

  // The graphs traced so far, one per signature, oldest first.
  std::vector<const graph*> graphs() const {
    std::vector<const graph*> out;
    for (std::size_t k = 0, n = count_.load(std::memory_order_acquire); k < n; ++k)
      out.push_back(slots_[k].load(std::memory_order_acquire));
    return out;
  }
  // Calls run eagerly because `max_traces` signatures were traced already.
  std::size_t eager_calls() const { return eager_calls_.load(std::memory_order_relaxed); }

 private:
  const graph* find(std::span<const var> in) const {
    for (std::size_t k = 0, n = count_.load(std::memory_order_acquire); k < n; ++k) {
      const graph* g = slots_[k].load(std::memory_order_acquire);
      if (g->accepts(in))
        return g;
    }
    return nullptr;
  }
  // A new signature's graph, or null past the limit.
  template <class... V> const graph* add_trace(const V&... x) {
    if (count_.load(std::memory_order_acquire) >= max_) {
      eager_calls_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    // Recorded without effects: the graph's run that follows has them, once. (Unlocked: f may
    // take a while.)
    auto made = std::make_unique<const graph>(dynamic::trace_with(true, f_, x...));
    const std::lock_guard<std::mutex> hold(lock_);
    const std::size_t n = count_.load(std::memory_order_relaxed);
    const std::array<var, sizeof...(V)> in{x...};
    for (std::size_t k = 0; k < n; ++k)  // another thread may have traced it meanwhile
      if (slots_[k].load(std::memory_order_relaxed)->accepts(in))
        return slots_[k].load(std::memory_order_relaxed);
    if (n >= max_) {
      eager_calls_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    const graph* kept = owned_.emplace_back(std::move(made)).get();  // (before it is seen)
    slots_[n].store(kept, std::memory_order_release);
    count_.store(n + 1, std::memory_order_release);
    return kept;
  }

  F f_;
  std::unique_ptr<std::atomic<const graph*>[]> slots_;  // the first count_ are set, never reset
  std::size_t max_;
  std::atomic<std::size_t> count_{0};
  std::atomic<std::size_t> eager_calls_{0};
  std::mutex lock_;  // adding a graph
  std::vector<std::unique_ptr<const graph>> owned_;
};

namespace dynamic {
inline void print_attr(std::ostream& os, const attr& a) {
  os << a.name << "=";
  std::visit(
      [&](const auto& v) {
        using A = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<A, std::vector<std::int64_t>>) {
          os << "[";
          for (std::size_t k = 0; k < v.size(); ++k)
            os << (k ? ", " : "") << v[k];
          os << "]";
        } else if constexpr (std::is_same_v<A, bool>) {
          os << (v ? "true" : "false");
        } else if constexpr (std::is_same_v<A, dtype>) {
          os << dtype_name(v);
        } else if constexpr (std::is_same_v<A, generator*>) {
          os << (v ? "generator" : "default generator");
        } else {
          os << v;
        }
      },
      a.value);
}
}  // namespace dynamic

// The graph as text: its inputs, captured tensors, one line per step, its outputs, then the
// chains its plan runs as one pass each (by the values they compute).
//   graph(%0: float32[4, 3]) {
//     %1: float32[5, 3] = parameter
//     %3: float32[] = constant(2)
//     %2: float32[4, 5] = matmul(%0, %1)
//     %4: float32[4, 5] = mul(%2, %3)
//     %5: float32[4, 5] = tanh(%4)
//     return %5
//     # one pass: %4 %5
//   }
inline std::ostream& operator<<(std::ostream& os, const graph& g) {
  auto name = [](int id) { return id < 0 ? std::string("none") : dynamic::text("%", id); };
  os << "graph(";
  for (std::size_t k = 0; k < g.inputs().size(); ++k) {
    const int id = g.inputs()[k];
    os << (k ? ", " : "") << name(id) << ": "
       << dynamic::value_type_text(g.values()[std::size_t(id)]);
  }
  os << ") {\n";
  for (const graph::capture& c : g.captures()) {
    os << "  " << name(c.id) << ": " << dynamic::value_type_text(g.values()[std::size_t(c.id)])
       << " = " << (c.tensor.requires_grad() ? "parameter" : "constant");
    if (!c.tensor.requires_grad() && c.tensor.size() == 1)  // a number: its value
      os << "(" << c.tensor.at(0) << ")";
    os << "\n";
  }
  for (const graph::step& s : g.steps()) {
    os << "  ";
    for (std::size_t k = 0; k < s.out.size(); ++k) {
      os << (k ? ", " : "") << name(s.out[k]);
      if (s.out[k] >= 0)
        os << ": " << dynamic::value_type_text(g.values()[std::size_t(s.out[k])]);
    }
    os << (s.out.empty() ? "" : " = ") << s.op << "(";
    bool first = true;
    for (int id : s.in) {
      os << (first ? "" : ", ") << name(id);
      first = false;
    }
    for (const dynamic::attr& a : s.attrs.items()) {
      os << (first ? "" : ", ");
      dynamic::print_attr(os, a);
      first = false;
    }
    os << ")" << (s.grad ? "" : "  # no_grad") << "\n";
  }
  os << "  return ";
  for (std::size_t k = 0; k < g.outputs().size(); ++k)
    os << (k ? ", " : "") << name(g.outputs()[k]);
  os << "\n";
  for (const std::vector<std::size_t>& chain : g.fused_chains()) {
    os << "  # one pass:";
    for (std::size_t k : chain)
      os << " " << name(g.steps()[k].out[0]);
    os << "\n";
  }
  return os << "}\n";
}

// The graph as Graphviz DOT: a box per step (its op and output extents), an ellipse per input
// and captured tensor.
inline std::string to_dot(const graph& g) {
  std::ostringstream out;
  out << "digraph fusegrad {\n  node [shape=box, fontname=\"Helvetica\"];\n";
  std::vector<int> made_by(g.values().size(), -1);  // "v<id>" for inputs/captures, "s<k>" else
  for (std::size_t k = 0; k < g.inputs().size(); ++k) {
    const int id = g.inputs()[k];
    out << "  v" << id << " [label=\"input " << k << "\\n"
        << dynamic::value_type_text(g.values()[std::size_t(id)]) << "\", shape=ellipse];\n";
  }
  for (const graph::capture& c : g.captures())
    out << "  v" << c.id << " [label=\"" << (c.tensor.requires_grad() ? "parameter" : "constant")
        << "\\n"
        << dynamic::value_type_text(g.values()[std::size_t(c.id)])
        << "\", shape=ellipse, style=dashed];\n";
  for (std::size_t k = 0; k < g.steps().size(); ++k) {
    const graph::step& s = g.steps()[k];
    out << "  s" << k << " [label=\"" << s.op;
    for (int id : s.out)
      if (id >= 0)
        out << "\\n" << dynamic::value_type_text(g.values()[std::size_t(id)]);
    out << "\"];\n";
    for (int id : s.in)
      if (id >= 0)
        out << "  " << (made_by[std::size_t(id)] >= 0 ? "s" : "v")
            << (made_by[std::size_t(id)] >= 0 ? made_by[std::size_t(id)] : id) << " -> s" << k
            << ";\n";
    for (int id : s.out)
      if (id >= 0 && made_by[std::size_t(id)] < 0)
        made_by[std::size_t(id)] = int(k);
  }
  for (std::size_t k = 0; k < g.outputs().size(); ++k) {
    const int id = g.outputs()[k];
    out << "  out" << k << " [label=\"output " << k << "\", shape=ellipse];\n  "
        << (made_by[std::size_t(id)] >= 0 ? "s" : "v")
        << (made_by[std::size_t(id)] >= 0 ? made_by[std::size_t(id)] : id) << " -> out" << k
        << ";\n";
  }
  out << "}\n";
  return out.str();
}

}  // namespace fg

FG_DIAGNOSTICS_END
