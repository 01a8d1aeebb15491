// fusegrad/dynamic/tape.hpp — the tape: a node per op that produced a var, and backward()
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/var.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <iterator>
#include <memory_resource>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

FG_DIAGNOSTICS_BEGIN

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
  if (v.on_device())  // (anomaly mode is for debugging: a copy is fine)
    return all_finite(v.to(host));
  if (!is_floating(v.dtype()))
    return true;
  return dispatch_floating(v.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* p = v.data<T>();
    const index_t n = v.size();
    for (index_t i = 0; i < n; ++i)
      if (!std::isfinite(compute_t<T>(p[i])))
        return false;
    return true;
  });
}

using var_list = pool_vector<var>;

// A node's backward rule: a closure kept in pool memory (std::function would malloc it).
class backward_fn {
 public:
  backward_fn() = default;
  template <class F>
  requires(!std::same_as<std::remove_cvref_t<F>, backward_fn>)
      backward_fn(F f) {  // NOLINT: implicit, as std::function's
    pool_allocator<holder<F>> a;
    holder<F>* h = a.allocate(1);
    try {
      ::new (static_cast<void*>(h)) holder<F>(std::move(f));
    } catch (...) {
      a.deallocate(h, 1);
      throw;
    }
    p_ = h;
  }
  backward_fn(backward_fn&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  backward_fn& operator=(backward_fn&& o) noexcept {
    reset();
    p_ = std::exchange(o.p_, nullptr);
    return *this;
  }
  ~backward_fn() { reset(); }
  void reset() noexcept {
    if (p_)
      std::exchange(p_, nullptr)->destroy();
  }
  explicit operator bool() const { return p_ != nullptr; }
  var_list operator()(const var& g) { return p_->call(g); }

 private:
  struct base {
    virtual var_list call(const var& g) = 0;
    virtual void destroy() noexcept = 0;

   protected:
    ~base() = default;
  };
  template <class F> struct holder final : base {
    F f;
    explicit holder(F x) : f(std::move(x)) {}
    var_list call(const var& g) override { return f(g); }
    void destroy() noexcept override {
      pool_allocator<holder> a;
      this->~holder();
      a.deallocate(this, 1);
    }
  };
  base* p_ = nullptr;
};

struct fused_program;

// One recorded op: its inputs, the values its backward needs (with the storage version seen
// when saved), and the rule that maps the output's gradient to the inputs' gradients.
struct node {
  const char* name = "";
  fg::extents shape;  // of its output
  var_list inputs;    // those that require a gradient; undefined where none is needed
  pool_vector<fg::extents> input_shapes;
  pool_vector<std::pair<std::shared_ptr<storage>, unsigned>> saved;  // elements and version
  backward_fn backward;
  std::shared_ptr<const fused_program> fused;  // the chain of ops a fused node runs
  // Set by an op whose gradient reaches only a block of its one input (slice): adds the block's
  // gradient g into `into` (made, zeros of the input's shape, when empty). A tensor sliced T
  // times then costs T blocks, not T zero-filled gradients of its whole size.
  void (*add_block)(const node&, std::shared_ptr<impl>& into, const var& g) = nullptr;
  std::size_t block_axis = 0;
  index_t block_begin = 0;
  bool freed = false;
  // Used by backward() while it runs: the gradient arriving here, and the walk that holds the
  // node (0: none). A walk claims each node it visits and lets go when it ends, so a second
  // walk through the node meanwhile (another thread's) is refused, not interleaved.
  std::shared_ptr<impl> grad_in;
  std::atomic<unsigned long long> walk{0};

  // Keeps v's value (not its graph: a detached handle on the same elements) for the backward.
  var save(const var& v) {
    keep(v.ready().data);
    return v.detach();
  }
  // Notes elements a backward reads, to refuse the backward if they are changed in place.
  void keep(const std::shared_ptr<storage>& s) { saved.emplace_back(s, s->version); }
  // The extents of input k.
  const fg::extents& input_shape(std::size_t k) const;
  // The op that read elements its backward needs and that were changed in place since, or
  // null.
  const char* changed() const;
  // Which inputs want a gradient.
  pool_vector<bool> wants() const {
    pool_vector<bool> w;
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
    pool_vector<std::shared_ptr<node>> chain;
    auto unlink = [&](var_list& ins) {
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

// A fresh node, named `name`, as the producer of `out` (the caller fills it in).
inline node& attach_node(impl& out, const char* name) {
  auto n = make_pooled<node>();
  n->name = name;
  n->shape = out.shape;
  out.requires_grad = true;
  out.grad_fn = std::move(n);
  return *out.grad_fn;
}

inline void check_finite_forward(const var& out, const char* name, const var* in, std::size_t n);

// Records `out` as produced by an op named `name` from `inputs` if any of them requires a
// gradient and recording is on; `make_backward` is called only then (it saves what it needs).
template <class Inputs, class MakeBackward>
void record_range(var& out, const char* name, const Inputs& inputs, MakeBackward make) {
  if (anomaly_enabled())
    check_finite_forward(out, name, std::data(inputs), std::size(inputs));
  if (!grad_enabled())
    return;
  bool any = false;
  for (const var& in : inputs)
    any = any || in.requires_grad();
  if (!any)
    return;
  node& n = attach_node(out.get(), name);
  n.inputs.reserve(std::size(inputs));
  n.input_shapes.reserve(std::size(inputs));
  for (const var& in : inputs) {
    n.inputs.push_back(in.requires_grad() ? in : var());
    n.input_shapes.push_back(in.shape());
  }
  n.backward = make(n);
}
template <class MakeBackward>
void record(var& out, const char* name, std::initializer_list<var> inputs, MakeBackward make) {
  record_range(out, name, inputs, std::move(make));
}
template <class MakeBackward>
void record(var& out, const char* name, const std::vector<var>& inputs, MakeBackward make) {
  record_range(out, name, inputs, std::move(make));
}

inline void check_finite_forward(const var& out, const char* name, const var* in, std::size_t n) {
  if (all_finite(out))
    return;
  std::string m =
      text("fg::detect_anomaly: '", name, "' produced NaN or Inf in its forward (inputs");
  for (std::size_t k = 0; k < n; ++k)
    m.append(" ").append(in[k].shape().str());
  throw autograd_error(text(m, ", output ", out.shape().str(), ")"));
}

// into += g, elementwise, same shape and dtype (gradient accumulation). A fresh gradient no one
// else holds (`adopt`: made by a backward rule) is taken over instead of copied.
// A leaf shared by graphs that two threads differentiate at once (a model's weights) receives
// both gradients: its accumulation is serialised by one of a fixed set of locks, picked by the
// leaf's address.
inline std::mutex& leaf_lock(const void* leaf) {
  static std::array<std::mutex, 64> locks;
  return locks[(reinterpret_cast<std::uintptr_t>(leaf) >> 4) % locks.size()];
}

inline void accumulate(std::shared_ptr<impl>& into, const var& g, bool adopt = false) {
  if (!into && adopt && g.handle().use_count() == 1 && g.get().data.use_count() == 1 &&
      g.get().offset == 0) {
    into = g.handle();
    return;
  }
  const impl& gi = g.ready();
  const device_backend* dev = gi.data->device;
  if (!into) {
    into = copy_on(dev, gi).handle();
    return;
  }
  realise_pending_before_write(into);  // an op given this gradient earlier reads its old value
  if (dev != into->data->device)
    throw autograd_error(text("fg::var::backward(): a gradient of shape ", gi.shape.str(),
                              " reaches a tensor on another device (host vs device)"));
  if (dev)
    return dev->add(gi.type, into->first_byte(), gi.first_byte(), gi.shape.size());
  dispatch_floating(g.dtype(), [&](auto z) {
    using T = decltype(z);
    T* a = into->template elements<T>();
    const T* b = g.data<T>();
    const index_t n = g.size();  // (hoisted: the stores might alias the extents otherwise)
    for (index_t i = 0; i < n; ++i)
      a[i] = T(compute_t<T>(a[i]) + compute_t<T>(b[i]));
  });
}

// A one of dtype t, of one-element shape e, for backward() to start from (a device copies it):
// this thread's, one per dtype and rank, shared by every seed. A walk makes no tensor for it, and
// since it is shared, accumulate() copies it rather than adopt it as anyone's gradient.
inline const var& unit_seed(const fg::extents& e, dtype t) {
  thread_local std::array<var, 4 * (max_rank + 1)> ones;  // (the floating dtypes are 0 to 3)
  var& one = ones[std::size_t(t) * (max_rank + 1) + e.rank()];
  if (!one.defined())
    one = var::full(e, 1.0, t);
  return one;
}

}  // namespace dynamic

namespace dynamic {
// Sets one of this thread's switches for a scope, and puts back what it was.
template <bool& (*Switch)(), bool Value> class switch_scope {
 public:
  switch_scope() : was_(Switch()) { Switch() = Value; }
  switch_scope(const switch_scope&) = delete;
  switch_scope& operator=(const switch_scope&) = delete;
  ~switch_scope() { Switch() = was_; }

 private:
  bool was_;
};
}  // namespace dynamic

// Within its scope (on this thread) every op checks its results: the first NaN or Inf in a
// forward or backward throws fg::autograd_error naming the op and the shapes.
class detect_anomaly : dynamic::switch_scope<dynamic::anomaly_enabled, true> {};

// Within its scope no op is recorded on this thread's tape (evaluation, optimiser updates).
class no_grad : dynamic::switch_scope<dynamic::grad_enabled, false> {};

inline const char* var::op_name() const {
  const dynamic::impl& p = ready();
  return p.grad_fn ? p.grad_fn->name : "";
}

inline void var::backward(bool retain_graph) {
  if (size() != 1) {
    detail::message m;
    m << "fg::var::backward(): the tensor has shape " << shape().str().c_str()
      << "; give a seed of that shape for a non-scalar output";
    throw shape_error(m.c_str());
  }
  if (const dynamic::device_backend* dev = get().device())
    return backward(dynamic::copy_on(dev, dynamic::unit_seed(shape(), dtype()).get()),
                    retain_graph);
  backward(dynamic::unit_seed(shape(), dtype()), retain_graph);
}

inline void var::backward(const var& seed, bool retain_graph) {
  ready();  // a pending op is computed and recorded first
  if (!requires_grad())
    throw autograd_error(
        "fg::var::backward(): the tensor does not require a gradient (no input of the ops that "
        "made it requires one, or it was computed under fg::no_grad)");
  if (seed.get().device() != get().device())
    throw autograd_error(dynamic::text(
        "fg::var::backward(): the seed is on ", seed.on_device() ? "the device" : "the host",
        ", the tensor on ", on_device() ? "the device" : "the host"));
  if (!(seed.shape() == shape()) || seed.dtype() != dtype()) {
    detail::message m;
    m << "fg::var::backward(): the seed is " << seed.shape().str().c_str() << " "
      << dtype_name(seed.dtype()) << ", the tensor " << shape().str().c_str() << " "
      << dtype_name(dtype());
    throw shape_error(m.c_str());
  }
  using dynamic::node;
  if (!get().grad_fn) {  // a leaf: its gradient is the seed
    const std::lock_guard<std::mutex> lock(dynamic::leaf_lock(&get()));
    dynamic::accumulate(get().grad, seed);
    return;
  }
  // Nodes in reverse topological order (each after every node that consumes its output). Each
  // is reachable from this tensor until the walk unlinks it (below), so the lists hold plain
  // pointers. A walk's number is unique in the process: the node it claims (node::walk) says
  // whether this walk, another one, or none holds it.
  static std::atomic<unsigned long long> walks{0};
  const unsigned long long walk = ++walks;
  // The walk's lists are on the stack while they fit (a loss of a few nodes allocates nothing).
  std::array<std::byte, 2048> scratch;
  std::pmr::monotonic_buffer_resource arena(scratch.data(), scratch.size());
  // Freeing the graph as the walk goes may drop the last owner of a node still to be visited:
  // the nodes reached through each unlinked input are held here until the walk ends.
  std::pmr::vector<std::shared_ptr<node>> unlinked(&arena);
  std::pmr::vector<node*> order(&arena), claimed(&arena);
  struct release_claims {  // however the walk ends (the nodes are still held: see `unlinked`)
    std::pmr::vector<node*>& claimed;
    ~release_claims() {
      for (node* n : claimed)
        n->walk.store(0, std::memory_order_release);
    }
  } release{claimed};
  std::pmr::vector<std::pair<node*, bool>> stack(&arena);
  stack.push_back({get().grad_fn.get(), false});
  while (!stack.empty()) {
    auto [n, expanded] = stack.back();
    stack.pop_back();
    if (expanded) {
      order.push_back(n);
      continue;
    }
    unsigned long long holder = 0;
    if (!n->walk.compare_exchange_strong(holder, walk, std::memory_order_acq_rel)) {
      if (holder == walk)
        continue;
      throw autograd_error(dynamic::text(
          "fg::var::backward(): another thread is running backward() through '", n->name,
          "' of this graph; one graph is differentiated by one thread at a time (graphs that "
          "only share leaves, such as a model's weights, may run at once)"));
    }
    claimed.push_back(n);
    stack.push_back({n, true});  // emitted after the inputs pushed next (popped first)
    for (const var& in : n->inputs)
      if (in.defined() && in.get().grad_fn &&
          in.get().grad_fn->walk.load(std::memory_order_acquire) != walk)
        stack.push_back({in.get().grad_fn.get(), false});
  }
  // Every check first, so that a refused backward changes nothing.
  for (node* n : order) {
    if (n->freed)
      throw autograd_error(dynamic::text(
          "fg::var::backward(): the graph through '", n->name,
          "' was freed by an earlier backward(); pass retain_graph = true to the first one to "
          "go through it twice"));
    if (const char* op = n->changed())
      throw autograd_error(
          dynamic::text("fg::var::backward(): a value saved by '", op,
                        "' was modified in place after it was used; its gradient would be wrong"));
  }
  // Gradients wait in the nodes they flow into; none is left there if a rule throws.
  struct drop_pending {
    std::pmr::vector<node*>& order;
    ~drop_pending() {
      for (auto& n : order)
        n->grad_in.reset();
    }
  } drop{order};
  // Leaves receive their gradients at the end: a backward that throws part way (a rule, or
  // detect_anomaly) leaves every .grad() as it was.
  std::pmr::vector<std::pair<var, var>> leaf_grads(&arena);
  // Nothing else flows into the root: its rule reads the seed where it is. (A rule that passes
  // it on has it copied, as it is held here too.)
  get().grad_fn->grad_in = seed.handle();
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    node* n = *it;
    if (!n->grad_in)
      continue;
    const var g(std::move(n->grad_in));
    dynamic::var_list grads;
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
                                           i, " of shape ", n->input_shape(i).str(), " (output ",
                                           n->shape.str(), ")"));
      if (n->add_block) {
        std::shared_ptr<dynamic::impl> whole;  // a leaf's, whole: leaves receive theirs last
        n->add_block(*n, in.get().grad_fn ? in.get().grad_fn->grad_in : whole, grads[i]);
        if (whole)
          leaf_grads.emplace_back(in, var(std::move(whole)));
      } else if (in.get().grad_fn) {
        dynamic::accumulate(in.get().grad_fn->grad_in, grads[i], true);
      } else {
        leaf_grads.emplace_back(in, std::move(grads[i]));
      }
    }
    if (!retain_graph) {         // free the graph as we go: values, closure, and the links back
      for (var& in : n->inputs)  // (first: if this allocation throws, the node is intact)
        if (in.defined() && in.get().grad_fn)
          unlinked.push_back(in.get().grad_fn);
      n->backward.reset();
      n->saved.clear();
      n->fused.reset();
      n->inputs.clear();
      n->freed = true;
    }
  }
  for (auto& [leaf, g] : leaf_grads) {
    const std::lock_guard<std::mutex> lock(dynamic::leaf_lock(&leaf.get()));
    dynamic::accumulate(leaf.get().grad, g, true);
  }
}

}  // namespace fg

// Fused nodes (node::fused, node::changed) are defined there; every user of the tape needs them.
#include "fusegrad/dynamic/fusion.hpp"

FG_DIAGNOSTICS_END
