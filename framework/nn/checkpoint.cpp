#include "nn/checkpoint.h"

#include <zlib.h>

#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/files.h"
#include "core/json_limits.h"

namespace xg::nn {

static_assert(std::endian::native == std::endian::little, "checkpoints are written in the host's byte order");

namespace {

constexpr char kMagic[8] = {'X', 'G', 'C', 'K', '\r', '\n', '\x1a', '\n'};
constexpr char kEnd[8] = {'X', 'G', 'E', 'N', 'D', '\0', '\0', '\0'};
constexpr std::size_t kAlign = 64;
constexpr std::size_t kMaxHeader = std::size_t(1) << 24;

template <class T>
const char* dtype_of() {
  return sizeof(T) == 4 ? "f32" : "f64";
}
std::size_t dtype_size(const std::string& d) { return d == "f32" ? 4 : d == "f64" ? 8 : 0; }
std::size_t align_up(std::size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }
std::uint32_t crc(const std::uint8_t* p, std::size_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  while (n > 0) {  // zlib takes uInt lengths
    const uInt chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
    c = crc32(c, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<std::uint32_t>(c);
}
template <class U>
void put(std::vector<std::uint8_t>& out, U v) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(U));
}
template <class U>
U get_le(const std::uint8_t* p) {
  U v;
  std::memcpy(&v, p, sizeof(U));
  return v;
}

/// Checkpoint headers are small: a few levels of metadata and one entry per tensor.
const JsonLimits kHeaderLimits{32, kMaxHeader};

}  // namespace

std::vector<std::uint8_t> serialize_checkpoint(const Checkpoint& ck) {
  nlohmann::json header;
  header["format"] = "xgrad-checkpoint";
  header["arch"] = ck.arch;
  header["meta"] = parse_json_bounded<CheckpointError>(ck.meta_json.begin(), ck.meta_json.end(), "checkpoint: meta_json",
                                                      kHeaderLimits);
  nlohmann::json list = nlohmann::json::array();
  std::size_t offset = 0;
  std::set<std::string> names;
  for (const auto& t : ck.tensors) {
    if (!names.insert(t.name).second)
      throw CheckpointError("checkpoint: two tensors are named '" + t.name + "'; every name must be unique");
    const std::size_t es = dtype_size(t.dtype);
    if (es == 0 || numel(t.shape) * es != t.bytes.size())
      throw CheckpointError("checkpoint: tensor '" + t.name + "' has " + std::to_string(t.bytes.size()) +
                            " bytes, which does not match dtype " + t.dtype + " and shape " + shape_str(t.shape));
    list.push_back({{"name", t.name},
                    {"dtype", t.dtype},
                    {"shape", t.shape},
                    {"offset", offset},
                    {"nbytes", t.bytes.size()},
                    {"crc32", crc(t.bytes.data(), t.bytes.size())}});
    offset = align_up(offset + t.bytes.size());
  }
  header["tensors"] = list;
  std::vector<std::uint8_t> payload(offset, 0);
  std::size_t off = 0;
  for (const auto& t : ck.tensors) {
    if (!t.bytes.empty()) std::memcpy(payload.data() + off, t.bytes.data(), t.bytes.size());
    off = align_up(off + t.bytes.size());
  }
  return frame_checkpoint(header.dump(), payload);
}

std::vector<std::uint8_t> frame_checkpoint(const std::string& header_json, const std::vector<std::uint8_t>& payload) {
  std::vector<std::uint8_t> out(kMagic, kMagic + 8);
  put<std::uint32_t>(out, Checkpoint::kVersion);
  put<std::uint64_t>(out, header_json.size());
  out.insert(out.end(), header_json.begin(), header_json.end());
  out.resize(align_up(out.size()), 0);
  out.insert(out.end(), payload.begin(), payload.end());
  put<std::uint32_t>(out, crc(out.data(), out.size()));
  out.insert(out.end(), kEnd, kEnd + 8);
  return out;
}

std::uint32_t checkpoint_crc32(const std::uint8_t* data, std::size_t size) { return crc(data, size); }

template <class T>
void Checkpoint::add(const std::string& name, const Tensor<T>& t) {
  CheckpointTensor e{name, dtype_of<T>(), shape_of(t), {}};
  e.bytes.resize(t.size() * sizeof(T));
  if (t.size()) std::memcpy(e.bytes.data(), t.data(), e.bytes.size());
  tensors.push_back(std::move(e));
}

bool Checkpoint::has(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return true;
  return false;
}

template <class T>
Tensor<T> Checkpoint::get(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) {
      if (t.dtype != dtype_of<T>())
        throw CheckpointError("checkpoint: tensor '" + name + "' is " + t.dtype + ", expected " + dtype_of<T>());
      Tensor<T> out = xg::empty<T>(t.shape);
      if (out.size()) std::memcpy(out.data(), t.bytes.data(), t.bytes.size());
      return out;
    }
  throw CheckpointError("checkpoint: no tensor named '" + name + "'");
}

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  const std::vector<std::uint8_t> bytes = serialize_checkpoint(ck);
  try {
    files::write_atomic(path, bytes.data(), bytes.size(), "checkpoint");
  } catch (const FileError& e) {
    throw CheckpointError(e.what());
  }
}

Checkpoint parse_checkpoint(const std::uint8_t* data, std::size_t size, const std::string& source) {
  auto bad = [&](const std::string& m) { return CheckpointError("checkpoint '" + files::escape_bytes(source) + "': " + m); };
  if (size < 8 + 4 + 8 + 4 + 8) throw bad("file too short (" + std::to_string(size) + " bytes) to be a checkpoint");
  if (std::memcmp(data, kMagic, 8) != 0) throw bad("bad magic: not an xgrad checkpoint");
  const auto version = get_le<std::uint32_t>(data + 8);
  if (version != Checkpoint::kVersion)
    throw bad("unsupported format version " + std::to_string(version) + " (this build reads version " +
              std::to_string(Checkpoint::kVersion) + ")");
  if (std::memcmp(data + size - 8, kEnd, 8) != 0) throw bad("missing end marker: the file is truncated or damaged");
  const auto stored_crc = get_le<std::uint32_t>(data + size - 12);
  if (crc(data, size - 12) != stored_crc) throw bad("checksum mismatch: the file is corrupted");
  const auto hlen = get_le<std::uint64_t>(data + 12);
  if (hlen > kMaxHeader || hlen > size - 20 - 12) throw bad("header length " + std::to_string(hlen) + " is out of range");
  const nlohmann::json header =
      parse_json_bounded<CheckpointError>(data + 20, data + 20 + hlen, "checkpoint '" + files::escape_bytes(source) + "': header",
                                          kHeaderLimits);
  Checkpoint ck;
  std::set<std::string> names;
  const std::size_t payload = align_up(20 + static_cast<std::size_t>(hlen));
  const std::size_t payload_end = size - 12;
  if (payload > payload_end) throw bad("payload starts beyond the end of the file");
  try {
    if (header.at("format") != "xgrad-checkpoint") throw bad("header format is not xgrad-checkpoint");
    ck.arch = json_get<std::string, CheckpointError>(header.at("arch"), "checkpoint: the architecture");
    ck.meta_json = header.at("meta").dump();
    std::size_t expected_offset = 0;
    if (!header.at("tensors").is_array()) throw bad("header: \"tensors\" is not a list");
    for (const auto& e : header.at("tensors")) {
      CheckpointTensor t;
      t.name = json_get<std::string, CheckpointError>(e.at("name"), "checkpoint: a tensor name");
      if (!names.insert(t.name).second) throw bad("two tensors are named '" + files::escape_bytes(t.name) + "'");
      const std::string field = "checkpoint '" + files::escape_bytes(source) + "': tensor '" + files::escape_bytes(t.name) + "': ";
      t.dtype = json_get<std::string, CheckpointError>(e.at("dtype"), field + "dtype");
      const std::size_t es = dtype_size(t.dtype);
      if (es == 0) throw bad("tensor '" + t.name + "' has unknown dtype '" + t.dtype + "'");
      if (!e.at("shape").is_array()) throw bad("tensor '" + t.name + "': the shape is not a list");
      std::size_t n = 1;
      for (const auto& d : e.at("shape")) {
        const auto v = json_get<std::uint64_t, CheckpointError>(d, field + "an extent");
        if (v != 0 && n > std::numeric_limits<std::size_t>::max() / v) throw bad("tensor '" + t.name + "' shape overflows");
        n *= static_cast<std::size_t>(v);
        t.shape.push_back(static_cast<std::size_t>(v));
      }
      const auto offset = json_get<std::uint64_t, CheckpointError>(e.at("offset"), field + "offset");
      const auto nbytes = json_get<std::uint64_t, CheckpointError>(e.at("nbytes"), field + "nbytes");
      if (n > std::numeric_limits<std::size_t>::max() / es || n * es != nbytes)
        throw bad("tensor '" + t.name + "': nbytes " + std::to_string(nbytes) + " does not match shape " +
                  shape_str(t.shape) + " and dtype " + t.dtype);
      if (offset != expected_offset || nbytes > payload_end - payload || offset > payload_end - payload - nbytes)
        throw bad("tensor '" + t.name + "': offset " + std::to_string(offset) + " is out of place or out of range");
      t.bytes.assign(data + payload + offset, data + payload + offset + nbytes);
      if (crc(t.bytes.data(), t.bytes.size()) != json_get<std::uint32_t, CheckpointError>(e.at("crc32"), field + "crc32"))
        throw bad("tensor '" + t.name + "': checksum mismatch");
      expected_offset = align_up(offset + nbytes);
      ck.tensors.push_back(std::move(t));
    }
    if (payload + expected_offset != payload_end) throw bad("payload size does not match the header");
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("malformed header: ") + json_reason(e));
  }
  return ck;
}

Checkpoint load_checkpoint(const std::string& path, std::size_t max_bytes) {
  try {
    files::RegularFile f(path, "checkpoint");
    // The magic first: a large file that is not a checkpoint is refused without being read.
    char magic[8] = {};
    const std::size_t head = f.read(magic, sizeof magic);
    if (head < sizeof magic || std::memcmp(magic, kMagic, 8) != 0) {
      if (f.size() < 8 + 4 + 8 + 4 + 8)
        throw CheckpointError("checkpoint '" + files::escape_bytes(path) + "': file too short (" +
                              std::to_string(f.size()) + " bytes) to be a checkpoint");
      throw CheckpointError("checkpoint '" + files::escape_bytes(path) + "': bad magic: not an xgrad checkpoint");
    }
    if (f.size() > max_bytes)
      throw CheckpointError("checkpoint '" + files::escape_bytes(path) + "': " + std::to_string(f.size()) +
                            " bytes is more than the limit of " + std::to_string(max_bytes));
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(f.size()));
    std::memcpy(bytes.data(), magic, 8);
    f.read_exact(bytes.data() + 8, bytes.size() - 8);
    return parse_checkpoint(bytes.data(), bytes.size(), path);
  } catch (const FileError& e) {
    throw CheckpointError(e.what());
  }
}

template <class T>
void add_module(Checkpoint& ck, Module<T>& m, const std::string& prefix) {
  for (auto& [name, p] : m.named_parameters()) ck.add(prefix + name, p.value());
  for (auto& [name, b] : m.named_buffers()) ck.add(prefix + name, *b);
}

namespace {
/// A tensor a module stores: a parameter's value or a buffer, by its dotted name.
template <class T>
struct Slot {
  std::string name;
  Shape shape;
  T* data;
};
template <class T>
std::vector<Slot<T>> module_slots(Module<T>& m) {
  std::vector<Slot<T>> out;
  for (auto& [name, p] : m.named_parameters()) out.push_back({name, p.shape(), p.value().data()});
  for (auto& [name, b] : m.named_buffers()) out.push_back({name, shape_of(*b), b->data()});
  return out;
}

template <class T>
std::string mismatch_impl(const std::vector<Slot<T>>& slots, const Checkpoint& ck, const std::string& prefix,
                          std::vector<const CheckpointTensor*>* found) {
  std::vector<std::string> missing, mismatched, unexpected;
  if (found) found->assign(slots.size(), nullptr);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const std::string key = prefix + slots[i].name;
    const CheckpointTensor* t = nullptr;
    for (const auto& e : ck.tensors)
      if (e.name == key) t = &e;
    if (!t) {
      missing.push_back(key);
    } else if (t->shape != slots[i].shape || t->dtype != dtype_of<T>()) {
      mismatched.push_back(key + ": checkpoint has " + t->dtype + " " + shape_str(t->shape) + ", the model has " +
                           dtype_of<T>() + " " + shape_str(slots[i].shape));
    } else if (found) {
      (*found)[i] = t;
    }
  }
  for (const auto& e : ck.tensors) {
    if (e.name.rfind(prefix, 0) != 0) continue;
    bool known = false;
    for (const auto& p : slots) known = known || prefix + p.name == e.name;
    if (!known) unexpected.push_back(e.name);
  }
  if (missing.empty() && mismatched.empty() && unexpected.empty()) return {};
  std::string msg;
  if (!mismatched.empty()) {
    msg += "size mismatch for";
    for (const auto& s : mismatched) msg += " [" + s + "]";
  }
  if (!missing.empty()) {
    msg += std::string(msg.empty() ? "" : "; ") + "missing:";
    for (const auto& s : missing) msg += " " + s;
  }
  if (!unexpected.empty()) {
    msg += std::string(msg.empty() ? "" : "; ") + "unexpected:";
    for (const auto& s : unexpected) msg += " " + s;
  }
  return msg;
}
}  // namespace

template <class T>
std::string module_mismatch(Module<T>& m, const Checkpoint& ck, const std::string& prefix) {
  return mismatch_impl(module_slots(m), ck, prefix, nullptr);
}

namespace {
/// Appends to `out` every difference between the records `a` (the checkpoint's) and `b` (the model's) at `path`.
void record_difference(const nlohmann::json& a, const nlohmann::json& b, const std::string& path, std::vector<std::string>& out) {
  const std::string at = path.empty() ? "" : path + ": ";
  const auto& ta = a.at("type").get_ref<const std::string&>();
  const auto& tb = b.at("type").get_ref<const std::string&>();
  if (ta != tb) {
    out.push_back(at + "the checkpoint has a " + files::escape_bytes(ta) + ", this model a " + tb);
    return;
  }
  const auto& sa = a.at("settings");
  const auto& sb = b.at("settings");
  std::set<std::string> keys;
  for (const auto& [k, v] : sa.items()) keys.insert(k);
  for (const auto& [k, v] : sb.items()) keys.insert(k);
  const auto value = [](const nlohmann::json& s, const std::string& k) {
    return s.contains(k) ? files::escape_bytes(s.at(k).get<std::string>()) : std::string("(none)");
  };
  for (const auto& k : keys)
    if (value(sa, k) != value(sb, k))
      out.push_back((path.empty() ? "" : path + ".") + k + ": the checkpoint has " + value(sa, k) + ", this model " + value(sb, k));
  const auto& ca = a.at("children");
  const auto& cb = b.at("children");
  const auto name = [](const nlohmann::json& c, std::size_t i) { return c.at(i).at(0).get<std::string>(); };
  const auto names = [&](const nlohmann::json& c) {
    std::string s;
    for (std::size_t i = 0; i < c.size(); ++i) s += (i ? ", " : "") + files::escape_bytes(name(c, i));
    return "[" + s + "]";
  };
  bool same = ca.is_array() && ca.size() == cb.size();
  for (std::size_t i = 0; same && i < ca.size(); ++i) same = name(ca, i) == name(cb, i);
  if (!same) {
    out.push_back(at + "the checkpoint has the submodules " + names(ca) + ", this model " + names(cb));
    return;
  }
  for (std::size_t i = 0; i < ca.size(); ++i)
    record_difference(ca.at(i).at(1), cb.at(i).at(1), (path.empty() ? "" : path + ".") + name(ca, i), out);
}
}  // namespace

template <class T>
std::string architecture_difference(const std::string& arch, const Module<T>& m) {
  if (arch.empty() || arch.front() != '{') return {};  // no record: an earlier release's display string
  // Four JSON levels per module level: 256 allows 64 levels of submodules.
  const nlohmann::json stored = parse_json_bounded<CheckpointError>(arch.begin(), arch.end(), "checkpoint: the architecture record",
                                                                    JsonLimits{256, kMaxHeader});
  std::vector<std::string> diffs;
  try {
    record_difference(stored, nlohmann::json::parse(m.architecture()), "", diffs);
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError("checkpoint: the architecture record is malformed: " + json_reason(e));
  }
  std::string s;
  for (const auto& d : diffs) s += (s.empty() ? "" : "; ") + d;
  return s;
}

template <class T>
void check_matches(const Checkpoint& ck, Module<T>& m, const std::string& where, const std::string& prefix) {
  // The architecture (every layer's settings: stride, padding, dilation…) must match as well as the tensors: two
  // models with the same tensor shapes can compute different functions.
  const std::string arch = architecture_difference(ck.arch, m);
  const std::string tensors = module_mismatch(m, ck, prefix);
  if (arch.empty() && tensors.empty()) return;
  throw CheckpointError(where + "the checkpoint does not match this " + m.type_name() + ": " + arch +
                        (arch.empty() || tensors.empty() ? "" : "; ") + tensors);
}

template <class T>
void load_module(Module<T>& m, const Checkpoint& ck, const std::string& prefix) {
  check_matches(ck, m, "", prefix);
  const auto slots = module_slots(m);
  std::vector<const CheckpointTensor*> found;
  mismatch_impl(slots, ck, prefix, &found);
  for (std::size_t i = 0; i < slots.size(); ++i)
    if (!found[i]->bytes.empty()) std::memcpy(slots[i].data, found[i]->bytes.data(), found[i]->bytes.size());
  for (auto& [name, p] : m.named_parameters()) p.bump_version();  // a graph recorded before the load refuses backward
}

template void Checkpoint::add(const std::string&, const Tensor<float>&);
template void Checkpoint::add(const std::string&, const Tensor<double>&);
template Tensor<float> Checkpoint::get(const std::string&) const;
template Tensor<double> Checkpoint::get(const std::string&) const;
template void add_module(Checkpoint&, Module<float>&, const std::string&);
template void add_module(Checkpoint&, Module<double>&, const std::string&);
template void load_module(Module<float>&, const Checkpoint&, const std::string&);
template std::string module_mismatch(Module<float>&, const Checkpoint&, const std::string&);
template std::string module_mismatch(Module<double>&, const Checkpoint&, const std::string&);
template void load_module(Module<double>&, const Checkpoint&, const std::string&);
template std::string architecture_difference(const std::string&, const Module<float>&);
template std::string architecture_difference(const std::string&, const Module<double>&);
template void check_matches(const Checkpoint&, Module<float>&, const std::string&, const std::string&);
template void check_matches(const Checkpoint&, Module<double>&, const std::string&, const std::string&);

}  // namespace xg::nn
