// fusegrad/nn/data.hpp — a batching, seeded-shuffling loader over in-memory examples
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/random.hpp"
#include "fusegrad/dynamic/var.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <utility>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

struct batch {
  var inputs, targets;
};

// Examples are the first axis of `inputs` and `targets`. Each pass (range-for) visits every
// example once in batches of `batch_size` (the last may be smaller unless `drop_last`), in a
// new order each pass when shuffling: the same seed gives the same orders.
class DataLoader {
 public:
  DataLoader(var inputs, var targets, index_t batch_size, bool shuffle = true,
             std::uint64_t seed = 0, bool drop_last = false)
      : x_(std::move(inputs)),
        y_(std::move(targets)),
        batch_(batch_size),
        shuffle_(shuffle),
        drop_last_(drop_last),
        seed_(seed) {
    if (x_.rank() < 1 || y_.rank() < 1 || x_.shape()[0] != y_.shape()[0] || batch_size < 1)
      throw shape_error(dynamic::text("fg::nn::DataLoader: inputs ", x_.shape().str(), ", targets ",
                                      y_.shape().str(), ", batch size ", batch_size,
                                      "; both need the same first extent, and batches at least 1"));
    order_.resize(std::size_t(x_.shape()[0]));
    std::iota(order_.begin(), order_.end(), index_t(0));
  }
  index_t size() const { return x_.shape()[0]; }
  index_t batches() const { return drop_last_ ? size() / batch_ : (size() + batch_ - 1) / batch_; }

  class iterator {
   public:
    nn::batch operator*() const { return loader_->gather(b_); }
    iterator& operator++() {
      ++b_;
      return *this;
    }
    bool operator!=(const iterator& o) const { return b_ != o.b_; }

   private:
    friend class DataLoader;
    iterator(const DataLoader* l, index_t b) : loader_(l), b_(b) {}
    const DataLoader* loader_;
    index_t b_;
  };
  // A new pass. Its order depends only on the seed and the pass number (Fisher-Yates from a
  // generator seeded with both), so a run resumed at an epoch sees the orders it would have.
  iterator begin() {
    if (shuffle_) {
      std::iota(order_.begin(), order_.end(), index_t(0));
      generator g(seed_ + 0x9e3779b97f4a7c15ULL * std::uint64_t(pass_));
      for (std::size_t i = order_.size(); i > 1; --i)
        std::swap(order_[i - 1], order_[g.below(std::uint32_t(i))]);
    }
    ++pass_;
    return {this, 0};
  }
  // Passes made so far; setting it makes the next pass that one (for resuming a run).
  long passes() const { return pass_; }
  void set_passes(long p) { pass_ = p; }
  iterator end() const { return {this, batches()}; }

 private:
  static var rows(const var& src, const index_t* idx, index_t n) {
    extents e = src.shape();
    e[0] = n;
    var out = var::empty(e, src.dtype());
    const std::size_t row =
        std::size_t(src.size() / src.shape()[0]) * dynamic::element_size(src.dtype());
    const dynamic::impl& in = src.ready();
    const auto* s = static_cast<const unsigned char*>(in.data->bytes) +
                    in.offset * dynamic::element_size(src.dtype());
    auto* d = static_cast<unsigned char*>(out.get().data->bytes);
    for (index_t i = 0; i < n; ++i)
      std::memcpy(d + std::size_t(i) * row, s + std::size_t(idx[i]) * row, row);
    return out;
  }
  nn::batch gather(index_t b) const {
    const index_t first = b * batch_, n = std::min(batch_, size() - first);
    return {rows(x_, order_.data() + first, n), rows(y_, order_.data() + first, n)};
  }

  var x_, y_;
  index_t batch_;
  bool shuffle_, drop_last_;
  std::uint64_t seed_;
  long pass_ = 0;
  std::vector<index_t> order_;
};

}  // namespace fg::nn

FG_DIAGNOSTICS_END
