// fusegrad/dynamic/convert.hpp — var::to(dtype): elements converted between any two dtypes,
// differentiable between floating ones
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/graph.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg {

inline var var::to(fg::dtype t) const {
  if (t == dtype())
    return *this;
  if (dynamic::tracer* tr = dynamic::tracing()) [[unlikely]]
    return tr->record("to", {{"dtype", t}}, {this},
                      [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
                        return ins[0].to(at.type(0));
                      });
  var y = empty(shape(), t);
  const index_t n = size();
  dispatch_any(dtype(), [&](auto a) {
    using A = decltype(a);
    const A* src = data<A>();
    dispatch_any(t, [&](auto b) {
      using B = decltype(b);
      B* dst = y.data<B>();
      for (index_t i = 0; i < n; ++i)
        dst[i] = convert_element<B>(src[i]);
    });
  });
  if (is_floating(dtype()) && is_floating(t))
    dynamic::record(y, "to", {*this}, [&](dynamic::node&) {
      return [from = dtype()](const var& g) { return dynamic::var_list{g.to(from)}; };
    });
  return y;
}

}  // namespace fg

FG_DIAGNOSTICS_END
