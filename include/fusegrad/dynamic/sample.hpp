// fusegrad/dynamic/sample.hpp — multinomial: category indices drawn from rows of weights, with
// or without replacement, from a seeded generator (or the default one)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/graph.hpp"

#include <cmath>
#include <cstdint>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg {

namespace dynamic {

// Uniform in [0, 1) with 53 random bits (the generator's `uniform` has 24: too coarse to pick
// among many small probabilities).
inline double uniform53(generator& g) {
  const std::uint64_t bits = (std::uint64_t(g.next()) << 32 | g.next()) >> 11;
  return double(bits) * 0x1p-53;
}

}  // namespace dynamic

// `num_samples` category indices (int64) drawn from each row of `weights` ([C] or [N, C],
// non-negative, any scale: they are normalised), as torch.multinomial: with replacement, each
// draw independent; without, a category drawn once is not drawn again, so num_samples must not
// exceed the categories with non-zero weight. Result: [num_samples] or [N, num_samples].
inline var multinomial(const var& weights, index_t num_samples, bool replacement, generator& g) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record(
        "multinomial",
        {{"num_samples", num_samples}, {"replacement", replacement}, {"generator", &g}}, {&weights},
        [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
          return dynamic::draw_from(at.gen(2), [&](generator& g) {
            return multinomial(ins[0], index_t(at.i(0)), at.flag(1), g);
          });
        });
  if (weights.rank() != 1 && weights.rank() != 2)
    throw shape_error(dynamic::text("fg::multinomial(): the weights are ", weights.shape().str(),
                                    "; they must be [categories] or [rows, categories]"));
  if (!is_floating(weights.dtype()))
    throw dtype_error(dynamic::text("fg::multinomial(): the weights are ",
                                    dtype_name(weights.dtype()),
                                    "; they must be floating (convert with .to(fg::float32))"));
  const index_t rows = weights.rank() == 2 ? weights.shape()[0] : 1;
  const index_t cats = weights.shape()[weights.rank() - 1];
  if (cats == 0)
    throw shape_error("fg::multinomial(): there are no categories to draw from");
  const var w64 = weights.to(dtype::float64);
  const double* w = w64.data<double>();
  var out = weights.rank() == 2 ? var::empty({rows, num_samples}, dtype::int64)
                                : var::empty({num_samples}, dtype::int64);
  std::int64_t* dst = out.data<std::int64_t>();
  std::vector<double> left(std::size_t(cats), 0.0);
  for (index_t r = 0; r < rows; ++r) {
    const double* row = w + r * cats;
    double total = 0;
    index_t positive = 0;
    for (index_t c = 0; c < cats; ++c) {
      if (!(row[c] >= 0) || std::isinf(row[c]))
        throw std::invalid_argument(dynamic::text("fg::multinomial(): row ", r, " holds ", row[c],
                                                  " at category ", c,
                                                  "; weights must be finite and non-negative"));
      total += row[c];
      positive += row[c] > 0;
    }
    if (!(total > 0))
      throw std::invalid_argument(
          dynamic::text("fg::multinomial(): row ", r, " has no positive weight to draw from"));
    if (!replacement && num_samples > positive)
      throw std::invalid_argument(
          dynamic::text("fg::multinomial(): ", num_samples, " draws without replacement from row ",
                        r, ", which has only ", positive, " categories of non-zero weight"));
    std::copy(row, row + cats, left.begin());
    for (index_t s = 0; s < num_samples; ++s) {
      // Inverse CDF over what is left; the last category of non-zero weight takes the rest of
      // [0, total) that rounding may leave.
      const double u = dynamic::uniform53(g) * total;
      double acc = 0;
      index_t pick = cats;
      for (index_t c = 0; c < cats; ++c) {
        if (left[std::size_t(c)] <= 0)
          continue;
        pick = c;
        acc += left[std::size_t(c)];
        if (u < acc)
          break;
      }
      dst[r * num_samples + s] = std::int64_t(pick);
      if (!replacement) {  // (the total summed anew: subtracting would drift by rounding)
        left[std::size_t(pick)] = 0;
        total = 0;
        for (double v : left)
          total += v;
      }
    }
  }
  return out;
}
inline var multinomial(const var& weights, index_t num_samples, bool replacement = false) {
  return dynamic::with_default_generator(
      [&](generator& g) { return multinomial(weights, num_samples, replacement, g); });
}

}  // namespace fg

FG_DIAGNOSTICS_END
