// fusegrad/dynamic/var.hpp — fg::var: an eager, reference-counted tensor with run-time dtype and
// extents, the define-by-run half of fusegrad
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/device.hpp"
#include "fusegrad/core/error.hpp"
#include "fusegrad/core/message.hpp"
#include "fusegrad/core/random.hpp"
#include "fusegrad/core/simd.hpp"
#include "fusegrad/dynamic/dtype.hpp"
#include "fusegrad/dynamic/pool.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

FG_DIAGNOSTICS_BEGIN

static_assert(
    FG_HAS_EXCEPTIONS,
    "fusegrad/dynamic needs exceptions: its errors are thrown (the static path does not)");

namespace fg {

// The extents of a var: up to fg::max_rank of them, known at run time.
class extents {
 public:
  extents() = default;
  extents(std::initializer_list<index_t> d) {
    if (d.size() > max_rank)
      throw std::invalid_argument("fg::extents: more than fg::max_rank dimensions");
    for (index_t x : d)
      d_[rank_++] = x;
  }
  static extents of_rank(std::size_t r) {
    if (r > max_rank)
      throw std::invalid_argument("fg::extents: more than fg::max_rank dimensions");
    extents e;
    e.rank_ = r;
    return e;
  }
  std::size_t rank() const { return rank_; }
  index_t size() const {
    index_t n = 1;
    for (std::size_t i = 0; i < rank_; ++i)
      n *= d_[i];
    return n;
  }
  index_t& operator[](std::size_t i) { return d_[i]; }
  index_t operator[](std::size_t i) const { return d_[i]; }
  const index_t* begin() const { return d_.data(); }
  const index_t* end() const { return d_.data() + rank_; }
  friend bool operator==(const extents& a, const extents& b) {
    if (a.rank_ != b.rank_)
      return false;
    for (std::size_t i = 0; i < a.rank_; ++i)
      if (a.d_[i] != b.d_[i])
        return false;
    return true;
  }
  // "[2, 3]"
  std::string str() const {
    detail::message m;
    m << "[";
    for (std::size_t i = 0; i < rank_; ++i) {
      if (i)
        m << ", ";
      m << d_[i];
    }
    m << "]";
    return m.c_str();
  }

 private:
  std::array<index_t, max_rank> d_{};
  std::size_t rank_ = 0;
};

// Thrown for misuse of dynamic tensors the types cannot catch: a second backward through a
// freed graph, a value changed in place while the tape still needs it, mixed dtypes.
class autograd_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Thrown for an index outside a tensor's extents; the message names the index, the axis and the
// shape.
class index_error : public std::out_of_range {
 public:
  using std::out_of_range::out_of_range;
};

class var;

namespace dynamic {

// Error text built by appending (GCC 12 warns falsely on "literal" + std::string temporaries).
inline void put(std::string& s, const char* p) {
  s.append(p);
}
inline void put(std::string& s, const std::string& p) {
  s.append(p);
}
inline void put(std::string& s, double v) {
  s.append(std::to_string(v));
}
template <std::integral I> void put(std::string& s, I v) {
  s.append(std::to_string(v));
}
template <class... P> std::string text(const P&... p) {
  std::string s;
  (put(s, p), ...);
  return s;
}

// Calls f(idx) for every element of extents e in row-major order, idx holding its coordinates:
// the walk of the ops whose element map is not a stride (gather, scatter, index maps, nonzero).
template <class F> void for_each_index(const fg::extents& e, F f) {
  std::array<index_t, max_rank> idx{};
  for (index_t n = 0, total = e.size(); n < total; ++n) {
    f(std::as_const(idx));
    for (std::size_t a = e.rank(); a-- > 0;) {
      if (++idx[a] < e[a])
        break;
      idx[a] = 0;
    }
  }
}

struct node;

// Element strides along each axis of a run-time shape.
using strides = std::array<std::ptrdiff_t, max_rank>;

struct fused_program;
struct fused_op;

// What handles elements that are not in host memory: a var's storage points to its backend.
// The CUDA one comes with <fusegrad/cuda.hpp>, compiled by nvcc; host code only calls through
// these pointers, so a program whose other files never include a CUDA header still links.
struct device_backend {
  const char* name;                      // "CUDA"
  bool (*supports)(const fused_op* op);  // whether a chain there can hold this op
  void* (*allocate)(std::size_t bytes);
  void (*release)(void* p) noexcept;
  void (*zero)(void* p, std::size_t bytes);
  void (*to_host)(void* dst, const void* src, std::size_t bytes);  // returns once copied
  void (*from_host)(void* dst, const void* src, std::size_t bytes);
  void (*copy)(void* dst, const void* src, std::size_t bytes);  // within the device
  void (*add)(dtype t, void* into, const void* g, index_t n);   // into += g
  void (*scale)(dtype t, void* x, index_t n, double s);         // x *= s
  // Broadcasting. `s` holds the small tensor's strides seen from the big extents e (0 along the
  // axes it is broadcast over): spread writes each big element from the small element it reads,
  // fold writes each small element as the sum of the big elements that read it; both times
  // `scale`.
  void (*spread)(dtype t, const void* small, void* big, const fg::extents& e, const strides& s,
                 double scale);
  void (*fold)(dtype t, const void* big, void* small, const fg::extents& e, const strides& s,
               double scale);
  // C[m x n] (+)= op(A) op(B), row-major, op transposing when asked.
  void (*gemm)(dtype t, index_t m, index_t n, index_t k, const void* a, bool ta, const void* b,
               bool tb, void* c, bool add);
  // A chain's values, into `out`.
  void (*realise)(const fused_program& p, void* out);
  // A chain's pass: the sum of its values times `scale` into *total (one element on the device)
  // when given, and the gradients of its leaves into grads[k] (null where not wanted; a
  // one-element leaf's is added to, so it starts zeroed), the result's gradient being g (the
  // result's shape, on the device) or, without it, `seed` for every element.
  void (*sweep)(const fused_program& p, const void* g, double seed, void* total, double scale,
                void* const* grads);
};

// The CUDA backend, once <fusegrad/cuda.hpp> is part of the program.
inline const device_backend*& cuda_backend() {
  static const device_backend* b = nullptr;
  return b;
}

// Element storage: bytes shared by a tensor and its views, in host memory or on a device;
// SIMD-aligned where fusegrad allocated them, element-aligned where they are a file's. `version`
// counts in-place writes, so the tape can tell a saved value was changed under it.
struct storage {
  // Up to this many bytes (a scalar, a loss, a small vector) are kept in the record itself:
  // one allocation less for each of the several small tensors every training step makes.
  static constexpr std::size_t local_bytes = 64;

  void* bytes = nullptr;
  std::size_t size = 0;
  unsigned version = 0;
  const device_backend* device = nullptr;  // null: host memory
  explicit storage(std::size_t n, const device_backend* on = nullptr) : size(n), device(on) {
    if (n)
      bytes = on ? on->allocate(n) : n <= local_bytes ? local : pool_acquire(n);
  }
  // Host bytes owned elsewhere (a file's mapping, io/safetensors.hpp): `keeper` keeps them alive
  // while any tensor reads them, and they are never freed here.
  storage(void* external, std::size_t n, std::shared_ptr<const void> keeper)
      : bytes(external), size(n), owner(std::move(keeper)) {}
  storage(const storage&) = delete;
  storage& operator=(const storage&) = delete;
  ~storage() {
    if (!bytes || bytes == local || owner)
      return;
    if (device)
      device->release(bytes);
    else
      pool_release(bytes, size);
  }

 private:
  std::shared_ptr<const void> owner;
  alignas(simd::alignment) std::byte local[local_bytes];
};

struct impl;

// The pending ops of one thread (fusion.hpp registers them): an in-place write computes them
// all first, so that they see the values they were given, as eager ops would.
struct pending_list {
  std::vector<impl*> items;
  void remove(impl* p) {
    auto it = std::find(items.rbegin(), items.rend(), p);  // most often the newest
    if (it == items.rend())
      return;
    *it = items.back();
    items.pop_back();
  }
  pending_list() = default;
  pending_list(const pending_list&) = delete;
  pending_list& operator=(const pending_list&) = delete;
  inline ~pending_list();
};
inline pending_list& pending_ops() {
  thread_local pending_list list;
  return list;
}

struct impl {
  dtype type = dtype::float32;
  fg::extents shape;
  std::shared_ptr<storage> data;
  std::size_t offset = 0;  // in elements, for views
  bool requires_grad = false;
  std::shared_ptr<impl> grad;     // accumulated by backward (leaves)
  std::shared_ptr<node> grad_fn;  // the op that produced this value (null for leaves)
  // A pending elementwise op (fusion.hpp): `data` stays empty until the value is read, so that
  // a chain of such ops runs as one pass and is one node on the tape.
  const fused_op* op = nullptr;
  std::array<std::shared_ptr<impl>, 3> args;
  unsigned fused = 0;                            // ops in the pending chain rooted here, at most
  void (*realise)(impl&) = nullptr;              // computes the value and records the chain's node
  pending_list* owner = nullptr;                 // the list it is on while pending
  const device_backend* chain_device = nullptr;  // where a pending chain's operands are
  bool pending() const { return op != nullptr; }
  // Where the elements are, or will be once a pending chain is computed (null: the host).
  const device_backend* device() const { return data ? data->device : chain_device; }
  // The first element, wherever it is (host or device memory); computed tensors only.
  template <class T> T* elements() const { return static_cast<T*>(data->bytes) + offset; }
  void* first_byte() const { return static_cast<char*>(data->bytes) + offset * element_size(type); }

  impl() = default;
  // A new header over the elements of `o` (computed): views and detach. Nothing of o's autograd
  // state is read, so one thread may take a view of a weight while another adds to its gradient.
  struct same_elements {};
  impl(same_elements, const impl& o)
      : type(o.type), shape(o.shape), data(o.data), offset(o.offset) {}
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  ~impl() {
    if (owner)
      owner->remove(this);
  }
};

// A thread's pending ops that outlive it are computed when read, but no longer on writes there.
inline pending_list::~pending_list() {
  for (impl* p : items)
    p->owner = nullptr;
}

inline void realise_pending() {
  auto& list = pending_ops().items;
  while (!list.empty())
    list.back()->realise(*list.back());  // takes itself off the list
}

// Before an in-place write to p's elements: this thread's pending ops that may read them run
// first. Elements only this handle holds (an op's fresh result) cannot be read by one.
inline void realise_pending_before_write(const std::shared_ptr<impl>& p) {
  if (!pending_ops().items.empty() && (p.use_count() > 1 || p->data.use_count() > 1))
    realise_pending();
}

// What fg::trace needs to know on this thread (dynamic/graph.hpp): the recorder, if a function
// is being traced here; how deep in recorded ops the thread is (the ops an op calls are part of
// it); and what to tell the recorder when the function's own code reads a tensor's elements.
struct trace_state {
  int depth = 0;
  // Recording for fg::function: the run that records has no effects (running statistics stay,
  // recorded draws come from a copy of their generator), since the graph's run that follows has
  // them.
  bool dry = false;
  void* recorder = nullptr;
  void (*on_read)(void* recorder, const impl& x) = nullptr;
  // A tensor made from another (`from`: detach) or drawn (rand, randn, randint in [lo, hi),
  // randperm) where the function's own code asked for it: the graph makes it again each run.
  void (*on_made)(void* recorder, const char* op, const var* from, const var& made, generator* g,
                  double lo, double hi) = nullptr;
};
inline trace_state& trace_state_of_thread() {
  thread_local trace_state s;
  return s;
}
// The function being traced read x's elements itself.
inline void note_read(const impl& x) {
  const trace_state& s = trace_state_of_thread();
  if (s.on_read && s.depth == 0) [[unlikely]]
    s.on_read(s.recorder, x);
}

inline void note_made(const char* op, const var* from, const var& made, generator* g = nullptr,
                      double lo = 0, double hi = 0) {
  const trace_state& s = trace_state_of_thread();
  if (s.on_made && s.depth == 0) [[unlikely]]
    s.on_made(s.recorder, op, from, made, g, lo, hi);
}

// Tensor headers, nodes and storage records come from this thread's pool, not from malloc.
template <class T, class... A> std::shared_ptr<T> make_pooled(A&&... a) {
  return std::allocate_shared<T>(pool_allocator<T>{}, std::forward<A>(a)...);
}

}  // namespace dynamic

class var;
namespace dynamic {
// An uninitialised var of extents e, its elements on `on` (null: the host); zeros; a copy of a
// computed tensor's elements.
var empty_on(const device_backend* on, const fg::extents& e, dtype t);
var zeros_on(const device_backend* on, const fg::extents& e, dtype t);
var copy_on(const device_backend* on, const impl& p);
}  // namespace dynamic

// A signed index, as a user writes one: negative values count from the end of an axis.
using sindex_t = std::int64_t;

// A list of integers an op takes (axes, repeats, padding): a braced list where it is called, or
// a std::vector (a recorded graph calling the op again). Only for a call's arguments: it points
// into the list it was given.
template <class I> class list_arg {
 public:
  list_arg() = default;
  list_arg(std::initializer_list<I> l) {  // (the list outlives the call it is given to)
    p_ = std::data(l);
    n_ = l.size();
  }
  list_arg(const std::vector<I>& v) : p_(v.data()), n_(v.size()) {}
  const I* begin() const { return p_; }
  const I* end() const { return p_ + n_; }
  std::size_t size() const { return n_; }

 private:
  const I* p_ = nullptr;
  std::size_t n_ = 0;
};

class var {
 public:
  var() = default;
  explicit var(std::shared_ptr<dynamic::impl> p) : p_(std::move(p)) {}

  // Creation. Elements are float32 unless a dtype is given (arange, randint and randperm:
  // int64, as in PyTorch).
  static var empty(const fg::extents& e, fg::dtype t = dtype::float32) {
    return dynamic::empty_on(nullptr, e, t);
  }
  static var full(const fg::extents& e, double value, fg::dtype t = dtype::float32) {
    var v = empty(e, t);
    dispatch_any(t, [&](auto z) {
      using T = decltype(z);
      std::fill_n(v.data<T>(), v.size(), convert_element<T>(value));
    });
    return v;
  }
  static var zeros(const fg::extents& e, fg::dtype t = dtype::float32) { return full(e, 0.0, t); }
  static var ones(const fg::extents& e, fg::dtype t = dtype::float32) { return full(e, 1.0, t); }
  static var scalar(double value, fg::dtype t = dtype::float32) { return full({}, value, t); }
  // start, start + step, ... up to stop (excluded); down to it for a negative step.
  static var arange(sindex_t n, fg::dtype t = dtype::int64) { return arange(sindex_t(0), n, 1, t); }
  template <std::integral A, std::integral B, std::integral C = sindex_t>
  static var arange(A start, B stop, C step = 1, fg::dtype t = dtype::int64) {
    return arange(double(start), double(stop), double(step), t);  // (exact below 2^53)
  }
  static var arange(double start, double stop, double step, fg::dtype t = dtype::float32) {
    if (step == 0 || !std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step) ||
        (stop - start) / step < 0) {
      char m[256];
      std::snprintf(m, sizeof m,
                    "fg::var::arange(): from %g to %g by %g is not a range (the step must be "
                    "non-zero, finite, and point from start to stop)",
                    start, stop, step);
      throw std::invalid_argument(m);
    }
    var v = empty({index_t(std::ceil((stop - start) / step))}, t);
    dispatch_any(t, [&](auto z) {
      using T = decltype(z);
      for (index_t i = 0, n = v.size(); i < n; ++i)
        v.data<T>()[i] = convert_element<T>(start + double(i) * step);
    });
    return v;
  }
  // `steps` values from start to end, both included (spaced as PyTorch: from each end half way).
  static var linspace(double start, double end, sindex_t steps, fg::dtype t = dtype::float32) {
    if (steps < 0)
      throw std::invalid_argument(
          dynamic::text("fg::var::linspace(): steps is ", steps, ", it must be 0 or more"));
    var v = empty({index_t(steps)}, t);
    const double step = steps > 1 ? (end - start) / double(steps - 1) : 0;
    dispatch_any(t, [&](auto z) {
      using T = decltype(z);
      for (sindex_t i = 0; i < steps; ++i)
        v.data<T>()[i] =
            convert_element<T>(steps == 1 || i < steps / 2 ? start + step * double(i)
                                                           : end - step * double(steps - 1 - i));
    });
    return v;
  }
  // The n x m identity (m = n unless given).
  static var eye(index_t n, sindex_t m = -1, fg::dtype t = dtype::float32) {
    const index_t c = m < 0 ? n : index_t(m);
    var v = zeros({n, c}, t);
    dispatch_any(t, [&](auto z) {
      using T = decltype(z);
      for (index_t i = 0; i < std::min(n, c); ++i)
        v.data<T>()[i * c + i] = convert_element<T>(1);
    });
    return v;
  }
  static var eye(index_t n, fg::dtype t) { return eye(n, -1, t); }
  // Values in row-major order; their count must match the extents.
  static var from(std::initializer_list<double> values, const fg::extents& e,
                  fg::dtype t = dtype::float32) {
    return from(std::span<const double>(values.begin(), values.size()), e, t);
  }
  // Values of any element type (float, double, std::int64_t, int, std::uint8_t, bool, ...),
  // stored as `t` (by default their own dtype).
  template <class T>
  requires detail::has_dtype<T>
  static var from(std::span<const T> values, const fg::extents& e, fg::dtype t = dtype_of<T>) {
    if (index_t(values.size()) != e.size()) {
      detail::message m;
      m << "fg::var::from(): " << index_t(values.size()) << " values given for shape "
        << e.str().c_str() << " (" << e.size() << " elements)";
      throw shape_error(m.c_str());
    }
    var v = empty(e, t);
    dispatch_any(t, [&](auto z) {
      using U = decltype(z);
      std::transform(values.begin(), values.end(), v.data<U>(),
                     [](T x) { return convert_element<U>(x); });
    });
    return v;
  }
  template <class T>
  requires detail::has_dtype<T>
  static var from(const std::vector<T>& values, const fg::extents& e, fg::dtype t = dtype_of<T>) {
    if constexpr (std::is_same_v<T, bool>) {  // (vector<bool> holds bits, not bools)
      std::unique_ptr<bool[]> b(new bool[values.size()]);
      std::copy(values.begin(), values.end(), b.get());
      return from(std::span<const bool>(b.get(), values.size()), e, t);
    } else {
      return from(std::span<const T>(values), e, t);
    }
  }
  // Uniform in [0, 1), or standard normal, from a seeded generator: the same seed gives the same
  // stream (normal values pass through the C library's log and cos). Without a generator they
  // draw from the process's default one (fg::manual_seed).
  static var rand(const fg::extents& e, generator& g, fg::dtype t = dtype::float32) {
    var v = fill_floats("rand", e, t, [&](auto z) {
      using C = decltype(z);
      return g.uniform(C(0), C(1));
    });
    dynamic::note_made("rand", nullptr, v, &g);
    return v;
  }
  static var randn(const fg::extents& e, generator& g, fg::dtype t = dtype::float32) {
    var v = fill_floats("randn", e, t, [&](auto z) { return decltype(z)(g.normal()); });
    dynamic::note_made("randn", nullptr, v, &g);
    return v;
  }
  static var rand(const fg::extents& e, fg::dtype t = dtype::float32);
  static var randn(const fg::extents& e, fg::dtype t = dtype::float32);
  // Integers uniform in [low, high).
  static var randint(sindex_t low, sindex_t high, const fg::extents& e, generator& g,
                     fg::dtype t = dtype::int64) {
    if (high <= low)
      throw std::invalid_argument(
          dynamic::text("fg::var::randint(): the range [", low, ", ", high, ") is empty"));
    const auto span = std::uint64_t(high) - std::uint64_t(low);
    var v = empty(e, t);
    dispatch_any(t, [&](auto z) {
      using T = decltype(z);
      for (index_t i = 0, n = v.size(); i < n; ++i)
        v.data<T>()[i] = convert_element<T>(sindex_t(std::uint64_t(low) + draw_below(g, span)));
    });
    dynamic::note_made("randint", nullptr, v, &g, double(low), double(high));
    return v;
  }
  static var randint(sindex_t low, sindex_t high, const fg::extents& e, fg::dtype t = dtype::int64);
  // 0, ..., n - 1 in a uniformly random order (Fisher-Yates).
  static var randperm(index_t n, generator& g, fg::dtype t = dtype::int64) {
    std::vector<sindex_t> p(n);
    for (std::size_t i = 0; i < p.size(); ++i)
      p[i] = sindex_t(i);
    for (std::size_t i = p.size(); i > 1; --i)
      std::swap(p[i - 1], p[draw_below(g, i)]);
    var v = from(std::span<const sindex_t>(p), {n}, t);
    dynamic::note_made("randperm", nullptr, v, &g);
    return v;
  }
  static var randperm(index_t n, fg::dtype t = dtype::int64);

  bool defined() const { return bool(p_); }
  fg::dtype dtype() const { return get().type; }
  bool is_floating_point() const { return is_floating(dtype()); }
  // Whether the elements are in device memory (`to(fg::cuda)`), not the host's.
  bool on_device() const { return get().device() != nullptr; }
  // A copy of the elements in host memory, or on the CUDA device (<fusegrad/cuda.hpp> must be
  // part of the program). The copy is a new leaf: the tape does not record it, so a parameter is
  // moved once and trained where it is (`w = w.to(fg::cuda).requires_grad(true)`).
  var to(host_device) const;
  var to(cuda_device) const;
  // The elements converted to dtype t (convert_element's rules), or this tensor if it has it
  // already. Between floating dtypes the tape records it: the gradient is converted back.
  var to(fg::dtype t) const;
  const fg::extents& shape() const { return get().shape; }
  std::size_t rank() const { return get().shape.rank(); }
  index_t size() const { return get().shape.size(); }

  // The elements, contiguous, of type T (which must be the dtype's). Writes through this pointer
  // are not tracked by the tape: change values the tape may have saved with set().
  template <class T> T* data() {
    check_type<T>();
    dynamic::note_read(get());
    return writable().template elements<T>();
  }
  template <class T> const T* data() const {
    check_type<T>();
    dynamic::note_read(get());
    return ready().template elements<const T>();
  }
  // The elements, for an in-place write the tape tracks (an optimiser step, a load): a
  // backward() through an op that saved their earlier value then throws.
  template <class T> T* tracked_data() {
    T* p = data<T>();
    ++get().data->version;
    return p;
  }
  // Copies src's elements (same shape; converted to this tensor's dtype) into this tensor's,
  // tracked (tracked_data).
  void copy_from(const var& src) {
    if (!(src.shape() == shape()))
      throw shape_error(dynamic::text("fg::var::copy_from(): the source is ", src.shape().str(),
                                      ", the tensor ", shape().str()));
    const var s = src.to(dtype());
    dispatch_any(dtype(), [&](auto z) {
      using T = decltype(z);
      std::copy_n(s.data<T>(), size(), tracked_data<T>());
    });
  }
  // Element i in row-major order (negative: counted from the end), converted to T. Out of
  // range is an fg::index_error naming the index and the shape.
  template <class T = double> T at(sindex_t i) const { return read<T>(flat("at", i)); }
  // The element at one index per axis (negative: counted from the end of that axis).
  template <class T = double> T at(std::initializer_list<sindex_t> idx) const {
    return read<T>(offset_of("at", idx.begin(), idx.size()));
  }
  template <std::integral... I> double operator()(I... i) const {
    const sindex_t idx[] = {sindex_t(i)..., 0};
    return read<double>(offset_of("operator()", idx, sizeof...(I)));
  }
  // The value of a one-element tensor, converted to T.
  template <class T = double> T item() const {
    if (size() != 1) {
      detail::message m;
      m << "fg::var::item(): the tensor has shape " << shape().str().c_str() << ", not one element";
      throw shape_error(m.c_str());
    }
    return read<T>(0);
  }
  // Writes an element in place (converted to the dtype), tracked: a backward() through an op
  // that saved this tensor's earlier value then throws instead of giving a wrong gradient.
  template <class V>
  requires std::is_arithmetic_v<V>
  void set(sindex_t i, V value) { write(flat("set", i), value); }
  template <class V>
  requires std::is_arithmetic_v<V>
  void set(std::initializer_list<sindex_t> idx, V value) {
    write(offset_of("set", idx.begin(), idx.size()), value);
  }

  // Autograd.
  bool requires_grad() const { return get().requires_grad; }
  var& requires_grad(bool on) {
    if (on && !is_floating(get().type))
      throw dtype_error(dynamic::text(
          "fg::var::requires_grad(): only floating-point tensors can require a gradient; this "
          "one holds ",
          dtype_name(get().type), " (indices, counts and masks are never differentiated)"));
    if (on && ready().grad_fn)
      throw autograd_error(
          "fg::var::requires_grad(): only leaves (tensors not computed by an op) can be made to "
          "require a gradient; use detach() first");
    get().requires_grad = on;
    return *this;
  }
  // The gradient accumulated by backward(), or an undefined var.
  var grad() const { return var(get().grad); }
  void zero_grad() { get().grad.reset(); }
  // A tensor sharing this one's elements, cut from the tape.
  var detach() const {
    var d(dynamic::make_pooled<dynamic::impl>(dynamic::impl::same_elements{}, ready()));
    dynamic::note_made("detach", this, d);
    return d;
  }
  // The op that produced this value ("" for a leaf).
  const char* op_name() const;
  void backward(bool retain_graph = false);
  void backward(const var& seed, bool retain_graph = false);

  // The header: dtype, extents and autograd state (a pending op's value may not exist yet).
  dynamic::impl& get() const {
    if (!p_) [[unlikely]]
      undefined();
    return *p_;
  }
  // The header with the value computed (a pending op runs now).
  // Out of line, so that get() inlines into every accessor.
  [[noreturn, gnu::cold, gnu::noinline]] static void undefined() {
    throw std::logic_error("fg::var: the tensor is undefined (default-constructed, or no grad)");
  }
  dynamic::impl& ready() const {
    dynamic::impl& p = get();
    if (p.pending())
      p.realise(p);
    return p;
  }
  // ready(), and before a write: pending ops that may read these elements run first. A tensor
  // only this handle holds (an op's fresh result) cannot be read by one.
  dynamic::impl& writable() {
    dynamic::impl& p = ready();
    dynamic::realise_pending_before_write(p_);
    return p;
  }
  const std::shared_ptr<dynamic::impl>& handle() const { return p_; }

 private:
  // Element offset of flat index i (negative: from the end), checked.
  index_t flat(const char* fn, sindex_t i) const {
    const auto n = sindex_t(size());
    if (i < -n || i >= n) [[unlikely]]
      throw index_error(dynamic::text("fg::var::", fn, "(): index ", i,
                                      " is out of range for a tensor of ", n, " elements (shape ",
                                      shape().str(), ")"));
    return index_t(i < 0 ? i + n : i);
  }
  // Element offset of one index per axis, each checked against its axis.
  index_t offset_of(const char* fn, const sindex_t* idx, std::size_t count) const {
    const fg::extents& e = shape();
    if (count != e.rank()) [[unlikely]]
      throw index_error(
          dynamic::text("fg::var::", fn, "(): ", count, count == 1 ? " index" : " indices",
                        " given for a tensor of rank ", e.rank(), " (shape ", e.str(), ")"));
    index_t off = 0;
    for (std::size_t d = 0; d < count; ++d) {
      const sindex_t i = idx[d], n = sindex_t(e[d]);
      if (i < -n || i >= n) [[unlikely]]
        throw index_error(dynamic::text("fg::var::", fn, "(): index ", i,
                                        " is out of range for dim ", d, " of size ", n, " (shape ",
                                        e.str(), ")"));
      off = off * e[d] + index_t(i < 0 ? i + n : i);
    }
    return off;
  }
  // Element k (checked before), converted to T, wherever it is (one element is copied back
  // from a device, which first finishes its work so far).
  template <class T> T read(index_t k) const {
    dynamic::note_read(get());
    const dynamic::impl& p = ready();
    return dispatch_any(p.type, [&](auto z) {
      using U = decltype(z);
      U v;
      if (p.data->device)
        p.data->device->to_host(&v, p.template elements<U>() + k, sizeof v);
      else
        v = p.template elements<U>()[k];
      return convert_element<T>(v);
    });
  }
  template <class V> void write(index_t k, V value) {
    dispatch_any(dtype(), [&](auto z) {
      using U = decltype(z);
      data<U>()[k] = convert_element<U>(value);
    });
    ++ready().data->version;
  }
  // Fills elements of a floating dtype from draw(T{}) (rand, randn).
  template <class Draw>
  static var fill_floats(const char* fn, const fg::extents& e, fg::dtype t, Draw draw) {
    if (!is_floating(t))
      throw dtype_error(dynamic::text("fg::var::", fn, "(): ", dtype_name(t),
                                      " is not a floating dtype (integers: var::randint)"));
    var v = empty(e, t);
    dispatch_floating(t, [&](auto z) {
      using T = decltype(z);
      T* d = v.data<T>();
      for (index_t i = 0, n = v.size(); i < n; ++i)
        d[i] = T(draw(compute_t<T>{}));
    });
    return v;
  }
  // Uniform in [0, n), for any n up to 2^64 - 1 (rejection keeps it unbiased).
  static std::uint64_t draw_below(generator& g, std::uint64_t n) {
    if (n <= 0xffffffffu)
      return g.below(std::uint32_t(n));
    const std::uint64_t limit = ~std::uint64_t(0) - ~std::uint64_t(0) % n;
    for (;;) {
      const std::uint64_t x = std::uint64_t(g.next()) << 32 | g.next();
      if (x < limit)
        return x % n;
    }
  }
  // Host access: the dtype must match, and the elements must be in host memory.
  template <class T> void check_type() const {
    const dynamic::impl& p = get();
    if (dtype_of<T> != p.type) [[unlikely]]
      wrong_type(p.type, dtype_of<T>);
    if (p.device()) [[unlikely]]
      on_device_error(p);
  }
  [[noreturn, gnu::cold, gnu::noinline]] static void on_device_error(const dynamic::impl& p) {
    detail::message m;
    m << "fg::var: a tensor of shape " << p.shape.str().c_str() << " is on the " << p.device()->name
      << " device, and this op reads it on the host; copy it with .to(fg::host), or use the "
         "ops that run there (elementwise ops, sum and mean of them, matmul, backward)";
    throw autograd_error(m.c_str());
  }
  [[noreturn, gnu::cold, gnu::noinline]] static void wrong_type(fg::dtype holds, fg::dtype asked) {
    detail::message m;
    m << "fg::var::data<T>(): the tensor holds " << dtype_name(holds) << ", not "
      << dtype_name(asked);
    throw autograd_error(m.c_str());
  }
  std::shared_ptr<dynamic::impl> p_;
};

namespace dynamic {
// The process's default generator, for creation without one (PyTorch's habit); a mutex makes
// draws from several threads safe (their order between threads is not).
struct default_generator_state {
  std::recursive_mutex lock;  // (a recorded draw replays under it, and may draw again)
  generator g;
};
inline default_generator_state& default_generator() {
  static default_generator_state s;
  return s;
}
template <class F> var with_default_generator(F f) {
  default_generator_state& s = default_generator();
  std::lock_guard<std::recursive_mutex> hold(s.lock);
  return f(s.g);
}
}  // namespace dynamic

// Seeds the default generator that var::rand, randn, randint and randperm use when given none.
inline void manual_seed(std::uint64_t seed) {
  dynamic::default_generator_state& s = dynamic::default_generator();
  std::lock_guard<std::recursive_mutex> hold(s.lock);
  s.g.reseed(seed);
}
inline var var::rand(const fg::extents& e, fg::dtype t) {
  return dynamic::with_default_generator([&](generator& g) { return rand(e, g, t); });
}
inline var var::randn(const fg::extents& e, fg::dtype t) {
  return dynamic::with_default_generator([&](generator& g) { return randn(e, g, t); });
}
inline var var::randint(sindex_t low, sindex_t high, const fg::extents& e, fg::dtype t) {
  return dynamic::with_default_generator([&](generator& g) { return randint(low, high, e, g, t); });
}
inline var var::randperm(index_t n, fg::dtype t) {
  return dynamic::with_default_generator([&](generator& g) { return randperm(n, g, t); });
}

// Tensors of x's shape (and dtype, unless another is given).
inline var empty_like(const var& x) {
  return var::empty(x.shape(), x.dtype());
}
inline var empty_like(const var& x, dtype t) {
  return var::empty(x.shape(), t);
}
inline var zeros_like(const var& x) {
  return var::zeros(x.shape(), x.dtype());
}
inline var zeros_like(const var& x, dtype t) {
  return var::zeros(x.shape(), t);
}
inline var ones_like(const var& x) {
  return var::ones(x.shape(), x.dtype());
}
inline var ones_like(const var& x, dtype t) {
  return var::ones(x.shape(), t);
}
inline var full_like(const var& x, double value) {
  return var::full(x.shape(), value, x.dtype());
}
inline var full_like(const var& x, double value, dtype t) {
  return var::full(x.shape(), value, t);
}

inline var dynamic::empty_on(const device_backend* on, const fg::extents& e, dtype t) {
  auto p = make_pooled<impl>();
  p->type = t;
  p->shape = e;
  p->data = make_pooled<storage>(e.size() * element_size(t), on);
  return var(std::move(p));
}

inline var dynamic::zeros_on(const device_backend* on, const fg::extents& e, dtype t) {
  var v = empty_on(on, e, t);
  if (const std::size_t bytes = e.size() * element_size(t); bytes && on)
    on->zero(v.get().data->bytes, bytes);
  else if (bytes)
    std::memset(v.get().data->bytes, 0, bytes);
  return v;
}

inline var dynamic::copy_on(const device_backend* on, const impl& p) {
  var out = empty_on(on, p.shape, p.type);
  const std::size_t bytes = p.shape.size() * element_size(p.type);
  void* dst = out.get().data->bytes;
  const void* src = p.first_byte();
  const device_backend* from = p.data->device;
  if (!bytes)
    return out;
  if (from && on)  // (one device backend: CUDA)
    on->copy(dst, src, bytes);
  else if (from)
    from->to_host(dst, src, bytes);
  else if (on)
    on->from_host(dst, src, bytes);
  else
    std::memcpy(dst, src, bytes);
  return out;
}

// (In a traced function, a copy between devices is a step of the graph: note_made.)
inline var var::to(host_device) const {
  var y = dynamic::copy_on(nullptr, ready());
  dynamic::note_made("to_host", this, y);
  return y;
}

inline var var::to(cuda_device) const {
  const dynamic::device_backend* cuda = dynamic::cuda_backend();
  if (!cuda)
    throw autograd_error(
        "fg::var::to(fg::cuda): this program has no CUDA backend; include <fusegrad/cuda.hpp> "
        "in a file compiled by nvcc and link fusegrad::cuda");
  var y = dynamic::copy_on(cuda, ready());
  dynamic::note_made("to_cuda", this, y);
  return y;
}

}  // namespace fg

FG_DIAGNOSTICS_END
