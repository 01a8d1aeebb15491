// fusegrad/dynamic/print.hpp — printing vars as PyTorch does (summarised past a threshold), with
// shape, dtype and the op that made them
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/var.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg {

// How vars print (PyTorch's defaults): `precision` digits after the point; past `threshold`
// elements only the first and last `edgeitems` of each axis, with "..." between; rows wrapped at
// `linewidth` characters.
struct print_options {
  int precision = 4;
  index_t threshold = 1000;
  index_t edgeitems = 3;
  int linewidth = 80;
};
namespace dynamic {
inline print_options& current_print_options() {
  static print_options o;
  return o;
}
}  // namespace dynamic
inline void set_print_options(int precision = 4, index_t threshold = 1000, index_t edgeitems = 3,
                              int linewidth = 80) {
  dynamic::current_print_options() = {precision, threshold, edgeitems, linewidth};
}

namespace dynamic {

// One format for every element shown, chosen from their values as PyTorch's: integers as
// they are, bools as True/False; floats fixed-point ("2.", "0.5000") unless their magnitudes
// span more than 1000x or leave [1e-4, 1e8), then scientific ("1.0000e+09").
class element_format {
 public:
  element_format(const std::vector<long double>& shown, dtype t, int precision)
      : type_(t), precision_(precision) {
    if (!is_floating(t))
      return;
    double lo = 0, hi = 0;
    bool any = false, integral = true;
    for (long double x : shown) {
      const double v = double(x);
      if (!std::isfinite(v))
        continue;
      integral = integral && v == std::ceil(v);
      if (v == 0)
        continue;
      const double a = std::abs(v);
      lo = any ? std::min(lo, a) : a;
      hi = any ? std::max(hi, a) : a;
      any = true;
    }
    integral_ = integral;
    sci_ = any && (hi / lo > 1000 || hi > 1e8 || (!integral && lo < 1e-4));
  }
  // (integers arrive as long double: exact for every int64 on x86 and ARM64's binary128)
  std::string operator()(long double x) const {
    if (type_ == dtype::bool_)
      return x != 0 ? "True" : "False";
    char buf[64];
    const double v = double(x);
    if (!is_floating(type_))
      std::snprintf(buf, sizeof buf, "%.0Lf", x);
    else if (std::isnan(v))
      return "nan";
    else if (std::isinf(v))
      return v < 0 ? "-inf" : "inf";
    else if (sci_)
      std::snprintf(buf, sizeof buf, "%.*e", precision_, v);
    else if (integral_)
      std::snprintf(buf, sizeof buf, "%.0f.", v);
    else
      std::snprintf(buf, sizeof buf, "%.*f", precision_, v);
    return buf;
  }

 private:
  dtype type_;
  int precision_;
  bool integral_ = false, sci_ = false;
};

// The indices shown along an axis of extent n: all, or the edges around a gap (-1).
inline std::vector<sindex_t> shown_indices(index_t n, bool summarise, index_t edge) {
  std::vector<sindex_t> idx;
  const auto m = sindex_t(n), k = sindex_t(edge);
  if (!summarise || m <= 2 * k) {
    for (sindex_t i = 0; i < m; ++i)
      idx.push_back(i);
    return idx;
  }
  for (sindex_t i = 0; i < k; ++i)
    idx.push_back(i);
  idx.push_back(-1);
  for (sindex_t i = m - k; i < m; ++i)
    idx.push_back(i);
  return idx;
}

class var_printer {
 public:
  var_printer(const var& v, const print_options& o)
      : v_(v), o_(o), summarise_(v.size() > o.threshold) {
    std::vector<long double> shown;
    collect(0, 0, shown);
    const element_format format(shown, v.dtype(), o.precision);
    for (long double x : shown) {
      cells_.push_back(format(x));
      width_ = std::max(width_, cells_.back().size());
    }
  }
  // (block() visits the elements in collect()'s order: it takes the formatted cells in turn)
  void print(std::ostream& os, std::size_t indent) {
    next_ = 0;
    block(os, 0, indent);
  }

 private:
  // Every element shown, read as double (through the checked accessor's conversion).
  void collect(std::size_t axis, index_t base, std::vector<long double>& out) const {
    const fg::extents& e = v_.shape();
    if (axis == e.rank()) {
      out.push_back(v_.at<long double>(sindex_t(base)));
      return;
    }
    for (sindex_t i : shown_indices(e[axis], summarise_, o_.edgeitems))
      if (i >= 0)
        collect(axis + 1, base * e[axis] + index_t(i), out);
  }
  void block(std::ostream& os, std::size_t axis, std::size_t indent) {
    const fg::extents& e = v_.shape();
    if (axis == e.rank()) {
      os << pad(cells_[next_++]);
      return;
    }
    const std::vector<sindex_t> idx = shown_indices(e[axis], summarise_, o_.edgeitems);
    const bool last = axis + 1 == e.rank();
    // Elements per line of the innermost axis: what fits in linewidth after the '[' (PyTorch's
    // rule, with this bracket's column for the width of "tensor(").
    const auto room = std::ptrdiff_t(o_.linewidth) - std::ptrdiff_t(indent);
    const std::size_t per_line =
        std::max<std::size_t>(1, std::size_t(std::max<std::ptrdiff_t>(room, 0)) / (width_ + 2));
    os << '[';
    for (std::size_t k = 0; k < idx.size(); ++k) {
      if (k) {
        os << ',';
        if (!last)
          os << std::string(e.rank() - axis - 1, '\n') << std::string(indent + 1, ' ');
        else if (k % per_line == 0)
          os << '\n' << std::string(indent + 1, ' ');
        else
          os << ' ';
      }
      if (idx[k] < 0)
        os << (last ? " ..." : "...");  // (PyTorch's spacing)
      else
        block(os, axis + 1, indent + 1);
    }
    os << ']';
  }
  std::string pad(const std::string& s) const {
    return std::string(width_ > s.size() ? width_ - s.size() : 0, ' ') + s;
  }

  const var& v_;
  const print_options& o_;
  bool summarise_;
  std::vector<std::string> cells_;  // the shown elements, formatted, in row-major order
  std::size_t next_ = 0;
  std::size_t width_ = 0;
};

}  // namespace dynamic

// var([[2., 4.],
//      [6., 8.]], shape=[2, 2], float32, op=mul)
inline std::ostream& operator<<(std::ostream& os, const var& v) {
  if (!v.defined())
    return os << "var(undefined)";
  const var h = v.on_device() ? v.to(host) : v;
  os << "var(";
  dynamic::var_printer(h, dynamic::current_print_options()).print(os, 4);
  os << ", shape=" << v.shape().str() << ", " << dtype_name(v.dtype());
  if (*v.op_name())
    os << ", op=" << v.op_name();
  else if (v.requires_grad())
    os << ", requires_grad";
  return os << ')';
}

}  // namespace fg

FG_DIAGNOSTICS_END
