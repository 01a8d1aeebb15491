// A character-level Transformer language model, as a PyTorch user would write it: token ids as
// int64, a causal self-attention block, AdamW, accuracy by argmax against int64 targets, and
// text sampled with multinomial over softmax(logits / temperature). No loops over elements.
//
//   char_lm [steps]      trains (default 400 steps), prints held-out accuracy and a sample;
//                        exits 1 below 45% held-out next-character accuracy
#include <fusegrad/dynamic.hpp>
#include <fusegrad/nn.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace nn = fg::nn;

namespace {

// Public-domain verse (Jane Taylor, 1806), repeated structure a small model can learn.
const char* text =
    "twinkle, twinkle, little star,\nhow I wonder what you are!\nup above the world so high,\n"
    "like a diamond in the sky.\ntwinkle, twinkle, little star,\nhow I wonder what you are!\n"
    "when the blazing sun is gone,\nwhen he nothing shines upon,\nthen you show your little "
    "light,\ntwinkle, twinkle, all the night.\ntwinkle, twinkle, little star,\nhow I wonder "
    "what you are!\nthen the traveller in the dark\nthanks you for your tiny spark,\nhe could "
    "not see which way to go,\nif you did not twinkle so.\ntwinkle, twinkle, little star,\nhow "
    "I wonder what you are!\n";

constexpr fg::index_t context = 32, embed = 48, heads = 4;

// One pre-norm Transformer block and a head: logits [B, L, vocab] for ids [B, L] (int64).
class char_transformer : public nn::module {
 public:
  char_transformer(fg::index_t vocab, fg::generator& g)
      : tok(register_module("tok", std::make_shared<nn::Embedding>(vocab, embed, g))),
        pos(register_module("pos", std::make_shared<nn::Embedding>(context, embed, g))),
        ln1(register_module("ln1", std::make_shared<nn::LayerNorm>(embed))),
        attn(register_module("attn", std::make_shared<nn::MultiheadAttention>(embed, heads, g))),
        ln2(register_module("ln2", std::make_shared<nn::LayerNorm>(embed))),
        up(register_module("up", std::make_shared<nn::Linear>(embed, 4 * embed, g))),
        down(register_module("down", std::make_shared<nn::Linear>(4 * embed, embed, g))),
        head(register_module("head", std::make_shared<nn::Linear>(embed, vocab, g))) {}

  fg::var forward(const fg::var& ids) override {
    const fg::index_t L = ids.shape()[1];
    fg::var h = tok->forward(ids) + pos->forward(fg::var::arange(fg::sindex_t(L)));
    const fg::var n1 = ln1->forward(h);
    h = h + attn->attend(n1, n1, n1, nn::causal_mask(L));
    h = h + down->forward(nn::gelu(up->forward(ln2->forward(h))));
    return head->forward(h);
  }

  std::shared_ptr<nn::Embedding> tok, pos;
  std::shared_ptr<nn::LayerNorm> ln1;
  std::shared_ptr<nn::MultiheadAttention> attn;
  std::shared_ptr<nn::LayerNorm> ln2;
  std::shared_ptr<nn::Linear> up, down, head;
};

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 400;
  // The vocabulary: every character of the text, in order of first appearance.
  std::string chars;
  std::map<char, std::int64_t> id_of;
  std::vector<std::int64_t> ids;
  for (const char* c = text; *c; ++c) {
    if (!id_of.count(*c)) {
      id_of[*c] = std::int64_t(chars.size());
      chars += *c;
    }
    ids.push_back(id_of[*c]);
  }
  const fg::index_t vocab = chars.size(), n = ids.size(), split = n * 9 / 10;
  const fg::var data = fg::var::from(ids, {n});  // int64
  // Batch b: rows of `context` ids from random starts in [lo, hi - context - 1), and the ids one
  // position later as targets.
  fg::generator g(7);
  auto batch = [&](fg::index_t rows, fg::sindex_t lo, fg::sindex_t hi) {
    const fg::var starts = fg::var::randint(lo, hi - fg::sindex_t(context) - 1, {rows}, g);
    const fg::var offsets = fg::var::arange(fg::sindex_t(context));
    const fg::var at = fg::reshape(starts, {rows, 1}) + offsets;  // int64 [rows, context]
    const fg::var flat = fg::reshape(at, {rows * context});
    return std::pair{fg::reshape(fg::index_select(data, 0, flat), {rows, context}),
                     fg::reshape(fg::index_select(data, 0, flat + 1), {rows, context})};
  };

  char_transformer model(vocab, g);
  nn::AdamW opt(model.parameters(), {.lr = 3e-3, .weight_decay = 0.01});
  for (int step = 1; step <= steps; ++step) {
    auto [x, y] = batch(16, 0, fg::sindex_t(split));
    opt.zero_grad();
    fg::var loss = nn::cross_entropy(fg::reshape(model(x), {16 * context, vocab}),
                                     fg::reshape(y, {16 * context}));
    loss.backward();
    opt.step();
    if (step % 100 == 0)
      std::printf("step %d loss %.3f\n", step, loss.item());
  }

  // Held-out accuracy: argmax of the logits against the int64 targets.
  fg::no_grad off;
  auto [x, y] = batch(32, fg::sindex_t(split) - fg::sindex_t(context), fg::sindex_t(n));
  const fg::var predicted = fg::argmax(model(x), -1);  // int64 [32, context]
  const double accuracy = fg::mean((predicted == y).to(fg::float32)).item();
  std::printf("held-out next-character accuracy: %.1f%%\n", 100 * accuracy);

  // Sampling: softmax(logits / T) of the last position, one multinomial draw per character.
  const double temperature = 0.8;
  std::vector<std::int64_t> out(ids.begin(), ids.begin() + context);
  for (int i = 0; i < 160; ++i) {
    const fg::var window = fg::var::from(
        std::span<const std::int64_t>(out.data() + out.size() - context, context), {1, context});
    const fg::var logits = fg::select(fg::select(model(window), 0, 0), 0, context - 1);
    const fg::var probs = nn::softmax(logits * (1.0 / temperature));
    out.push_back(fg::multinomial(probs, 1, false, g).item<std::int64_t>());
  }
  std::string sample;
  for (std::size_t i = context; i < out.size(); ++i)
    sample += chars[std::size_t(out[i])];
  std::printf("sample (T = %.1f):\n%s\n", temperature, sample.c_str());
  return accuracy >= 0.45 ? 0 : 1;
}
