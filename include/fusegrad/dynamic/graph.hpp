// fusegrad/dynamic/graph.hpp — a recorded graph of dynamic ops (fg::graph), the recorder each
// op calls while fg::trace runs a function, and the registry that runs a recorded op again
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/tape.hpp"

#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg {

class graph;

namespace dynamic {

// An op's argument that is not a tensor: an integer (an axis, a flag), a number, a list of
// integers (axes, extents), a dtype, or a generator (a random op's: not saved with the graph).
struct attr {
  using value_type =
      std::variant<std::int64_t, bool, double, std::vector<std::int64_t>, dtype, generator*>;
  const char* name;
  value_type value;

  attr(const char* n, std::integral auto v) : name(n), value(std::int64_t(v)) {}
  attr(const char* n, bool v) : name(n), value(v) {}
  attr(const char* n, double v) : name(n), value(v) {}
  attr(const char* n, std::vector<std::int64_t> v) : name(n), value(std::move(v)) {}
  attr(const char* n, const fg::extents& e)
      : name(n), value(std::vector<std::int64_t>(e.begin(), e.end())) {}
  attr(const char* n, dtype t) : name(n), value(t) {}
  attr(const char* n, generator* g) : name(n), value(g) {}
};

// The arguments of a recorded op, in the order its replay reads them.
class attr_list {
 public:
  attr_list() = default;
  attr_list(std::initializer_list<attr> a) : items_(a) {}
  explicit attr_list(std::vector<attr> a) : items_(std::move(a)) {}
  std::int64_t i(std::size_t k) const { return get<std::int64_t>(k, "an integer"); }
  bool flag(std::size_t k) const { return get<bool>(k, "a bool"); }
  double f(std::size_t k) const { return get<double>(k, "a number"); }
  const std::vector<std::int64_t>& ints(std::size_t k) const {
    return get<std::vector<std::int64_t>>(k, "a list of integers");
  }
  // An int list as a vector of I (axes as int, extents as index_t).
  template <class I> std::vector<I> list(std::size_t k) const {
    const auto& v = ints(k);
    return std::vector<I>(v.begin(), v.end());
  }
  // Extents: at most max_rank of them, none negative, their product within 2^48 elements.
  fg::extents shape(std::size_t k) const {
    const auto& v = ints(k);
    if (v.size() > max_rank)
      throw std::invalid_argument(
          text("fg::graph: attribute ", k, " has ", v.size(), " extents, more than fg::max_rank"));
    fg::extents e = fg::extents::of_rank(v.size());
    double total = 1;
    for (std::size_t a = 0; a < v.size(); ++a) {
      total *= double(v[a]);
      if (v[a] < 0 || total > double(std::int64_t(1) << 48))
        throw std::invalid_argument(text("fg::graph: attribute ", k, " ('", items_[k].name,
                                         "') is not extents of a tensor"));
      e[a] = index_t(v[a]);
    }
    return e;
  }
  fg::dtype type(std::size_t k) const { return get<fg::dtype>(k, "a dtype"); }
  generator* gen(std::size_t k) const { return get<generator*>(k, "a generator"); }
  const std::vector<attr>& items() const { return items_; }

 private:
  // Attribute k as the op reads it; a graph from a file may hold something else there.
  template <class T> const T& get(std::size_t k, const char* kind) const {
    if (k >= items_.size())
      throw std::invalid_argument(
          text("fg::graph: the op reads attribute ", k, " and the step has ", items_.size()));
    if (const T* v = std::get_if<T>(&items_[k].value))
      return *v;
    throw std::invalid_argument(text("fg::graph: the op reads attribute ", k, " ('", items_[k].name,
                                     "') as ", kind,
                                     ", and the step holds "
                                     "something else"));
  }
  std::vector<attr> items_;
};

// A list attribute from any integers (axes, extents, sizes).
template <class R> std::vector<std::int64_t> int_attr(const R& r) {
  return std::vector<std::int64_t>(std::begin(r), std::end(r));
}
inline std::vector<std::int64_t> int_attr(std::initializer_list<int> r) {
  return std::vector<std::int64_t>(r.begin(), r.end());
}

// A recorded op's tensor inputs when it runs again (an undefined var where it was given none).
class replay_inputs {
 public:
  replay_inputs(const var* const* p, std::size_t n) : p_(p), n_(n) {}
  const var& operator[](std::size_t k) const {
    if (k >= n_)  // (a graph from a file may give an op fewer tensors than it reads)
      throw std::invalid_argument(
          text("fg::graph: the op reads tensor input ", k, " and the step gives ", n_));
    return *p_[k];
  }
  std::size_t size() const { return n_; }
  std::vector<var> vector() const {
    std::vector<var> v;
    for (std::size_t k = 0; k < n_; ++k)
      v.push_back(*p_[k]);
    return v;
  }

 private:
  const var* const* p_;
  std::size_t n_;
};

// How a recorded op runs again: from its tensor inputs and its attributes, its outputs, into
// `out` (emptied first; reused from step to step).
using replay_fn = void (*)(replay_inputs in, const attr_list& a, var_list& out);

// The ops a graph can hold, by name: an op's replay is registered when it is first recorded
// (registering every op up front would compile every op into every program that includes
// fusegrad: 5.7 s became 41 s for an empty one).
class op_registry {
 public:
  static op_registry& instance() {
    static op_registry r;
    return r;
  }
  void add(std::string_view name, replay_fn f) {
    const std::lock_guard<std::mutex> hold(lock_);
    ops_.insert_or_assign(std::string(name), f);
  }
  replay_fn find(std::string_view name) const {
    const std::lock_guard<std::mutex> hold(lock_);
    const auto it = ops_.find(name);
    return it == ops_.end() ? nullptr : it->second;
  }

 private:
  mutable std::mutex lock_;
  std::map<std::string, replay_fn, std::less<>> ops_;
};

// An op's outputs, into a replay's list.
inline void put(var_list& out, var&& y) {
  out.push_back(std::move(y));
}
inline void put(var_list& out, std::vector<var>&& ys) {
  for (var& y : ys)
    out.push_back(std::move(y));
}

// The tensors of a list, as a recorded op's inputs.
inline std::vector<const var*> pointers(const std::vector<var>& xs) {
  std::vector<const var*> p;
  for (const var& x : xs)
    p.push_back(&x);
  return p;
}

// A recorded draw runs again from the generator it drew from (the process's default one
// under its lock).
template <class Draw> var draw_from(generator* g, Draw draw) {
  if (trace_state_of_thread().dry) {  // (recording for fg::function: the run that follows draws)
    generator copy = *g;
    if (g == &default_generator().g) {
      const std::lock_guard<std::recursive_mutex> hold(default_generator().lock);
      copy = *g;
    }
    return draw(copy);
  }
  if (g == &default_generator().g)
    return with_default_generator(draw);
  return draw(*g);
}

// A replay lambda (default-constructible: it captures nothing) as a replay_fn.
template <class Replay> void replay_as(replay_inputs in, const attr_list& a, var_list& out) {
  out.clear();
  put(out, Replay{}(in, a));
}

// The replays of what the function's own code makes: detach(), copies between devices, and
// random draws (from the generator recorded as attribute 2).
template <class Make> void draw_into(const attr_list& a, var_list& out, Make make) {
  out.clear();
  out.push_back(draw_from(a.gen(2), [&](generator& g) { return make(g); }));
}
inline replay_fn made_replay(std::string_view op) {
  if (op == "detach")
    return [](replay_inputs x, const attr_list&, var_list& out) {
      out.clear();
      out.push_back(x[0].detach());
    };
  if (op == "to_host")
    return [](replay_inputs x, const attr_list&, var_list& out) {
      out.clear();
      out.push_back(x[0].to(host));
    };
  if (op == "to_cuda")
    return [](replay_inputs x, const attr_list&, var_list& out) {
      out.clear();
      out.push_back(x[0].to(cuda));
    };
  if (op == "rand")
    return [](replay_inputs, const attr_list& a, var_list& out) {
      draw_into(a, out, [&](generator& g) { return var::rand(a.shape(0), g, a.type(1)); });
    };
  if (op == "randn")
    return [](replay_inputs, const attr_list& a, var_list& out) {
      draw_into(a, out, [&](generator& g) { return var::randn(a.shape(0), g, a.type(1)); });
    };
  if (op == "randint")
    return [](replay_inputs, const attr_list& a, var_list& out) {
      draw_into(a, out, [&](generator& g) {
        return var::randint(sindex_t(a.f(3)), sindex_t(a.f(4)), a.shape(0), g, a.type(1));
      });
    };
  return [](replay_inputs, const attr_list& a, var_list& out) {  // randperm
    draw_into(a, out, [&](generator& g) { return var::randperm(a.shape(0)[0], g, a.type(1)); });
  };
}

class tracer;
// The recorder of this thread, when fg::trace runs a function here and no recorded op is
// running (the ops an op calls are part of it, not steps of their own); else null.
inline tracer* tracing() {
  const trace_state& s = trace_state_of_thread();
  return s.depth == 0 ? static_cast<tracer*>(s.recorder) : nullptr;
}

}  // namespace dynamic

// A function of vars, recorded once by fg::trace: its inputs, its steps (each a registered op
// with its attributes), the tensors it captured (parameters by reference, constants), its
// outputs. Running it runs the steps, with no tracing and no Python-like dispatch of the
// function's own code, freeing each value after its last use.
class graph {
 public:
  struct value {
    dtype type = dtype::float32;
    fg::extents shape;
    bool on_device = false;
  };
  struct step {
    std::string op;
    dynamic::replay_fn run = nullptr;
    dynamic::attr_list attrs;
    std::vector<int> in;   // value ids, -1 where the op was given no tensor
    std::vector<int> out;  // value ids, -1 where an output was undefined
    bool grad = true;      // recorded with gradients on (off: made under fg::no_grad)
  };
  struct capture {
    int id;
    var tensor;  // a parameter (requires a gradient) by reference, or a constant
  };

  const std::vector<value>& values() const { return values_; }
  const std::vector<step>& steps() const { return steps_; }
  const std::vector<capture>& captures() const { return captures_; }
  const std::vector<int>& inputs() const { return inputs_; }
  const std::vector<int>& outputs() const { return outputs_; }
  // The captured tensors that require a gradient: the parameters, for an optimiser.
  std::vector<var> parameters() const {
    std::vector<var> p;
    for (const capture& c : captures_)
      if (c.tensor.requires_grad())
        p.push_back(c.tensor);
    return p;
  }
  // A graph from its parts (a loader's; io/graph_file.hpp checks them first).
  static graph from_parts(std::vector<value> values, std::vector<step> steps,
                          std::vector<capture> captures, std::vector<int> inputs,
                          std::vector<int> outputs, std::vector<std::string> warnings) {
    graph g;
    g.values_ = std::move(values);
    g.steps_ = std::move(steps);
    g.captures_ = std::move(captures);
    g.inputs_ = std::move(inputs);
    g.outputs_ = std::move(outputs);
    g.warnings_ = std::move(warnings);
    g.plan();
    return g;
  }
  // What the recording noticed that the graph cannot keep: elements of a traced value read by
  // the function's own code (a branch on them is frozen as it went when traced).
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Runs the graph on inputs of the signature it was traced with (extents and dtypes), under
  // the caller's gradient mode: with it on, the steps are recorded on the tape as the eager
  // ops would be, so backward() reaches the inputs and the captured parameters.
  std::vector<var> run(std::span<const var> in) const;
  std::vector<var> run(std::initializer_list<var> in) const {
    return run(std::span<const var>(in.begin(), in.size()));
  }
  // run() without checking the signature (the caller has: fg::function), into `result`.
  void run_into(std::span<const var> in, dynamic::var_list& result) const;
  // Whether inputs of these extents and dtypes are this graph's signature.
  bool accepts(std::span<const var> in) const {
    if (in.size() != inputs_.size())
      return false;
    for (std::size_t k = 0; k < in.size(); ++k) {
      const value& v = values_[std::size_t(inputs_[k])];
      if (!in[k].defined() || in[k].dtype() != v.type || !(in[k].shape() == v.shape) ||
          in[k].on_device() != v.on_device)
        return false;
    }
    return true;
  }

 private:
  friend class dynamic::tracer;
  int add_value(const var& v) {
    values_.push_back({v.dtype(), v.shape(), v.on_device()});
    return int(values_.size() - 1);
  }
  void plan();

  std::vector<value> values_;
  std::vector<step> steps_;
  std::vector<capture> captures_;
  std::vector<int> inputs_, outputs_;
  std::vector<std::string> warnings_;
  std::vector<std::vector<int>> frees_;  // per step: values read for the last time there
};

namespace dynamic {

// "float32[2, 3]"
inline std::string value_type_text(const graph::value& v) {
  return text(dtype_name(v.type), v.shape.str());
}

// Records the ops a function runs into a graph (fg::trace makes one per call).
class tracer {
 public:
  explicit tracer(graph& g) : g_(g) {}
  tracer(const tracer&) = delete;
  tracer& operator=(const tracer&) = delete;

  // An input of the traced function.
  void add_input(const var& x) { g_.inputs_.push_back(bind(x)); }
  void add_output(const var& y) { g_.outputs_.push_back(id_of(y, "the result")); }
  // The recording is complete: plan when each value is freed.
  void finish() { g_.plan(); }

  // Records one call of the op `op` and computes it: `replay`, a lambda of
  // (std::span<const var> in, const attr_list& a) returning a var or a list of them, runs the op
  // on its tensor arguments `in` (null or undefined where none is given) and `attrs`, now (the
  // ops it calls are not recorded: they are part of it) and whenever the graph runs. Returns its
  // outputs.
  // (Out of line and cold: every op calls it from a branch not taken outside a trace.)
  [[gnu::noinline, gnu::cold]] std::vector<var> record_list(const char* op, attr_list attrs,
                                                            std::span<const var* const> in,
                                                            replay_fn replay) {
    graph::step s = begin_step(op, std::move(attrs), in, replay);
    const var none;
    std::vector<const var*> args;
    for (const var* v : in)
      args.push_back(v ? v : &none);
    var_list out;
    {
      const inside_op depth;
      replay(replay_inputs(args.data(), args.size()), s.attrs, out);
    }
    end_step(std::move(s), out);
    return std::vector<var>(std::make_move_iterator(out.begin()),
                            std::make_move_iterator(out.end()));
  }
  template <class Replay>
  std::vector<var> record_list(const char* op, attr_list attrs,
                               std::initializer_list<const var*> in, Replay) {
    return record_list(op, std::move(attrs), std::span<const var* const>(in.begin(), in.size()),
                       &replay_as<Replay>);
  }
  // The same for an op with one output.
  template <class Replay>
  var record(const char* op, attr_list attrs, std::span<const var* const> in, Replay) {
    return record_list(op, std::move(attrs), in, &replay_as<Replay>).front();
  }
  template <class Replay>
  var record(const char* op, attr_list attrs, std::initializer_list<const var*> in, Replay) {
    return record_list(op, std::move(attrs), std::span<const var* const>(in.begin(), in.size()),
                       &replay_as<Replay>)
        .front();
  }
  // The function's own code made `made` from `from` (detach) or drew it (a random op): a step
  // that makes it again.
  void made(const char* op, const var* from, const var& made, generator* g, double lo, double hi) {
    graph::step s;
    s.op = op;
    s.run = made_replay(op);
    op_registry::instance().add(op, s.run);
    s.grad = grad_enabled();
    if (from)
      s.in.push_back(id_of(*from, op));
    else
      s.attrs = {{"shape", made.shape()},
                 {"dtype", made.dtype()},
                 {"generator", g},
                 {"low", lo},
                 {"high", hi}};
    s.out.push_back(bind(made));
    g_.steps_.push_back(std::move(s));
  }
  // The function's own code read the elements of x (item(), at(), data()).
  void note_read(const impl& x) {
    const auto it = ids_.find(&x);
    if (it == ids_.end() || is_captured(it->second))
      return;
    g_.warnings_.push_back(text("the traced function read the elements of value %", it->second, " ",
                                x.shape.str(),
                                " (item(), at() or data()): what it did with them is frozen "
                                "into the graph as it went in this trace"));
  }

 private:
  graph::step begin_step(const char* op, attr_list attrs, std::span<const var* const> in,
                         replay_fn replay) {
    graph::step s;
    s.op = op;
    s.run = replay;
    op_registry::instance().add(op, replay);  // (a graph loaded later finds it)
    s.attrs = std::move(attrs);
    s.grad = grad_enabled();
    for (const var* v : in)
      s.in.push_back(v && v->defined() ? id_of(*v, op) : -1);
    return s;
  }
  void end_step(graph::step&& s, std::span<const var> out) {
    bool fresh = false;
    for (const var& y : out) {
      if (!y.defined()) {
        s.out.push_back(-1);
      } else if (const auto it = ids_.find(&y.get()); it != ids_.end()) {
        s.out.push_back(it->second);  // an input given back (x.to(its own dtype))
      } else {
        fresh = true;
        s.out.push_back(bind(y));
      }
    }
    if (fresh || s.out.empty())  // (an op with no fresh output and no effect changes nothing)
      g_.steps_.push_back(std::move(s));
  }
  // While alive, the ops this thread calls are part of the op being recorded.
  struct inside_op {
    inside_op() { ++trace_state_of_thread().depth; }
    inside_op(const inside_op&) = delete;
    inside_op& operator=(const inside_op&) = delete;
    ~inside_op() { --trace_state_of_thread().depth; }
  };

  int bind(const var& v) {
    const int id = g_.add_value(v);
    ids_.emplace(&v.get(), id);
    keep_.push_back(v);  // its address names it until the trace ends
    return id;
  }
  bool is_captured(int id) const {
    for (const graph::capture& c : g_.captures_)
      if (c.id == id)
        return true;
    return false;
  }
  // The value id of x; a tensor met for the first time is captured (a parameter, a constant,
  // or a value computed before the trace), unless an op the trace does not record computed it
  // from the inputs.
  int id_of(const var& x, const char* user) {
    if (const auto it = ids_.find(&x.get()); it != ids_.end())
      return it->second;
    const impl& p = x.get();
    if ((p.pending() || p.grad_fn) && from_inputs(p))
      throw autograd_error(
          text("fg::trace: the ", p.shape.str(), " tensor reaching '", user, "' was computed by '",
               p.pending() ? p.op->name : p.grad_fn->name,
               "' from the traced function's inputs, by an op the trace does not record (a user's "
               "fg::kernel, or code that writes elements itself); compute it with fusegrad's ops"));
    const int id = bind(x);
    g_.captures_.push_back({id, x});
    return id;
  }
  // Whether p was computed from an input of the traced function (they require a gradient while
  // it runs, so the tape or a pending chain links them). Only an unknown tensor is walked.
  bool from_inputs(const impl& p) const {
    std::vector<const impl*> to_visit{&p};  // depth first, each tensor once
    std::unordered_set<const impl*> visited;
    while (!to_visit.empty()) {
      const impl* q = to_visit.back();
      to_visit.pop_back();
      if (!visited.insert(q).second)
        continue;
      for (int id : g_.inputs_)
        if (&keep_[std::size_t(id)].get() == q)
          return true;
      if (q->pending())
        for (const auto& a : q->args)
          if (a)
            to_visit.push_back(a.get());
      if (q->grad_fn)
        for (const var& in : q->grad_fn->inputs)
          if (in.defined())
            to_visit.push_back(&in.get());
    }
    return false;
  }

  graph& g_;
  std::unordered_map<const impl*, int> ids_;
  std::vector<var> keep_;
};

// While alive, `t` records the ops of this thread.
class recording {
 public:
  recording(tracer& t, bool dry) : was_(trace_state_of_thread()) {
    trace_state& s = trace_state_of_thread();
    s = {0, dry, &t, [](void* r, const impl& x) { static_cast<tracer*>(r)->note_read(x); },
         [](void* r, const char* op, const var* from, const var& made, generator* g, double lo,
            double hi) { static_cast<tracer*>(r)->made(op, from, made, g, lo, hi); }};
  }
  recording(const recording&) = delete;
  recording& operator=(const recording&) = delete;
  ~recording() { trace_state_of_thread() = was_; }

 private:
  trace_state was_;
};

}  // namespace dynamic

inline void graph::plan() {
  frees_.assign(steps_.size(), {});
  std::vector<std::ptrdiff_t> last(values_.size(), -1);
  for (std::size_t k = 0; k < steps_.size(); ++k)
    for (int v : steps_[k].in)
      if (v >= 0)
        last[std::size_t(v)] = std::ptrdiff_t(k);
  for (int v : outputs_)
    last[std::size_t(v)] = std::ptrdiff_t(steps_.size());  // kept to the end
  for (const capture& c : captures_)
    last[std::size_t(c.id)] = std::ptrdiff_t(steps_.size());  // held by the graph anyway
  for (std::size_t v = 0; v < last.size(); ++v)
    if (last[v] >= 0 && std::size_t(last[v]) < steps_.size())
      frees_[std::size_t(last[v])].push_back(int(v));
}

inline std::vector<var> graph::run(std::span<const var> in) const {
  if (!accepts(in)) {
    std::string m = "fg::graph::run(): the graph was traced for inputs";
    for (int id : inputs_)
      m.append(" ").append(dynamic::value_type_text(values_[std::size_t(id)]));
    m.append(", and is given");
    for (const var& x : in)
      m.append(" ").append(x.defined() ? dynamic::text(dtype_name(x.dtype()), x.shape().str())
                                       : std::string("(undefined)"));
    throw shape_error(m.append(" (fg::function traces again for a new signature)"));
  }
  dynamic::var_list out;
  run_into(in, out);
  return std::vector<var>(std::make_move_iterator(out.begin()), std::make_move_iterator(out.end()));
}

inline void graph::run_into(std::span<const var> in, dynamic::var_list& result) const {
  // The values live in this thread's pool memory (a step of a small model allocates nothing
  // from malloc for them); `args` and `out` are reused from step to step.
  dynamic::pool_vector<var> vals(values_.size());
  for (const capture& c : captures_)
    vals[std::size_t(c.id)] = c.tensor;
  for (std::size_t k = 0; k < in.size(); ++k)
    vals[std::size_t(inputs_[k])] = in[k];
  const var none;
  dynamic::pool_vector<const var*> args;
  dynamic::var_list out;
  for (std::size_t k = 0; k < steps_.size(); ++k) {
    const step& s = steps_[k];
    args.clear();
    for (int v : s.in)
      args.push_back(v >= 0 ? &vals[std::size_t(v)] : &none);
    const dynamic::replay_inputs x(args.data(), args.size());
    if (s.grad) {
      s.run(x, s.attrs, out);
    } else {
      const no_grad off;
      s.run(x, s.attrs, out);
    }
    for (std::size_t j = 0; j < s.out.size() && j < out.size(); ++j)
      if (s.out[j] >= 0)
        vals[std::size_t(s.out[j])] = std::move(out[j]);
    for (int v : frees_[k])
      vals[std::size_t(v)] = var();
  }
  result.clear();
  for (int v : outputs_)
    result.push_back(vals[std::size_t(v)]);
}

}  // namespace fg

FG_DIAGNOSTICS_END
