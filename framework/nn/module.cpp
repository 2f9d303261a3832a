#include "nn/module.h"

#include <nlohmann/json.hpp>

namespace xg::nn {

namespace {
/// No module's own members span this much: an address further away is not a member (a local, a vector's element).
constexpr std::ptrdiff_t kMaxObjectBytes = std::ptrdiff_t(1) << 20;
}  // namespace

template <class T>
void Module<T>::check_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos)
    throw std::invalid_argument(type_ + ": a registered name must be non-empty and contain no '.', got '" + name + "'");
  const auto taken = [&](const auto& list) {
    for (const auto& e : list)
      if (e.name == name) return true;
    return false;
  };
  if (taken(params_) || taken(buffers_) || taken(children_))
    throw std::invalid_argument(type_ + ": '" + name + "' is registered twice");
}

template <class T>
std::ptrdiff_t Module<T>::member_offset(const void* member, const std::string& name) const {
  // The object being constructed starts at dynamic_cast<const void*>(this); its members lie after that start.
  const auto* object = static_cast<const char*>(dynamic_cast<const void*>(this));
  const auto* at = static_cast<const char*>(member);
  const std::ptrdiff_t from_object = at - object;
  if (from_object < 0 || from_object >= kMaxObjectBytes)
    throw std::invalid_argument(type_ + ": '" + name +
                                "' is not a member of this module (register a local or a container's element as an "
                                "owned part: an rvalue, or a std::shared_ptr for a submodule)");
  return at - reinterpret_cast<const char*>(this);
}

template <class T>
std::vector<NamedParameter<T>> Module<T>::named_parameters(bool recurse) const {
  std::vector<NamedParameter<T>> out;
  for (const auto& e : params_)
    if (get(e)->defined()) out.emplace_back(e.name, *get(e));
  if (recurse)
    for (const auto& c : children_)
      for (auto& [name, p] : get(c)->named_parameters()) out.emplace_back(c.name + "." + name, p);
  return out;
}

template <class T>
std::vector<NamedBuffer<T>> Module<T>::named_buffers(bool recurse) {
  std::vector<NamedBuffer<T>> out;
  for (const auto& e : buffers_) out.emplace_back(e.name, get(e));
  if (recurse)
    for (const auto& c : children_)
      for (auto& [name, b] : get(c)->named_buffers()) out.emplace_back(c.name + "." + name, b);
  return out;
}

template <class T>
std::vector<std::pair<std::string, Module<T>*>> Module<T>::named_children() {
  std::vector<std::pair<std::string, Module*>> out;
  for (const auto& c : children_) out.emplace_back(c.name, get(c));
  return out;
}
template <class T>
std::vector<std::pair<std::string, const Module<T>*>> Module<T>::named_children() const {
  std::vector<std::pair<std::string, const Module*>> out;
  for (const auto& c : children_) out.emplace_back(c.name, get(c));
  return out;
}

template <class T>
std::vector<Variable<T>> Module<T>::parameters(bool recurse) const {
  std::vector<Variable<T>> out;
  for (auto& np : named_parameters(recurse)) out.push_back(np.second);
  return out;
}

template <class T>
std::size_t Module<T>::num_parameters() const {
  std::size_t n = 0;
  for (auto& p : parameters()) n += p.numel();
  return n;
}

template <class T>
void Module<T>::train(bool on) {
  training_ = on;
  for (const auto& c : children_) get(c)->train(on);
}

template <class T>
void Module<T>::zero_grad() {
  for (auto& p : parameters()) p.zero_grad();
}

template <class T>
void Module<T>::set_generator(Rng& rng) {
  use_generator(rng);
  for (const auto& c : children_) get(c)->set_generator(rng);
}

template <class T>
std::string Module<T>::describe() const {
  std::string s = type_;
  const auto kids = named_children();
  if (settings_.empty() && kids.empty()) return s;
  s += '(';
  bool first = true;
  for (const auto& st : settings_) {
    s += (first ? "" : ", ") + st.name + "=" + st.value;
    first = false;
  }
  for (const auto& [name, child] : kids) {
    s += (first ? "" : ", ") + name + "=" + child->describe();
    first = false;
  }
  return s + ")";
}

namespace {
template <class T>
nlohmann::json record_of(const Module<T>& m) {
  nlohmann::json settings = nlohmann::json::object(), children = nlohmann::json::array();
  for (const auto& st : m.settings()) settings[st.name] = st.value;
  for (const auto& [name, child] : m.named_children()) children.push_back({name, record_of(*child)});
  return {{"type", m.type_name()}, {"settings", settings}, {"children", children}};
}
}  // namespace

template <class T>
std::string Module<T>::architecture() const {
  // Names and settings are the program's own text; a byte that is not UTF-8 is replaced rather than thrown over.
  return record_of(*this).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

template class Module<float>;
template class Module<double>;
template class Sequential<float>;
template class Sequential<double>;
}  // namespace xg::nn
