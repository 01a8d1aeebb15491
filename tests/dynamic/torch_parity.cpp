// The fusegrad side of the PyTorch parity test (tests/dynamic/torch_parity.py runs it): each case
// prints one JSON line with its result's dtype, shape, values (and gradient, or printed text);
// the script computes the same case in PyTorch and compares. Case names are the contract.
#include <fusegrad/dynamic.hpp>
#include <fusegrad/dynamic/sort.hpp>
#include <fusegrad/nn/normalization.hpp>
#include <fusegrad/nn/pool.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

using namespace fg;

namespace {

const dtype all_dtypes[] = {dtype::float32, dtype::float64, dtype::float16, dtype::bfloat16,
                            dtype::int64,   dtype::int32,   dtype::uint8,   dtype::bool_};

std::string number(long double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v < 0 ? "-Infinity" : "Infinity";
  char buf[64];
  if (v == std::floor(v) && std::abs(v) < 1e19L)
    std::snprintf(buf, sizeof buf, "%.0Lf", v);
  else
    std::snprintf(buf, sizeof buf, "%.17Lg", v);
  return buf;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s)
    out += c == '\n' ? std::string("\\n") : c == '"' ? std::string("\\\"") : std::string(1, c);
  return out + "\"";
}

std::string values(const var& v) {
  std::string s = "[";
  for (index_t i = 0; i < v.size(); ++i)  // (appends: GCC 12 warns falsely on "," + string)
    s.append(i ? "," : "").append(number(v.at<long double>(sindex_t(i))));
  return s + "]";
}

std::string shape(const var& v) {
  std::string s = "[";
  for (std::size_t k = 0; k < v.rank(); ++k)
    s.append(k ? "," : "").append(std::to_string(v.shape()[k]));
  return s + "]";
}

// {"case": name, "dtype": ..., "shape": [...], "values": [...], "grad"?: {...}, "text"?: ...}
void emit(const std::string& name, const var& y, const var* grad = nullptr,
          bool with_text = false) {
  std::string line = "{\"case\":" + json_string(name) + ",\"dtype\":\"" + dtype_name(y.dtype()) +
                     "\",\"shape\":" + shape(y) + ",\"values\":" + values(y);
  if (grad)
    line += ",\"grad\":{\"dtype\":\"" + std::string(dtype_name(grad->dtype())) +
            "\",\"values\":" + values(*grad) + "}";
  if (with_text) {
    std::ostringstream os;
    os << y.detach();
    line += ",\"text\":" + json_string(os.str());
  }
  std::printf("%s}\n", line.c_str());
}

// A case that must throw: its message is compared with PyTorch's refusal.
void emit_error(const std::string& name, const std::function<void()>& f) {
  try {
    f();
    std::printf("{\"case\":%s,\"error\":null}\n", json_string(name).c_str());
  } catch (const std::exception& e) {
    std::printf("{\"case\":%s,\"error\":%s}\n", json_string(name).c_str(),
                json_string(e.what()).c_str());
  }
}

var of(std::initializer_list<double> v, dtype t) {
  return var::from(v, {index_t(v.size())}, t);
}

// float64 elements ((i * a) % b - b / 2) * s of extents e: the same in the script, exactly.
var pattern(const extents& e, int a, int b, double s) {
  var x = var::empty(e, dtype::float64);
  for (index_t i = 0; i < x.size(); ++i)
    x.data<double>()[i] = (double((i * a) % b) - double(b / 2)) * s;
  return x;
}

// Sets a layer's per-channel parameter to 1 + w k (weight) or b k - 0.1 (bias), k its index.
void set_ramp(var& p, double step, double base) {
  no_grad off;
  for (index_t k = 0; k < p.size(); ++k)
    p.set(k, base + step * double(k));
}

// y = layer(x) and x's gradient of sum(y * pattern), as the script computes them.
template <class Layer> void emit_layer(const std::string& name, Layer& layer, const var& x_in) {
  var x = x_in.detach().requires_grad(true);
  var y = layer(x);
  sum(y * pattern(y.shape(), 5, 7, 0.25)).backward();
  const var g = x.grad();
  emit(name, y, &g);
}

}  // namespace

int main() {
  // Promotion: every pair of dtypes through +, *, / and <; tensors with axes, then 0-d.
  for (dtype a : all_dtypes)
    for (dtype b : all_dtypes) {
      const var x = of({1, 0, 3}, a), y = of({2, 1, 1}, b);
      const std::string pair = std::string(dtype_name(a)) + "," + dtype_name(b);
      emit("add:" + pair, x + y);
      emit("mul:" + pair, x * y);
      emit("div:" + pair, x / y);
      emit("lt:" + pair, x < y);
      emit("add0d:" + pair, x + var::scalar(2, b));
    }
  // Numbers: an int and a float with a tensor of each dtype.
  for (dtype a : all_dtypes) {
    const var x = of({1, 0, 3}, a);
    emit(std::string("plus_int:") + dtype_name(a), x + 2);
    emit(std::string("times_float:") + dtype_name(a), x * 2.5);
  }

  // Conversion.
  const var floats = of({-2.7, -0.5, 0, 0.5, 2.7, 100.2, 65519, 1e-8, 0.1, 3e38}, dtype::float64);
  for (dtype t : {dtype::float32, dtype::float16, dtype::bfloat16, dtype::bool_})
    emit(std::string("to:float64,") + dtype_name(t), floats.to(t));
  const var in_range = of({-2.7, -0.5, 0, 0.5, 2.7, 100.2, 65519}, dtype::float64);
  emit("to:float64,int64", in_range.to(dtype::int64));
  emit("to:float64,int32", in_range.to(dtype::int32));
  emit("to:float64,uint8", of({0, 0.5, 2.7, 100.2, 255.9}, dtype::float64).to(dtype::uint8));
  const var big = var::from(
      std::vector<std::int64_t>{300, -1, 255, 2147483648LL, -2147483649LL, 65519, 70000}, {7});
  for (dtype t : {dtype::uint8, dtype::int32, dtype::bool_, dtype::float16, dtype::float32})
    emit(std::string("to:int64,") + dtype_name(t), big.to(t));
  emit("to:bool,float32", of({1, 0}, dtype::bool_).to(dtype::float32));

  // Integer arithmetic.
  const std::int64_t top = INT64_MAX;
  emit("int:overflow", var::from(std::vector<std::int64_t>{top, -top - 1}, {2}) + 1);
  emit("int:uint8_wrap", of({250, 5}, dtype::uint8) + 10);
  emit("int:int32_wrap", of({2147483647}, dtype::int32) * 2);
  emit("int:true_div", of({7, -7, 3}, dtype::int64) / of({2, 2, -4}, dtype::int64));
  emit("int:exp", exp(of({0, 1, 2}, dtype::int64)));
  emit("int:sqrt_uint8", sqrt(of({9, 2}, dtype::uint8)));
  emit("int:neg_abs", abs(-of({-3, 4}, dtype::int32)));
  emit("int:max", maximum(of({1, 5}, dtype::int32), of({3, 2}, dtype::int64)));
  emit("int:relu", relu(of({-3, 4}, dtype::int64)));
  emit("int:cmp_float", of({1, 2, 3}, dtype::int64) >= 2.5);
  emit("half:cmp", of({0.1, 0.2}, dtype::float16) == of({0.1, 0.3}, dtype::float16));
  emit("half:mul", of({0.1, 1000}, dtype::float16) * of({3, 70}, dtype::float16));
  emit("bf16:add", of({0.1, 1000}, dtype::bfloat16) + of({3, 0.5}, dtype::bfloat16));
  emit_error("bool:sub", [] { (void)(of({1, 0}, dtype::bool_) - of({1, 1}, dtype::bool_)); });
  emit_error("int:requires_grad", [] { of({1, 0}, dtype::int64).requires_grad(true); });
  emit_error("int:mean", [] { (void)mean(of({1, 0}, dtype::int64)); });

  // where: a bool condition, branches promoted.
  const var cond = of({1, 0, 1}, dtype::bool_);
  emit("where:int", where(cond, of({10, 20, 30}, dtype::int64), of({-1, -2, -3}, dtype::int32)));
  emit("where:mixed",
       where(cond, of({0.5, 1.5, 2.5}, dtype::float32), of({-1, -2, -3}, dtype::int64)));
  {
    var a = of({1, 2, 3}, dtype::float64).requires_grad(true);
    var y = sum(where(cond, a * a, of({0, 0, 0}, dtype::int64)));
    y.backward();
    const var g = a.grad();
    emit("where:grad", y, &g);
  }
  // A number for a branch takes the other branch's dtype (an integral one keeps int64).
  emit("where:number", where(cond, of({1.5, 2.5, 3.5}, dtype::float32), 0.0));
  emit("where:int_number", where(cond, of({10, 20, 30}, dtype::int64), -1));
  // Max pooling propagates NaN, and its gradient goes to the window's last NaN.
  {
    const double nan = std::nan("");
    var x = of({1, nan, 3, 4, 5, 6, nan, 8, 9, 10, nan, 12, 13, 14, 15, 16}, dtype::float64);
    x = reshape(x, {1, 1, 4, 4}).detach().requires_grad(true);
    var y = nn::max_pool2d(x, 2);
    sum(y * reshape(of({1, 2, 3, 4}, dtype::float64), {1, 1, 2, 2})).backward();
    const var g = x.grad();
    emit("max_pool2d:nan", y, &g);
  }

  // Reductions of integers.
  const var m = reshape(of({1, 2, 3, 4, 5, 6}, dtype::int32), {2, 3});
  emit("red:sum", sum(m));
  emit("red:sum_axis", sum(m, {1}));
  emit("red:prod", prod(m));
  emit("red:max_axis", max(m, {0}));
  emit("red:min_keepdim", min(m, {1}, true));
  emit("red:sum_bool", sum(of({1, 1, 0}, dtype::bool_)));
  emit("red:sum_half", sum(of({0.5, 0.25, 1000}, dtype::float16)));

  // Creation.
  emit("arange:n", var::arange(5));
  emit("arange:down", var::arange(10, 0, -3));
  emit("arange:float", var::arange(0.0, 1.0, 0.1));
  emit("arange:half_step", var::arange(1.0, 2.5, 0.5));
  emit("linspace:5", var::linspace(-1, 1, 5));
  emit("linspace:7", var::linspace(0, 1, 7));
  emit("linspace:1", var::linspace(2, 3, 1));
  emit("eye:2x3", var::eye(2, 3));
  emit("eye:int", var::eye(3, dtype::int64));

  // Selection and sorting (ties and a NaN included; indices int64).
  const var s = reshape(of({2, 1, 2, NAN, 1, 0, 5, 5, -3, 4, 4, 0}, dtype::float32), {2, 6});
  emit("argmax:flat", argmax(s));
  emit("argmax:dim1", argmax(s, 1));
  emit("argmin:dim0_keep", argmin(s, 0, true));
  emit("argmax:int", argmax(of({3, 9, 9, 1}, dtype::int64)));
  emit("sort:values", sort(s, 1).values);
  emit("sort:indices", sort(s, 1).indices);
  emit("sort:desc_indices", sort(s, 1, true).indices);
  emit("argsort:dim0", argsort(s, 0));
  emit("topk:values", topk(s, 3).values);
  emit("topk:indices", topk(s, 3).indices);
  emit("topk:smallest", topk(s, 2, 1, false).indices);

  // Scans, clamp, counting, nonzero; multinomial's refusals (its draws are checked by
  // frequency in tests/dynamic/sample_test.cpp: the streams differ).
  emit("cumsum:dim1", cumsum(s, 1));
  emit("cumsum:int", cumsum(of({1, 2, 3}, dtype::int32), 0));
  emit("cumprod:dim0", cumprod(reshape(of({1, 2, 0, 4, 5, 6}, dtype::float64), {3, 2}), 0));
  {
    var z = of({2, 0, 3, 4}, dtype::float64).requires_grad(true);
    var y = sum(cumprod(z, 0));
    y.backward();
    const var g = z.grad();
    emit("cumprod:grad_zero", y, &g);
  }
  emit("clamp:float", clamp(s, -1, 2.5));
  emit("clamp:int", clamp(of({-5, 3, 9}, dtype::int64), 0, 4));
  emit("clamp:empty_range", clamp(of({0, 5}, dtype::float32), 3, 1));
  {
    var x = of({-2, -1, 0, 1, 2}, dtype::float64).requires_grad(true);
    var y = sum(clamp(x, -1, 1) * of({1, 2, 3, 4, 5}, dtype::float64));
    y.backward();
    const var g = x.grad();
    emit("clamp:grad", y, &g);
  }
  // Numerical conventions: special values and gradients where an op has no derivative.
  {
    const double inf = INFINITY, nan = NAN;
    const std::vector<double> bases = {0, -0.0, 1, -1, 2, -2, 0.5, inf, -inf, nan};
    const std::vector<double> exponents = {0, -0.0, 1, -1, 2, 3, 0.5, -0.5, inf, -inf, nan};
    std::vector<double> pa, pb, kinks, ta, tb;
    for (double x : bases)
      for (double y : exponents) {
        pa.push_back(x);
        pb.push_back(y);
      }
    for (int rep = 0; rep < 2; ++rep)
      kinks.insert(kinks.end(), {0, -0.0, nan, 1, -1, 2.5, -2.5, inf, -inf});
    kinks.push_back(0);
    for (int rep = 0; rep < 4; ++rep) {
      ta.insert(ta.end(), {1, 2, 1, nan, 1});
      tb.insert(tb.end(), {1, 1, 2, 1, nan});
    }
    // y = f(args) elementwise, and the gradient of sum(y) by argument k
    auto sum_grad = [](const std::string& name, auto f, std::vector<std::vector<double>> args,
                       std::size_t k, dtype t) {
      std::vector<var> xs;
      for (const auto& a : args)
        xs.push_back(var::from(a, {index_t(a.size())}, t).requires_grad(true));
      const var y = xs.size() == 1 ? f(xs[0], xs[0]) : f(xs[0], xs[1]);
      sum(y).backward();
      const var g = xs[k].grad();
      emit(name, y, &g);
    };
    for (dtype t : {dtype::float32, dtype::float64}) {
      const std::string name = dtype_name(t);
      for (std::size_t k = 0; k < 2; ++k) {
        const std::string which = std::to_string(k) + ":" + name;
        sum_grad(
            "conv:pow_grad" + which, [](var a, var b) { return pow(a, b); }, {pa, pb}, k, t);
        sum_grad(
            "conv:maximum_grad" + which, [](var a, var b) { return maximum(a, b); }, {ta, tb}, k,
            t);
        sum_grad(
            "conv:minimum_grad" + which, [](var a, var b) { return minimum(a, b); }, {ta, tb}, k,
            t);
      }
      sum_grad(
          "conv:abs_grad:" + name, [](var a, var) { return abs(a); }, {kinks}, 0, t);
      sum_grad(
          "conv:relu_grad:" + name, [](var a, var) { return relu(a); }, {kinks}, 0, t);
      sum_grad(
          "conv:sqrt_grad:" + name, [](var a, var) { return sqrt(a); }, {kinks}, 0, t);
    }
  }
  emit("count_nonzero:all", count_nonzero(s));
  emit("count_nonzero:dim0", count_nonzero(s, {0}));
  emit("any:dim1", any(reshape(of({0, 0, 1, 0}, dtype::int64), {2, 2}), {1}));
  emit("all:all", all(of({1, 2, 0}, dtype::float32)));
  emit("nonzero", nonzero(reshape(of({0, 3, 0, 0, -1, 2}, dtype::float32), {2, 3})));
  emit_error("multinomial:negative", [] {
    (void)multinomial(of({1, -1}, dtype::float32), 1, true);
  });

  // Indexing.
  const var g = reshape(var::arange(0, 24, 1, dtype::float32), {2, 3, 4});
  emit("slice:step", slice(g, 2, 1, 4, 2));
  emit("slice:negative", slice(g, 1, -2, 100, 1));
  emit("narrow", narrow(g, 2, -3, 2));
  emit("index_select", index_select(g, 1, of({2, 0, 2}, dtype::int64)));
  emit("flip", flip(g, {0, 2}));
  emit("permute", permute(g, {2, 0, 1}));
  emit("squeeze", squeeze(reshape(g, {1, 24, 1})));
  emit("unsqueeze", unsqueeze(g, -2));
  emit("repeat", repeat(of({1, 2}, dtype::int64), {2, 2, 3}));
  emit("expand", expand(reshape(of({1, 2, 3}, dtype::float32), {3, 1}), {2, -1, 4}));
  emit("pad:constant", pad(g, {1, 2, 0, 1}, pad_mode::constant, -1));
  emit("pad:reflect", pad(g, {3, 2}, pad_mode::reflect));
  emit("pad:replicate", pad(g, {2, 0, 1, 1}, pad_mode::replicate));
  emit("masked_fill", masked_fill(g, of({1, 0, 0, 1}, dtype::bool_), 9.5));
  emit("masked_select", masked_select(g, g > 17.0));
  emit("chunk:last", chunk(var::arange(0, 7, 1, dtype::int64), 3)[2]);
  emit("split:int", split(g, 3, 2)[1]);
  emit("split:sizes", split(g, {1, 2}, 1)[1]);
  emit("cat", cat({g, g}, 1));
  {
    const var si = reshape(of({2, 0, 1, 1, 1, 0}, dtype::int64), {2, 3});
    const var src = reshape(var::arange(10, 18, 1, dtype::float32), {2, 4});
    emit("scatter:src", scatter(select(g, 0, 0), 1, slice(si, 1, 0, 2), src));
    emit("scatter:value", scatter(select(g, 0, 0), 1, si, -1.5));
    emit("scatter_add", scatter_add(select(g, 0, 0), 1, si, src));
    emit("scatter_add:dim0", scatter_add(var::zeros({3, 4}, dtype::int64), 0,
                                         reshape(of({2, 0, 2, 1}, dtype::int64), {1, 4}),
                                         reshape(of({5, 6, 7, 8}, dtype::int64), {1, 4})));
    emit_error("scatter:dtype", [&] { scatter(select(g, 0, 0), 1, si, src.to(dtype::float64)); });
    for (bool add : {false, true})
      for (std::size_t k = 0; k < 2; ++k) {
        var x = reshape(of({0.5, -1, 2, 3, -0.25, 4, 1, 2}, dtype::float64), {2, 4});
        var s = reshape(of({1, 2, 3, 4, 5, 6}, dtype::float64), {2, 3});
        x.requires_grad(true);
        s.requires_grad(true);
        const var i = reshape(of({3, 0, 1, 2, add ? 2.0 : 1.0, 0}, dtype::int64), {2, 3});
        const var y = add ? scatter_add(x, 1, i, s) : scatter(x, 1, i, s);
        sum(sin(y) * reshape(var::arange(0, 8, 1, dtype::float64), {2, 4})).backward();
        const var gk = k == 0 ? x.grad() : s.grad();
        emit(std::string(add ? "scatter_add:grad" : "scatter:grad") + std::to_string(k), y, &gk);
      }
  }
  {
    var x =
        reshape(of({0.5, -1, 2, 3, -0.25, 4}, dtype::float64), {1, 1, 2, 3}).requires_grad(true);
    var y = sum(sin(pad(x, {2, 2, 1, 0}, pad_mode::reflect)) *
                reshape(var::arange(0, 21, 1, dtype::float64), {1, 1, 3, 7}));
    y.backward();
    const var gx = x.grad();
    emit("pad:reflect_grad", y, &gx);
  }

  // Gradients through conversion.
  {
    var w = of({1.5, -2, 3}, dtype::float32).requires_grad(true);
    var y = sum(w.to(dtype::float64) * w.to(dtype::float64));
    y.backward();
    const var g = w.grad();
    emit("to:grad", y, &g);
    var h = of({0.5, 4}, dtype::float16).requires_grad(true);
    var z = sum(h * h * 3.0);
    z.backward();
    const var gh = h.grad();
    emit("to:grad_half", z, &gh);
  }

  // Printing.
  // Normalisation layers, with weights other than 1 and 0, against torch.nn's.
  {
    nn::GroupNorm gn(2, 4, 1e-5, true, dtype::float64);
    set_ramp(gn.weight, 0.1, 1);
    set_ramp(gn.bias, 0.05, -0.1);
    emit_layer("group_norm", gn, pattern({3, 4, 2, 3}, 7, 11, 0.37));
    const var gw = gn.weight.grad();
    emit("group_norm:weight_grad", gw);
    nn::InstanceNorm2d in(3, 1e-5, 0.1, true, true, dtype::float64);
    set_ramp(in.weight, 0.1, 1);
    set_ramp(in.bias, 0.05, -0.1);
    const var x = pattern({2, 3, 2, 2}, 7, 11, 0.37);
    emit_layer("instance_norm", in, x);
    emit("instance_norm:running_mean", in.running_mean);
    emit("instance_norm:running_var", in.running_var);
    in.eval();
    emit("instance_norm:eval", in(x));
    nn::RMSNorm rms({3, 4}, 1e-6, true, dtype::float64);
    set_ramp(rms.weight, 0.05, 1);
    emit_layer("rms_norm", rms, pattern({2, 3, 4}, 7, 11, 0.37));
  }
  emit("print:floats", of({0, 0.25, -1.5}, dtype::float32), nullptr, true);
  emit("print:integral", of({1, 2, -30}, dtype::float64), nullptr, true);
  emit("print:sci", of({1e-5, 1}, dtype::float32), nullptr, true);
  emit("print:nan", of({NAN, 1.5, -INFINITY}, dtype::float32), nullptr, true);
  emit("print:bool", of({1, 0}, dtype::bool_), nullptr, true);
  emit("print:2d", reshape(var::arange(0, 1600), {40, 40}), nullptr, true);
  emit("print:3d", reshape(var::arange(0, 3000), {10, 10, 30}), nullptr, true);
  emit("print:long", var::arange(0, 2000), nullptr, true);
  emit("print:wrap", var::arange(0.0, 30.0, 1.25), nullptr, true);
  emit("print:scalar", var::scalar(2.5), nullptr, true);
  return 0;
}
