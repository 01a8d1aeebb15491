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
// A sum or mean of a chain's every element (reduce_chain<Red>).
using reduce_chain_fn = var (*)(std::shared_ptr<fused_program> prog, var_list&& inputs,
                                bool requires_grad, std::size_t rank, bool keepdim);
// What a graph's planner may compute as part of an elementwise chain: an op of the fused table
// (its kernels), or a reduction of every element of a chain.
struct chain_entry {
  const fused_op* elementwise = nullptr;
  reduce_chain_fn reduce = nullptr;
};

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
  // The ops a graph may fuse, registered as they are recorded, by their replay: a step is
  // fused only when it replays through the op registered here (a user's op that shares a
  // built-in's name is not mistaken for it).
  void add_chain_op(replay_fn replay, const fused_op* op) {
    const std::lock_guard<std::mutex> hold(lock_);
    chain_[replay].elementwise = op;
  }
  void add_chain_reduction(replay_fn replay, reduce_chain_fn f) {
    const std::lock_guard<std::mutex> hold(lock_);
    chain_[replay].reduce = f;
  }
  chain_entry find_chain(replay_fn replay) const {
    const std::lock_guard<std::mutex> hold(lock_);
    const auto it = chain_.find(replay);
    return it == chain_.end() ? chain_entry{} : it->second;
  }

 private:
  mutable std::mutex lock_;
  std::map<std::string, replay_fn, std::less<>> ops_;
  std::map<replay_fn, chain_entry> chain_;
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
// outputs. Running it runs a plan made once: elementwise steps of the op table, with the sum or
// mean of all their elements that may follow, run as chains fused across the graph (one pass and
// one node each, their intermediate values never stored, planned without the eager path's
// per-op deferral), the other steps one by one; each value is freed after its last use.
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
  // The chains the plan runs as one pass each, in the order they run: the steps of each (a step
  // may be in several: a value that two chains read is computed in both, as eager does).
  std::vector<std::vector<std::size_t>> fused_chains() const {
    std::vector<std::vector<std::size_t>> out;
    for (const instruction& ins : program_)
      if (ins.chain >= 0)
        out.push_back(chains_[std::size_t(ins.chain)].steps);
    return out;
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
  void run_step(const step& s, dynamic::pool_vector<var>& vals, dynamic::var_list& out) const;

  // Elementwise steps run as one fused pass, and the sum or mean of every element of their
  // result when one follows.
  struct chain {
    dtype type = dtype::float32;
    index_t n = 0;                         // elements of its elementwise result
    std::vector<dynamic::fused_step> ops;  // `wants` here: recorded with gradients on
    std::vector<int> leaves;               // its operands' value ids
    int out = -1;                          // the value it gives
    bool pending = false;                  // an output: given back pending, as eager's is
    dynamic::reduce_chain_fn reduce = nullptr;
    std::size_t rank = 0;  // of the reduced value, before the reduction
    bool keepdim = false, reduce_grad = true;
    std::vector<std::size_t> steps;  // the graph's steps it runs, in order
  };
  // One entry of the plan: a step by itself, or a chain; then the values read for the last time.
  struct instruction {
    std::size_t step = 0;
    int chain = -1;
    std::vector<int> frees;
  };
  bool run_chain(const chain& c, dynamic::pool_vector<var>& vals) const;

  std::vector<value> values_;
  std::vector<step> steps_;
  std::vector<capture> captures_;
  std::vector<int> inputs_, outputs_;
  std::vector<std::string> warnings_;
  std::vector<chain> chains_;
  std::vector<instruction> program_;
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

// The plan. An elementwise step of the op table (registered as one by the op when recorded)
// whose operands and result share a floating dtype in host memory, each operand of the result's
// elements or of one, is deferred as the eager path defers it, and so is computed where eager
// would compute it: as one chain of every deferred step it reads, where a step that is not
// deferred reads it or writes in place (an effect), and as part of the chain of a sum or mean of
// every element, which does not store it; an output is given back pending, as eager's; a chain
// longer than fusion_limit ops has its largest operand computed first. Values are the eager
// path's bit for bit, and so are gradients but where a chain meets an op that defers by itself
// (where, clamp, a dtype conversion), which eager fuses into one chain and the plan does not:
// a leaf's gradient contributions may then be added in another order (its last bits).
// After each entry of the plan, the values read there for the last time are freed (the outputs
// and captured tensors are kept).
inline void graph::plan() {
  using dynamic::fusion_limit;
  chains_.clear();
  program_.clear();
  const std::size_t S = steps_.size();
  auto& registry = dynamic::op_registry::instance();
  std::vector<dynamic::chain_entry> entry(S);
  std::vector<int> made_by(values_.size(), -1);
  // A recorded graph makes each value once, after what it reads, and never an input or captured
  // tensor; a graph from a file that does not runs step by step, unplanned.
  std::vector<char> known(values_.size(), 0);
  bool well_formed = true;
  auto make_known = [&](int v) {
    well_formed = well_formed && !known[std::size_t(v)];
    known[std::size_t(v)] = 1;
  };
  for (int v : inputs_)
    make_known(v);
  for (const capture& c : captures_)
    make_known(c.id);
  for (const step& s : steps_) {
    for (int v : s.in)
      well_formed = well_formed && (v < 0 || known[std::size_t(v)]);
    for (int v : s.out)
      if (v >= 0)
        make_known(v);
  }
  // last_read[v]: the last step that reads v (S for an output)
  std::vector<std::size_t> last_read(values_.size(), 0);
  for (std::size_t k = 0; k < S; ++k)
    for (int v : steps_[k].in)
      if (v >= 0)
        last_read[std::size_t(v)] = k;
  for (int v : outputs_)
    last_read[std::size_t(v)] = S;
  for (std::size_t k = 0; k < S && well_formed; ++k) {
    const step& s = steps_[k];
    if (s.out.size() != 1 || s.out[0] < 0 || std::count(s.in.begin(), s.in.end(), -1))
      continue;
    made_by[std::size_t(s.out[0])] = int(k);
    const value& y = values_[std::size_t(s.out[0])];
    if ((y.type != dtype::float32 && y.type != dtype::float64) || y.on_device)
      continue;
    const dynamic::chain_entry e = registry.find_chain(s.run);
    if (e.elementwise && e.elementwise->arity == s.in.size() &&
        std::all_of(s.in.begin(), s.in.end(), [&](int v) {
          const value& x = values_[std::size_t(v)];
          return x.type == y.type && !x.on_device &&
                 (x.shape.size() == y.shape.size() || x.shape.size() == 1);
        }))
      entry[k].elementwise = e.elementwise;
    else if (e.reduce && s.in.size() == 1 && s.attrs.items().size() == 2) {
      const auto* axes = std::get_if<std::vector<std::int64_t>>(&s.attrs.items()[0].value);
      const auto* keep = std::get_if<bool>(&s.attrs.items()[1].value);
      if (axes && axes->empty() && keep && values_[std::size_t(s.in[0])].type == y.type)
        entry[k].reduce = e.reduce;
    }
  }
  // ops[v]: v is deferred, with this many ops in its chain as eager counts them; 0: stored
  std::vector<unsigned> ops(values_.size(), 0);
  // A chain of the deferred steps v reads, ending in v's step (and `reduce`, step k, if given).
  auto add_chain = [&](int v, std::size_t k, const step* reduce) {
    chain c;
    c.pending = k == S;
    std::vector<int> done;  // values computed in the chain, in the order of c.ops
    auto add = [&](auto& self, int u) -> std::int16_t {
      if (auto it = std::find(done.begin(), done.end(), u); it != done.end())
        return std::int16_t(it - done.begin());
      const std::size_t j = std::size_t(made_by[std::size_t(u)]);
      const step& t = steps_[j];
      dynamic::fused_step f;
      f.op = entry[j].elementwise;
      for (std::size_t a = 0; a < t.in.size(); ++a) {
        const int x = t.in[a];
        if (ops[std::size_t(x)]) {
          f.args[a] = self(self, x);
          continue;
        }
        auto it = std::find(c.leaves.begin(), c.leaves.end(), x);
        if (it == c.leaves.end())
          it = c.leaves.insert(c.leaves.end(), x);
        f.args[a] = std::int16_t(-(it - c.leaves.begin()) - 1);
      }
      f.wants = t.grad;
      c.ops.push_back(f);
      c.steps.push_back(j);
      done.push_back(u);
      return std::int16_t(c.ops.size() - 1);
    };
    add(add, v);
    c.out = v;
    const value& y = values_[std::size_t(v)];
    c.type = y.type;
    c.n = y.shape.size();
    if (reduce) {
      c.out = reduce->out[0];
      c.reduce = entry[k].reduce;
      c.rank = y.shape.rank();
      c.keepdim = std::get<bool>(reduce->attrs.items()[1].value);
      c.reduce_grad = reduce->grad;
      c.steps.push_back(k);
    } else {
      ops[std::size_t(v)] = 0;  // stored from here on
    }
    program_.push_back({k, int(chains_.size()), {}});
    chains_.push_back(std::move(c));
  };
  for (std::size_t k = 0; k < S; ++k) {
    const step& s = steps_[k];
    if (entry[k].elementwise) {
      auto count = [&] {
        unsigned n = 1;
        for (int v : s.in)
          n += ops[std::size_t(v)];
        return n;
      };
      while (count() > fusion_limit) {  // eager's cut: its largest operand chain is computed
        int cut = s.in[0];
        for (int v : s.in)
          if (ops[std::size_t(v)] > ops[std::size_t(cut)])
            cut = v;
        add_chain(cut, k, nullptr);
      }
      ops[std::size_t(s.out[0])] = count();
    } else if (entry[k].reduce && ops[std::size_t(s.in[0])]) {
      add_chain(s.in[0], k, &s);
    } else {
      for (int v : s.in)
        if (v >= 0 && ops[std::size_t(v)])
          add_chain(v, k, nullptr);
      if (s.out.empty())  // an effect (a write in place): eager computes every pending op first
        for (std::size_t v = 0; v < values_.size(); ++v)
          if (ops[v] && last_read[v] > k)
            add_chain(int(v), k, nullptr);
      program_.push_back({k, -1, {}});
    }
  }
  for (int v : outputs_)
    if (ops[std::size_t(v)])
      add_chain(v, S, nullptr);
  std::vector<std::ptrdiff_t> last(values_.size(), -1);
  auto reads = [&](const instruction& ins, auto f) {
    if (ins.chain < 0) {
      for (int v : steps_[ins.step].in)
        if (v >= 0)
          f(v);
      return;
    }
    const chain& c = chains_[std::size_t(ins.chain)];
    for (int v : c.leaves)
      f(v);
    for (std::size_t j : c.steps)  // (made and read inside when the chain runs step by step)
      if (steps_[j].out[0] != c.out)
        f(steps_[j].out[0]);
  };
  for (std::size_t k = 0; k < program_.size(); ++k)
    reads(program_[k], [&](int v) { last[std::size_t(v)] = std::ptrdiff_t(k); });
  for (int v : outputs_)
    last[std::size_t(v)] = std::ptrdiff_t(program_.size());  // kept to the end
  for (const capture& c : captures_)
    last[std::size_t(c.id)] = std::ptrdiff_t(program_.size());  // held by the graph anyway
  for (std::size_t v = 0; v < last.size(); ++v)
    if (last[v] >= 0 && std::size_t(last[v]) < program_.size())
      program_[std::size_t(last[v])].frees.push_back(int(v));
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

inline void graph::run_step(const step& s, dynamic::pool_vector<var>& vals,
                            dynamic::var_list& out) const {
  static const var none;
  std::array<const var*, 8> few;  // most ops read at most a few tensors
  dynamic::pool_vector<const var*> many;
  const var** args = few.data();
  if (s.in.size() > few.size()) {
    many.resize(s.in.size());
    args = many.data();
  }
  for (std::size_t k = 0; k < s.in.size(); ++k)
    args[k] = s.in[k] >= 0 ? &vals[std::size_t(s.in[k])] : &none;
  const dynamic::replay_inputs x(args, s.in.size());
  if (s.grad) {
    s.run(x, s.attrs, out);
  } else {
    const no_grad off;
    s.run(x, s.attrs, out);
  }
  for (std::size_t j = 0; j < s.out.size() && j < out.size(); ++j)
    if (s.out[j] >= 0)
      vals[std::size_t(s.out[j])] = std::move(out[j]);
}

// Runs chain c as one pass, its operands read from `vals` and its value stored there (what the
// eager path's deferral would do for these steps, without building a pending value per op).
// False where fusion is off (fg::no_fusion, detect_anomaly) or an operand is itself pending (a
// step run by itself deferred it, as where() does): its steps then run one by one, as eager.
inline bool graph::run_chain(const chain& c, dynamic::pool_vector<var>& vals) const {
  using namespace dynamic;
  if (!fusion_enabled() || anomaly_enabled() || c.n == 0)
    return false;
  // Each operand as recorded: a value whose extents depend on the data (masked_select's) may
  // come with others, and a pending one (where() defers) joins the chain as eager's does.
  for (int id : c.leaves) {
    const var& x = vals[std::size_t(id)];
    const value& v = values_[std::size_t(id)];
    if (!x.defined() || x.get().pending() || x.dtype() != c.type || x.on_device() ||
        !(x.shape() == v.shape))
      return false;
  }
  if (c.pending) {  // returned: its ops as pending values, as eager's deferral leaves them
    const bool grad = grad_enabled();
    dynamic::pool_vector<std::shared_ptr<impl>> made(c.ops.size());
    for (std::size_t k = 0; k < c.ops.size(); ++k) {
      const fused_step& s = c.ops[k];
      std::array<std::shared_ptr<impl>, 3> args;
      bool wants = false;
      for (unsigned a = 0; a < s.op->arity; ++a) {
        args[a] = s.args[a] >= 0
                      ? made[std::size_t(s.args[a])]
                      : vals[std::size_t(c.leaves[std::size_t(-s.args[a] - 1)])].handle();
        wants = wants || args[a]->requires_grad;
      }
      const int out = steps_[c.steps[k]].out[0];
      made[k] = pending_value(s.op, c.type, values_[std::size_t(out)].shape, nullptr,
                              std::span(args.data(), s.op->arity), grad && s.wants && wants)
                    .handle();
    }
    vals[std::size_t(c.out)] = var(made.back());
    return true;
  }
  auto prog = make_pooled<fused_program>();
  prog->type = c.type;
  prog->n = c.n;
  prog->leaves.reserve(c.leaves.size());
  prog->steps.assign(c.ops.begin(), c.ops.end());
  var_list inputs;
  inputs.reserve(c.leaves.size());
  const bool grad = grad_enabled();
  for (int id : c.leaves) {
    const var& x = vals[std::size_t(id)];
    const impl& p = x.get();
    const bool wants = grad && p.requires_grad;
    prog->leaves.push_back(
        {p.data, p.offset, p.data->version, p.shape, p.shape.size() != c.n, wants});
    inputs.push_back(wants ? x : var());
  }
  for (fused_step& s : prog->steps)  // (recorded with gradients on, and they are on now)
    s.wants = s.wants && grad;
  plan_backward(*prog, inputs);
  const bool root_wants = prog->steps.back().wants;  // (the result's adjoint is always given)
  const char* name = prog->steps.back().op->name;
  if (c.reduce) {
    vals[std::size_t(c.out)] = c.reduce(std::move(prog), std::move(inputs),
                                        c.reduce_grad && root_wants, c.rank, c.keepdim);
    return true;
  }
  auto y = make_pooled<impl>();
  y->type = c.type;
  y->shape = values_[std::size_t(c.out)].shape;
  y->requires_grad = root_wants;
  compute_chain(*y, std::move(prog), std::move(inputs), name);
  vals[std::size_t(c.out)] = var(std::move(y));
  return true;
}

inline void graph::run_into(std::span<const var> in, dynamic::var_list& result) const {
  // The values live in this thread's pool memory (a step of a small model allocates nothing
  // from malloc for them); `out` is reused from step to step.
  dynamic::pool_vector<var> vals(values_.size());
  for (const capture& c : captures_)
    vals[std::size_t(c.id)] = c.tensor;
  for (std::size_t k = 0; k < in.size(); ++k)
    vals[std::size_t(inputs_[k])] = in[k];
  dynamic::var_list out;
  for (const instruction& ins : program_) {
    if (ins.chain < 0) {
      run_step(steps_[ins.step], vals, out);
    } else if (const chain& c = chains_[std::size_t(ins.chain)]; !run_chain(c, vals)) {
      for (std::size_t k : c.steps)
        run_step(steps_[k], vals, out);
    }
    for (int v : ins.frees)
      vals[std::size_t(v)] = var();
  }
  result.clear();
  for (int v : outputs_)
    result.push_back(vals[std::size_t(v)]);
}

}  // namespace fg

FG_DIAGNOSTICS_END
