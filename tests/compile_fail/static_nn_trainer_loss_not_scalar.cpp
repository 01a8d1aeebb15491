// expect: fg::static_nn::trainer: the loss must reduce to a scalar
#include <fusegrad/static_nn.hpp>

namespace nn = fg::static_nn;

// A per-row loss left unreduced: the trainer needs one number to differentiate.
struct per_row_loss {
  template <class Z, class Y> auto operator()(Z&& z, Y&& y) const {
    return fg::softmax_cross_entropy(std::forward<Z>(z), std::forward<Y>(y));
  }
};

using net = nn::sequential<nn::dense<float, 4, 3>>;
net model;
nn::trainer<net, per_row_loss, nn::sgd, fg::tensor<float, fg::shape<2, 4>>,
            fg::tensor<float, fg::shape<2, 3>>>
    t(model);
