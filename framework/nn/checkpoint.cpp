#include "nn/checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

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

std::string os_error(const std::string& what, const std::string& path) {
  return "checkpoint: cannot " + what + " '" + path + "': " + std::strerror(errno);
}

}  // namespace

std::vector<std::uint8_t> serialize_checkpoint(const Checkpoint& ck) {
  nlohmann::json header;
  header["format"] = "xgrad-checkpoint";
  header["arch"] = ck.arch;
  try {
    header["meta"] = nlohmann::json::parse(ck.meta_json);
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(std::string("checkpoint: meta_json is not valid JSON: ") + e.what());
  }
  nlohmann::json list = nlohmann::json::array();
  std::size_t offset = 0;
  for (const auto& t : ck.tensors) {
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
  const std::string h = header.dump();
  std::vector<std::uint8_t> out(kMagic, kMagic + 8);
  put<std::uint32_t>(out, Checkpoint::kVersion);
  put<std::uint64_t>(out, h.size());
  out.insert(out.end(), h.begin(), h.end());
  out.resize(align_up(out.size()), 0);
  const std::size_t payload = out.size();
  out.resize(payload + offset, 0);
  std::size_t off = 0;
  for (const auto& t : ck.tensors) {
    std::memcpy(out.data() + payload + off, t.bytes.data(), t.bytes.size());
    off = align_up(off + t.bytes.size());
  }
  put<std::uint32_t>(out, crc(out.data(), out.size()));
  out.insert(out.end(), kEnd, kEnd + 8);
  return out;
}


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
      Tensor<T> out = Tensor<T>::from_shape(t.shape);
      if (out.size()) std::memcpy(out.data(), t.bytes.data(), t.bytes.size());
      return out;
    }
  throw CheckpointError("checkpoint: no tensor named '" + name + "'");
}

namespace {
/// Removes temporary files of earlier saves to the same target whose process no longer exists (a save killed
/// mid-write leaves one behind; it never carries the target's name, so it is only clutter).
void remove_stale_temporaries(const std::string& dir, const std::string& base) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  const std::string prefix = "." + base + ".tmp.";
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::stol(pid_text);
    if (pid > 0 && pid != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
}
}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  const std::vector<std::uint8_t> bytes = serialize_checkpoint(ck);
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty()) throw CheckpointError("checkpoint: '" + path + "' names a directory, not a file");
  remove_stale_temporaries(dir, base);
  const std::string tmp = dir + "/." + base + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw CheckpointError(os_error("create a temporary file in the directory of", path));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      const std::string msg = os_error("write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw CheckpointError(msg + " (the previous checkpoint, if any, is unchanged)");
    }
    done += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0) {
    const std::string msg = os_error("fsync", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    throw CheckpointError(msg + " (the previous checkpoint, if any, is unchanged)");
  }
  if (::close(fd) != 0) {
    const std::string msg = os_error("close", tmp);
    ::unlink(tmp.c_str());
    throw CheckpointError(msg);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string msg = os_error("rename the temporary file onto", path);
    ::unlink(tmp.c_str());
    throw CheckpointError(msg);
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

Checkpoint parse_checkpoint(const std::uint8_t* data, std::size_t size, const std::string& source) {
  auto bad = [&](const std::string& m) { return CheckpointError("checkpoint '" + source + "': " + m); };
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
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(data + 20, data + 20 + hlen);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("header is not valid JSON: ") + e.what());
  }
  Checkpoint ck;
  const std::size_t payload = align_up(20 + static_cast<std::size_t>(hlen));
  const std::size_t payload_end = size - 12;
  if (payload > payload_end) throw bad("payload starts beyond the end of the file");
  try {
    if (header.at("format") != "xgrad-checkpoint") throw bad("header format is not xgrad-checkpoint");
    ck.arch = header.at("arch").get<std::string>();
    ck.meta_json = header.at("meta").dump();
    std::size_t expected_offset = 0;
    for (const auto& e : header.at("tensors")) {
      CheckpointTensor t;
      t.name = e.at("name").get<std::string>();
      t.dtype = e.at("dtype").get<std::string>();
      const std::size_t es = dtype_size(t.dtype);
      if (es == 0) throw bad("tensor '" + t.name + "' has unknown dtype '" + t.dtype + "'");
      std::size_t n = 1;
      for (const auto& d : e.at("shape")) {
        const auto v = d.get<std::uint64_t>();
        if (v != 0 && n > std::numeric_limits<std::size_t>::max() / v) throw bad("tensor '" + t.name + "' shape overflows");
        n *= static_cast<std::size_t>(v);
        t.shape.push_back(static_cast<std::size_t>(v));
      }
      const auto offset = e.at("offset").get<std::uint64_t>();
      const auto nbytes = e.at("nbytes").get<std::uint64_t>();
      if (n > std::numeric_limits<std::size_t>::max() / es || n * es != nbytes)
        throw bad("tensor '" + t.name + "': nbytes " + std::to_string(nbytes) + " does not match shape " +
                  shape_str(t.shape) + " and dtype " + t.dtype);
      if (offset != expected_offset || nbytes > payload_end - payload || offset > payload_end - payload - nbytes)
        throw bad("tensor '" + t.name + "': offset " + std::to_string(offset) + " is out of place or out of range");
      t.bytes.assign(data + payload + offset, data + payload + offset + nbytes);
      if (crc(t.bytes.data(), t.bytes.size()) != e.at("crc32").get<std::uint32_t>())
        throw bad("tensor '" + t.name + "': checksum mismatch");
      expected_offset = align_up(offset + nbytes);
      ck.tensors.push_back(std::move(t));
    }
    if (payload + expected_offset != payload_end) throw bad("payload size does not match the header");
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("malformed header: ") + e.what());
  }
  return ck;
}

Checkpoint load_checkpoint(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError(os_error("open", path));
  in.seekg(0, std::ios::end);
  const auto end = in.tellg();
  if (end < 0) throw CheckpointError("checkpoint: cannot determine the size of '" + path + "'");
  const auto size = static_cast<std::size_t>(end);
  if (size > max_bytes)
    throw CheckpointError("checkpoint '" + path + "': " + std::to_string(size) + " bytes exceeds the limit of " +
                          std::to_string(max_bytes));
  in.seekg(0);
  std::vector<std::uint8_t> bytes(size);
  if (size && !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size)))
    throw CheckpointError(os_error("read", path));
  return parse_checkpoint(bytes.data(), bytes.size(), path);
}

template <class T>
void add_module(Checkpoint& ck, Module<T>& m, const std::string& prefix) {
  for (auto& [name, p] : m.named_parameters()) ck.add(prefix + name, p.value());
}

namespace {
template <class T>
std::string mismatch_impl(Module<T>& m, const Checkpoint& ck, const std::string& prefix,
                          std::vector<const CheckpointTensor*>* found) {
  std::vector<std::string> missing, mismatched, unexpected;
  auto params = m.named_parameters();
  if (found) found->assign(params.size(), nullptr);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::string key = prefix + params[i].first;
    const CheckpointTensor* t = nullptr;
    for (const auto& e : ck.tensors)
      if (e.name == key) t = &e;
    if (!t) {
      missing.push_back(key);
    } else if (t->shape != params[i].second.shape() || t->dtype != dtype_of<T>()) {
      mismatched.push_back(key + ": checkpoint has " + t->dtype + " " + shape_str(t->shape) + ", the model has " +
                           dtype_of<T>() + " " + shape_str(params[i].second.shape()));
    } else if (found) {
      (*found)[i] = t;
    }
  }
  for (const auto& e : ck.tensors) {
    if (e.name.rfind(prefix, 0) != 0) continue;
    bool known = false;
    for (const auto& p : params) known = known || prefix + p.first == e.name;
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
  return mismatch_impl(m, ck, prefix, nullptr);
}

template <class T>
void load_module(Module<T>& m, const Checkpoint& ck, const std::string& prefix) {
  std::vector<const CheckpointTensor*> found;
  const std::string diff = mismatch_impl(m, ck, prefix, &found);
  if (!diff.empty())
    throw CheckpointError("checkpoint does not match the model " + m.describe() + " (checkpoint architecture: " +
                          ck.arch + "): " + diff);
  auto params = m.named_parameters();
  for (std::size_t i = 0; i < params.size(); ++i)
    if (params[i].second.numel())
      std::memcpy(params[i].second.value().data(), found[i]->bytes.data(), found[i]->bytes.size());
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

}  // namespace xg::nn
