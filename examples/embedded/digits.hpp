// examples/embedded/digits.hpp — 8x8 handwritten-like digits, generated from a 5x7 font with
// random shifts, stroke intensity and pixel noise: a dataset that fits in no memory at all.
#pragma once

#include <fusegrad/static_nn.hpp>

#include <cstdint>

namespace digits {

inline constexpr int side = 8, pixels = side * side, classes = 10;

// Rows of 5-pixel glyphs, most significant bit on the left.
inline constexpr std::uint8_t font[classes][7] = {
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}};

// Draws digit `label` into `out` (64 values in [0, 1]): shifted by up to 3 columns and 1 row,
// strokes of random intensity, and about one pixel in twenty flipped.
template <class T> void draw(int label, fg::static_nn::generator& g, T* out) {
  const int dx = int(g.below(4)), dy = int(g.below(2));
  for (int i = 0; i < pixels; ++i)
    out[i] = T(0);
  for (int r = 0; r < 7; ++r)
    for (int c = 0; c < 5; ++c)
      if (font[label][r] & (0x10 >> c))
        out[(r + dy) * side + c + dx] = g.uniform(T(0.5), T(1));
  for (int i = 0; i < pixels; ++i)
    if (g.below(20) == 0)
      out[i] = out[i] > T(0) ? T(0) : g.uniform(T(0.3), T(0.9));
}

// A batch of B random digits: images [B, 64] and one-hot labels [B, 10].
template <class T, fg::index_t B>
void batch(fg::static_nn::generator& g, fg::tensor<T, fg::shape<B, pixels>>& x,
           fg::tensor<T, fg::shape<B, classes>>& y) {
  int labels[B];
  for (fg::index_t r = 0; r < B; ++r) {
    labels[r] = int(g.below(classes));
    draw(labels[r], g, x.data() + r * pixels);
  }
  fg::static_nn::one_hot(labels, y);
}

}  // namespace digits
