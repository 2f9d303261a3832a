#include "core/dot.h"

#include <map>
#include <sstream>
#include <vector>

namespace xg {

template <class T>
std::string to_dot(const Variable<T>& root) {
  std::ostringstream out;
  out << "digraph xgrad {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=11];\n";
  std::map<const void*, std::string> ids;  // Variable state -> node id (ops are named by their output's id)
  auto id_of = [&](const Variable<T>& v) {
    std::string fresh_id = "n";
    fresh_id += std::to_string(ids.size());
    auto [it, inserted] = ids.emplace(v.id(), std::move(fresh_id));
    return std::make_pair(it->second, inserted);
  };
  std::vector<Variable<T>> stack{root};
  id_of(root);
  while (!stack.empty()) {  // iterative: graphs of any depth
    const Variable<T> v = stack.back();
    stack.pop_back();
    const std::string id = ids.at(v.id());
    if (v.is_leaf()) {
      out << "  " << id << " [shape=ellipse, label=\"" << (v.name().empty() ? "leaf" : v.name()) << "\\n"
          << shape_str(v.shape()) << (v.requires_grad() ? "\\nrequires grad" : "") << "\""
          << (v.requires_grad() ? ", style=filled, fillcolor=\"#dde8f7\"" : "") << "];\n";
      continue;
    }
    const auto& op = *v.creator();
    out << "  " << id << " [shape=box, style=\"rounded,filled\", fillcolor=\"#f3f3f3\", label=\"" << op.name() << "\\n"
        << shape_str(v.shape()) << "\"];\n";
    for (std::size_t i = 0; i < op.inputs().size(); ++i) {
      const Variable<T>& in = op.inputs()[i];
      if (!in.defined()) continue;
      const auto [in_id, fresh] = id_of(in);
      out << "  " << in_id << " -> " << id << (op.needs_grad(i) ? "" : " [style=dashed]") << ";\n";
      if (fresh) stack.push_back(in);
    }
  }
  out << "}\n";
  return out.str();
}

template std::string to_dot(const Variable<float>&);
template std::string to_dot(const Variable<double>&);

}  // namespace xg
