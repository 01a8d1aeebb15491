// examples/sequence_classifier.cpp — an LSTM over sequences of different lengths: the graph
// differs from batch to batch, which the dynamic path takes as plain C++.
//
// Each sequence holds 4 to 24 digits (0..9); its class is whether their mean is above 4.5. An
// embedding feeds an LSTM, whose state after each sequence's own last digit feeds a linear
// classifier. Exit status 1 below 90% accuracy on sequences it never saw.
#include <fusegrad/nn.hpp>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace nn = fg::nn;

struct batch {
  fg::var tokens;  // [T, B]: digits, padded with 0 past each sequence's length
  fg::var labels;  // [B]
  std::vector<fg::index_t> lengths;
};

batch make_batch(fg::generator& g, fg::index_t size) {
  batch b;
  std::vector<std::vector<int>> seqs;
  fg::index_t longest = 0;
  for (fg::index_t i = 0; i < size; ++i) {
    const fg::index_t len = 4 + g.below(21);
    std::vector<int> s;
    for (fg::index_t t = 0; t < len; ++t)
      s.push_back(int(g.below(10)));
    seqs.push_back(s);
    b.lengths.push_back(len);
    longest = std::max(longest, len);
  }
  b.tokens = fg::var::zeros({longest, size}, fg::int64);
  b.labels = fg::var::zeros({size}, fg::int64);
  for (fg::index_t i = 0; i < size; ++i) {
    int total = 0;
    for (std::size_t t = 0; t < seqs[i].size(); ++t) {
      b.tokens.set({fg::sindex_t(t), fg::sindex_t(i)}, seqs[i][t]);
      total += seqs[i][t];
    }
    b.labels.set(fg::sindex_t(i), double(total) / double(seqs[i].size()) > 4.5 ? 1 : 0);
  }
  return b;
}

class classifier : public nn::module {
 public:
  explicit classifier(fg::generator& g)
      : embed(register_module("embed", std::make_shared<nn::Embedding>(10, 8, g))),
        lstm(register_module("lstm", std::make_shared<nn::LSTM>(8, 32, g))),
        head(register_module("head", std::make_shared<nn::Linear>(32, 2, g))) {}
  // Logits [B, 2] for tokens [T, B] of the given lengths.
  fg::var classify(const batch& b) {
    return head->forward(lstm->run(embed->forward(b.tokens), b.lengths).h);
  }
  fg::var forward(const fg::var&) override {
    throw std::logic_error("classifier: call classify(batch), which knows the lengths");
  }
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Linear> head;
};

int main() {
  fg::generator g(2026);
  classifier model(g);
  nn::Adam opt(model.parameters(), {.lr = 1e-2});
  for (int step = 1; step <= 300; ++step) {
    const batch b = make_batch(g, 32);  // every batch has its own lengths, so its own graph
    opt.zero_grad();
    fg::var loss = nn::cross_entropy(model.classify(b), b.labels);
    loss.backward();
    opt.step();
    if (step % 50 == 0)
      std::printf("step %d: loss %.4f (longest sequence %lld)\n", step, loss.item(),
                  (long long)b.tokens.shape()[0]);
  }
  fg::no_grad off;
  const batch test = make_batch(g, 1000);
  const fg::var logits = model.classify(test);
  int right = 0;
  for (fg::index_t i = 0; i < 1000; ++i)
    right += (logits(i, 1) > logits(i, 0)) == (test.labels.at<int>(fg::sindex_t(i)) == 1);
  std::printf("accuracy on 1000 new sequences: %.1f%%\n", right / 10.0);
  return right >= 900 ? 0 : 1;
}
