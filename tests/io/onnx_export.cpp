// tests/io/onnx_export.cpp — traces models and op mixes, exports each as ONNX with its inputs and
// fusegrad's outputs (npy) for tests/io/onnx_check.py, which runs them in ONNX Runtime.
//
//   fusegrad_onnx_export <dir>   writes <case>.onnx, <case>.in<k>.npy, <case>.out<k>.npy
#include <fusegrad/io/npy.hpp>
#include <fusegrad/io/onnx.hpp>
#include <fusegrad/nn.hpp>

#include <cstdio>
#include <array>
#include <functional>
#include <string>
#include <vector>

namespace nn = fg::nn;

namespace {

std::string dir;

// Traces f on `inputs`, checks the graph against the eager call, writes the model and the data.
void export_case(const std::string& name, const std::vector<fg::var>& inputs,
                 const std::function<std::vector<fg::var>(std::span<const fg::var>)>& f,
                 const fg::io::onnx_options& options = {}) {
  const fg::graph g =
      inputs.size() == 1
          ? fg::trace([&](const fg::var& a) { return f({&a, 1}); }, inputs[0])
          : fg::trace([&](const fg::var& a, const fg::var& b) { return f(std::array{a, b}); },
                      inputs[0], inputs[1]);
  fg::no_grad off;
  const std::vector<fg::var> eager = f(inputs), traced = g.run(inputs);
  for (std::size_t k = 0; k < eager.size(); ++k)
    if (fg::max(fg::abs(eager[k].to(fg::float64) - traced[k].to(fg::float64))).item() != 0)
      throw std::runtime_error(name + ": the traced graph differs from the eager function");
  fg::io::save_onnx(dir + name + ".onnx", g, options);
  for (std::size_t k = 0; k < inputs.size(); ++k)
    fg::io::save_npy(dir + name + ".in" + std::to_string(k) + ".npy", inputs[k]);
  for (std::size_t k = 0; k < eager.size(); ++k)
    fg::io::save_npy(dir + name + ".out" + std::to_string(k) + ".npy", eager[k]);
  std::printf("%s: %zu steps, %zu outputs\n", name.c_str(), g.steps().size(), eager.size());
}

// The Fashion-MNIST CNN of examples/fashion_mnist.cpp, and a smaller one with BatchNorm (in
// evaluation mode, after its running statistics moved) and average pooling.
void cnn(fg::generator& g) {
  nn::Sequential model(nn::Conv2d(1, 32, 3, g), nn::ReLU(), nn::MaxPool2d(2),
                       nn::Conv2d(32, 64, 3, g), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
                       nn::Linear(1600, 10, g));
  export_case("fashion_cnn", {fg::var::randn({8, 1, 28, 28}, g)},
              [&](std::span<const fg::var> in) {
                const fg::var logits = model.forward(in[0]);
                return std::vector<fg::var>{logits, nn::softmax(logits, 1)};
              },
              {.names = model.named_parameters()});
  nn::Sequential bn(nn::Conv2d(3, 8, 3, g, 2, 1), nn::BatchNorm2d(8), nn::GELU(),
                    nn::AvgPool2d(2), nn::Flatten(), nn::Linear(32, 4, g), nn::Tanh());
  bn.forward(fg::var::randn({16, 3, 8, 8}, g) * 2.0 + 0.5);  // training: running statistics move
  bn.train(false);
  export_case("batchnorm_cnn", {fg::var::randn({4, 3, 8, 8}, g)},
              [&](std::span<const fg::var> in) { return std::vector<fg::var>{bn.forward(in[0])}; });
}

// Tokens [T, B] (int64) of different lengths through Embedding, LSTM (or GRU) and a linear
// head on the last state.
void recurrent(fg::generator& g) {
  nn::Embedding embed(10, 8, g);
  nn::LSTM lstm(8, 16, g);
  nn::GRU gru(8, 16, g);
  nn::Linear head(16, 3, g);
  const fg::var tokens = fg::var::randint(0, 10, {7, 4}, g);
  const std::vector<fg::index_t> lengths{7, 5, 3, 7};
  export_case("lstm_classifier", {tokens}, [&](std::span<const fg::var> in) {
    const nn::rnn_result r = lstm.run(embed.forward(in[0]), lengths);
    return std::vector<fg::var>{head.forward(r.h), r.output, r.c};
  });
  export_case("lstm_full_length", {tokens}, [&](std::span<const fg::var> in) {
    return std::vector<fg::var>{head.forward(lstm.run(embed.forward(in[0])).h)};
  });
  export_case("gru_classifier", {tokens}, [&](std::span<const fg::var> in) {
    return std::vector<fg::var>{head.forward(gru.run(embed.forward(in[0]), lengths).h)};
  });
}

// A Transformer encoder block (post-norm, as torch.nn.TransformerEncoderLayer's default):
// causal self-attention, residual, LayerNorm, a GELU feed-forward, residual, LayerNorm.
void transformer(fg::generator& g) {
  const fg::index_t E = 32, T = 16;
  nn::MultiheadAttention attn(E, 4, g);
  nn::LayerNorm norm1(E), norm2(E);
  nn::Linear up(E, 64, g), down(64, E, g);
  const fg::var mask = nn::causal_mask(T);
  export_case("transformer_block", {fg::var::randn({2, T, E}, g)},
              [&](std::span<const fg::var> in) {
                const fg::var& x = in[0];
                const fg::var h = norm1.forward(x + attn.attend(x, x, x, mask));
                return std::vector<fg::var>{norm2.forward(h + down.forward(nn::gelu(up.forward(h))))};
              });
}

// The ops a model rarely holds, several per output.
void ops(fg::generator& g) {
  const fg::var x = fg::var::randn({3, 4}, g), y = fg::var::rand({3, 4}, g) + 0.5;
  const fg::var i = fg::var::randint(0, 3, {2, 4}, g), cls = fg::var::randint(0, 4, {3}, g);
  export_case("ops_elementwise", {x, y}, [](std::span<const fg::var> in) {
    const fg::var &a = in[0], &b = in[1];
    return std::vector<fg::var>{
        a + b * 2.0 - b / 3.0,
        fg::pow(b, a) + fg::abs(a) + fg::sqrt(b) + fg::exp(a) + fg::log(b),
        fg::log1p(b) + fg::expm1(a) + fg::sin(a) * fg::cos(b) + fg::square(a),
        fg::tanh(a) + fg::sigmoid(b) + fg::relu(a) + fg::softplus(a) + fg::erf(a) - (-a),
        fg::maximum(a, b) + fg::minimum(a, b),
        fg::where(a > b, a, b) + fg::where(a <= 0.0, b, a) + (a < b).to(fg::float32) +
            (a >= b).to(fg::float32) + (a == a).to(fg::float32) + (a != b).to(fg::float32),
        fg::clamp(a, -0.5, 0.5),
        (a * 10.0).to(fg::int32),
    };
  });
  export_case("ops_reduce", {x}, [](std::span<const fg::var> in) {
    const fg::var& a = in[0];
    return std::vector<fg::var>{fg::sum(a),          fg::sum(a, {1}, true), fg::mean(a, {0}),
                                fg::prod(a, {1}),    fg::max(a, {0}),       fg::min(a),
                                fg::logsumexp(a, {1}), fg::cumsum(a, 1),    fg::argmax(a, 1),
                                fg::argmin(a, 0, true), fg::argmax(a)};
  });
  export_case("ops_layout", {x, i}, [](std::span<const fg::var> in) {
    const fg::var &a = in[0], &idx = in[1];
    return std::vector<fg::var>{
        fg::reshape(a, {2, 6}),
        fg::transpose(a),
        fg::slice(a, 1, 1, 3),
        fg::slice(a, 1, -3, 4, 2),
        fg::concat({a, a * 2.0}, 0),
        fg::flip(a, {0, 1}),
        fg::repeat(a, {2, 1, 2}),
        fg::pad(a, {1, 2, 0, 1}, fg::pad_mode::constant, 7.0),
        fg::pad(a, {1, 1}, fg::pad_mode::reflect),
        fg::pad(a, {2, 0, 1, 1}, fg::pad_mode::replicate),
        fg::broadcast_to(fg::slice(a, 0, 0, 1), {3, 4}),
        fg::gather(a, 0, idx),
        fg::index_select(a, 1, fg::slice(fg::reshape(idx, {8}), 0, 0, 3)),
        fg::scatter(fg::var::zeros({3, 4}), 0, idx, a),
        fg::scatter_add(fg::var::zeros({3, 4}), 0, idx, a),
        fg::scatter(fg::var::zeros({3, 4}), 0, idx, 2.5),
        fg::masked_fill(a, a > 0.0, -1.0),
        fg::matmul(a, fg::transpose(a)),
    };
  });
  export_case("ops_sort_loss", {x, cls}, [](std::span<const fg::var> in) {
    const fg::var &a = in[0], &t = in[1];
    const fg::sorted_result s = fg::sort(a, 1, true), k = fg::topk(a, 2, 0);
    return std::vector<fg::var>{s.values,
                                s.indices,
                                fg::argsort(a, 0),
                                k.values,
                                k.indices,
                                nn::cross_entropy(a, t),
                                nn::nll_loss(nn::log_softmax(a, 1), t),
                                nn::lstm_cell(fg::concat({a, a}, 1), fg::slice(a, 1, 0, 2))};
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fusegrad_onnx_export <dir>\n");
    return 2;
  }
  dir = std::string(argv[1]) + "/";
  fg::generator g(17);
  cnn(g);
  recurrent(g);
  transformer(g);
  ops(g);
  return 0;
}
