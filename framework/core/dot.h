#pragma once
/// \file dot.h
/// The dynamic graph behind a Variable as Graphviz DOT, for looking at what was recorded.

#include <string>

#include "core/variable.h"

namespace xg {

/// The graph that produced `root`, in Graphviz DOT: one box per recorded op (its name and output shape), one ellipse
/// per leaf (its name if set, its shape, and whether it requires grad), and an edge from each input to the op that
/// consumed it — solid when that input needs a gradient, dashed when not. Render with `dot -Tsvg graph.dot`.
template <class T>
std::string to_dot(const Variable<T>& root);

}  // namespace xg
