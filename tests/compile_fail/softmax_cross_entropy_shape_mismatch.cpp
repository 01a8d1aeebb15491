// expect: fg::softmax_cross_entropy\(\): logits and targets must have the same shape
#include <fusegrad/fusegrad.hpp>

fg::tensor<float, fg::shape<8, 10>> logits;
fg::tensor<float, fg::shape<8, 9>> labels;  // one class short
auto loss = fg::softmax_cross_entropy(logits, labels);
