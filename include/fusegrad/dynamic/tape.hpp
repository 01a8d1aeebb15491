// fusegrad/dynamic/tape.hpp — the tape: a node per op that produced a var, and backward()
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/var.hpp"

#include <cmath>
#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace fg {

namespace dynamic {

// Whether ops record on this thread's tape (fg::no_grad turns it off). Each thread has its own
// setting and builds its own graphs. A leaf (a parameter) used by graphs on two threads must
// not have backward() run through it on both at once: its .grad() is accumulated unlocked.
inline bool& grad_enabled() {
  thread_local bool on = true;
  return on;
}

// Anomaly mode (fg::detect_anomaly): every op checks that its forward and backward give finite
// values, and the first that does not throws, naming itself and the shapes involved.
inline bool& anomaly_enabled() {
  thread_local bool on = false;
  return on;
}
inline bool all_finite(const var& v) {
  return dispatch(v.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* p = v.data<T>();
    for (index_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(p[i]))
        return false;
    return true;
  });
}

// One recorded op: its inputs, the values its backward needs (with the storage version seen
// when saved), and the rule that maps the output's gradient to the inputs' gradients.
struct node {
  const char* name = "";
  fg::extents shape;        // of its output
  std::vector<var> inputs;  // those that require a gradient; undefined where none is needed
  std::vector<fg::extents> input_shapes;
  std::vector<std::pair<var, unsigned>> saved;
  std::function<std::vector<var>(const var& grad_out)> backward;
  bool freed = false;

  // Keeps v's value (not its graph: a detached handle on the same elements) for the backward.
  var save(const var& v) {
    var d = v.detach();
    saved.emplace_back(d, v.get().data->version);
    return d;
  }
  // Which inputs want a gradient.
  std::vector<bool> wants() const {
    std::vector<bool> w;
    for (const var& in : inputs)
      w.push_back(in.defined());
    return w;
  }
  node() = default;
  node(const node&) = delete;
  node& operator=(const node&) = delete;
  // Only `inputs` links a node to the nodes before it (saved values are detached). Dropping a
  // long chain would recurse once per op; this unlinks it iteratively instead.
  ~node() {
    std::vector<std::shared_ptr<node>> chain;
    auto unlink = [&](std::vector<var>& ins) {
      for (var& in : ins)
        if (in.defined() && in.handle().use_count() == 1 && in.get().grad_fn.use_count() == 1)
          chain.push_back(std::move(in.get().grad_fn));
      ins.clear();
    };
    unlink(inputs);
    while (!chain.empty()) {
      std::shared_ptr<node> n = std::move(chain.back());
      chain.pop_back();
      unlink(n->inputs);
    }
  }
};

// Records `out` as produced by an op named `name` from `inputs` if any of them requires a
// gradient and recording is on; `make_backward` is called only then (it saves what it needs).
template <class Inputs, class MakeBackward>
void record_range(var& out, const char* name, const Inputs& inputs, MakeBackward make) {
  if (anomaly_enabled() && !all_finite(out)) {
    std::string m =
        text("fg::detect_anomaly: '", name, "' produced NaN or Inf in its forward (inputs");
    for (const var& in : inputs)
      m.append(" ").append(in.shape().str());
    throw autograd_error(text(m, ", output ", out.shape().str(), ")"));
  }
  if (!grad_enabled())
    return;
  bool any = false;
  for (const var& in : inputs)
    any = any || in.requires_grad();
  if (!any)
    return;
  auto n = std::make_shared<node>();
  n->name = name;
  n->shape = out.shape();
  for (const var& in : inputs) {
    n->inputs.push_back(in.requires_grad() ? in : var());
    n->input_shapes.push_back(in.shape());
  }
  n->backward = make(*n);
  out.get().requires_grad = true;
  out.get().grad_fn = std::move(n);
}
template <class MakeBackward>
void record(var& out, const char* name, std::initializer_list<var> inputs, MakeBackward make) {
  record_range(out, name, inputs, std::move(make));
}
template <class MakeBackward>
void record(var& out, const char* name, const std::vector<var>& inputs, MakeBackward make) {
  record_range(out, name, inputs, std::move(make));
}

// into += g, elementwise, same shape and dtype (gradient accumulation). A fresh gradient no one
// else holds (`adopt`: made by a backward rule) is taken over instead of copied.
inline void accumulate(std::shared_ptr<impl>& into, const var& g, bool adopt = false) {
  if (!into && adopt && g.handle().use_count() == 1 && g.get().data.use_count() == 1 &&
      g.get().offset == 0) {
    into = g.handle();
    return;
  }
  if (!into) {
    var copy = var::empty(g.shape(), g.dtype());
    dispatch(g.dtype(), [&](auto z) {
      using T = decltype(z);
      std::memcpy(copy.data<T>(), g.data<T>(), g.size() * sizeof(T));
    });
    into = copy.handle();
    return;
  }
  var acc(into);
  dispatch(g.dtype(), [&](auto z) {
    using T = decltype(z);
    T* a = acc.data<T>();
    const T* b = g.data<T>();
    for (index_t i = 0; i < g.size(); ++i)
      a[i] += b[i];
  });
}

}  // namespace dynamic

// Within its scope (on this thread) every op checks its results: the first NaN or Inf in a
// forward or backward throws fg::autograd_error naming the op and the shapes.
class detect_anomaly {
 public:
  detect_anomaly() : was_(dynamic::anomaly_enabled()) { dynamic::anomaly_enabled() = true; }
  detect_anomaly(const detect_anomaly&) = delete;
  detect_anomaly& operator=(const detect_anomaly&) = delete;
  ~detect_anomaly() { dynamic::anomaly_enabled() = was_; }

 private:
  bool was_;
};

// Within its scope no op is recorded on this thread's tape (evaluation, optimiser updates).
class no_grad {
 public:
  no_grad() : was_(dynamic::grad_enabled()) { dynamic::grad_enabled() = false; }
  no_grad(const no_grad&) = delete;
  no_grad& operator=(const no_grad&) = delete;
  ~no_grad() { dynamic::grad_enabled() = was_; }

 private:
  bool was_;
};

inline const char* var::op_name() const {
  return get().grad_fn ? get().grad_fn->name : "";
}

inline void var::backward(bool retain_graph) {
  if (size() != 1) {
    detail::message m;
    m << "fg::var::backward(): the tensor has shape " << shape().str().c_str()
      << "; give a seed of that shape for a non-scalar output";
    throw shape_error(m.c_str());
  }
  backward(var::ones(shape(), dtype()), retain_graph);
}

inline void var::backward(const var& seed, bool retain_graph) {
  if (!requires_grad())
    throw autograd_error(
        "fg::var::backward(): the tensor does not require a gradient (no input of the ops that "
        "made it requires one, or it was computed under fg::no_grad)");
  if (!(seed.shape() == shape()) || seed.dtype() != dtype()) {
    detail::message m;
    m << "fg::var::backward(): the seed is " << seed.shape().str().c_str() << " "
      << dtype_name(seed.dtype()) << ", the tensor " << shape().str().c_str() << " "
      << dtype_name(dtype());
    throw shape_error(m.c_str());
  }
  using dynamic::node;
  if (!get().grad_fn) {  // a leaf: its gradient is the seed
    dynamic::accumulate(get().grad, seed);
    return;
  }
  // Nodes in reverse topological order (each after every node that consumes its output), held
  // here: freeing the graph as backward goes may drop the last other owner of a node.
  std::vector<std::shared_ptr<node>> order;
  std::unordered_set<node*> seen;
  std::vector<std::pair<std::shared_ptr<node>, bool>> stack{{get().grad_fn, false}};
  while (!stack.empty()) {
    auto [n, expanded] = std::move(stack.back());
    stack.pop_back();
    if (expanded) {
      order.push_back(std::move(n));
      continue;
    }
    if (!seen.insert(n.get()).second)
      continue;
    stack.push_back({n, true});  // emitted after the inputs pushed next (popped first)
    for (const var& in : n->inputs)
      if (in.defined() && in.get().grad_fn)
        stack.push_back({in.get().grad_fn, false});
  }
  // Every check first, so that a refused backward changes nothing.
  for (const auto& np : order) {
    node* n = np.get();
    if (n->freed)
      throw autograd_error(dynamic::text(
          "fg::var::backward(): the graph through '", n->name,
          "' was freed by an earlier backward(); pass retain_graph = true to the first one to "
          "go through it twice"));
    for (const auto& [v, version] : n->saved)
      if (v.get().data->version != version)
        throw autograd_error(dynamic::text(
            "fg::var::backward(): a value saved by '", n->name,
            "' was modified in place after it was used; its gradient would be wrong"));
  }
  std::unordered_map<node*, std::shared_ptr<dynamic::impl>> pending;
  dynamic::accumulate(pending[get().grad_fn.get()], seed);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    node* n = it->get();
    auto found = pending.find(n);
    if (found == pending.end() || !found->second)
      continue;
    const var g(found->second);
    std::vector<var> grads;
    {
      no_grad off;  // gradients of gradients are not recorded (no second order here)
      grads = n->backward(g);
    }
    for (std::size_t i = 0; i < n->inputs.size(); ++i) {
      const var& in = n->inputs[i];
      if (!in.defined() || !grads[i].defined())
        continue;
      if (dynamic::anomaly_enabled() && !dynamic::all_finite(grads[i]))
        throw autograd_error(dynamic::text("fg::detect_anomaly: '", n->name,
                                           "' produced NaN or Inf in its backward, for its input ",
                                           i, " of shape ", n->input_shapes[i].str(), " (output ",
                                           n->shape.str(), ")"));
      if (in.get().grad_fn)
        dynamic::accumulate(pending[in.get().grad_fn.get()], grads[i], true);
      else
        dynamic::accumulate(in.get().grad, grads[i], true);
    }
    pending.erase(found);
    if (!retain_graph) {  // free the graph as we go: values, closure, and the links back
      n->backward = nullptr;
      n->saved.clear();
      n->inputs.clear();
      n->freed = true;
    }
  }
}

}  // namespace fg
