#include "core/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "core/errors.h"

namespace xg::files {

namespace {

/// `what 'path'` for messages, with the path made printable.
std::string named(const std::string& what, const std::string& path) { return what + " '" + escape_bytes(path) + "'"; }

std::string os_reason() { return std::strerror(errno); }

/// What is at a path that is not a regular file, in words.
std::string kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISLNK(m)) return "a symbolic link";
  if (S_ISREG(m)) return "a regular file";
  return "a special file";
}

std::string parent_of(const std::string& p) {
  const auto slash = p.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}
std::string base_of(const std::string& p) {
  const auto slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

/// The directory a new file at `p` would go into must exist and be a directory.
void check_parent(const std::string& p, const std::string& what, const std::string& original) {
  const std::string dir = parent_of(p);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    throw FileError(named(what, original) + ": its directory '" + escape_bytes(dir) + "' cannot be used: " + os_reason());
  if (!S_ISDIR(st.st_mode))
    throw FileError(named(what, original) + ": '" + escape_bytes(dir) + "' is " + kind_of(st.st_mode) +
                    ", not a directory");
}

/// FNV-1a of `s`: a short, stable tag for cut-short temporary names.
std::uint32_t fnv1a(const std::string& s) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

/// The part of the temporary name before the PID (see temporary_name).
std::string temporary_prefix(const std::string& base) {
  constexpr std::size_t kNameMax = 255, kPidDigits = 10;
  const std::string natural = "." + base + ".tmp.";
  if (natural.size() + kPidDigits <= kNameMax) return natural;
  char tag[10];
  std::snprintf(tag, sizeof tag, "%08x", fnv1a(base));
  const std::size_t keep = kNameMax - kPidDigits - std::strlen(".~.tmp.") - 8;
  std::string cut(".");  // built by appending: GCC 12 warns falsely (-Wrestrict) on the operator+ chain
  cut.append(base, 0, keep).append("~").append(tag).append(".tmp.");
  return cut;
}

/// Removes temporary files of earlier writes to the same target whose process no longer exists (a write killed
/// mid-way leaves one behind; it never carries the target's name, so it is only clutter).
void remove_stale_temporaries(const std::string& dir, const std::string& base) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  const std::string prefix = temporary_prefix(base);
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const long pid = std::stol(pid_text);
    if (pid > 0 && pid != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      ::unlinkat(::dirfd(d), name.c_str(), 0);
  }
  ::closedir(d);
}

void write_all(int fd, const void* data, std::size_t size, const std::string& what, const std::string& path) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t w = ::write(fd, p + done, size - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw FileError(named(what, path) + ": cannot write: " + os_reason());
    }
    done += static_cast<std::size_t>(w);
  }
}

}  // namespace

std::string output_target(const std::string& path, const std::string& what) {
  if (path.empty()) throw FileError(what + ": the path is empty");
  if (path.back() == '/') throw FileError(named(what, path) + ": names a directory, not a file");
  // What the path finally resolves to, as the kernel sees it: a symlink into /proc (/dev/stdout -> /proc/self/fd/1 ->
  // "pipe:[…]") names no file textually, but stat() finds the pipe.
  struct stat final_st {}, own_st {};
  if (::stat(path.c_str(), &final_st) == 0 && !S_ISREG(final_st.st_mode)) {
    const bool linked = ::lstat(path.c_str(), &own_st) == 0 && S_ISLNK(own_st.st_mode);
    throw FileError(named(what, path) + ": is " + kind_of(final_st.st_mode) +
                    (linked ? " (reached through symbolic links)" : "") +
                    ", not a regular file; xgrad writes only regular files (or creates them)");
  }
  std::string p = path;
  for (int links = 0;; ++links) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno != ENOENT) throw FileError(named(what, path) + ": " + os_reason());
      check_parent(p, what, path);
      return p;
    }
    if (S_ISREG(st.st_mode)) return p;
    if (!S_ISLNK(st.st_mode))
      throw FileError(named(what, path) + (p == path ? "" : " (a symbolic link to '" + escape_bytes(p) + "')") +
                      ": is " + kind_of(st.st_mode) + ", not a regular file; xgrad writes only regular files (or " +
                      "creates them)");
    if (links == 40) throw FileError(named(what, path) + ": too many levels of symbolic links");
    std::vector<char> buf(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : PATH_MAX) + 1);
    const ssize_t n = ::readlink(p.c_str(), buf.data(), buf.size());
    if (n < 0) throw FileError(named(what, path) + ": cannot read the symbolic link '" + escape_bytes(p) + "': " + os_reason());
    const std::string target(buf.data(), static_cast<std::size_t>(n));
    p = !target.empty() && target[0] == '/' ? target : parent_of(p) + "/" + target;
  }
}

void ensure_output_dir(const std::string& dir, const std::string& what) {
  if (dir.empty()) throw FileError(what + ": the path is empty");
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw FileError(named(what, dir) + ": is " + kind_of(st.st_mode) + ", not a directory");
    return;
  }
  if (errno != ENOENT) throw FileError(named(what, dir) + ": " + os_reason());
  // Only the directory itself is created: its parent must exist, as for files (a typo must not grow a tree).
  std::string trimmed = dir;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  check_parent(trimmed, what, dir);
  if (::mkdir(trimmed.c_str(), 0755) != 0 && errno != EEXIST)
    throw FileError(named(what, dir) + ": cannot create the directory: " + os_reason());
}

std::string temporary_name(const std::string& base, long pid) { return temporary_prefix(base) + std::to_string(pid); }

void check_writable(const std::string& path, const std::string& what) {
  const std::string target = output_target(path, what);
  const std::string dir = parent_of(target);
  const std::string tmp = dir + "/" + temporary_name(base_of(target), ::getpid());
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) throw FileError(named(what, path) + ": cannot create a file in '" + escape_bytes(dir) + "': " + os_reason());
  ::close(fd);
  ::unlink(tmp.c_str());
}

void write_atomic(const std::string& path, const void* data, std::size_t size, const std::string& what) {
  const std::string target = output_target(path, what);
  const std::string dir = parent_of(target), base = base_of(target);
  remove_stale_temporaries(dir, base);
  const std::string tmp = dir + "/" + temporary_name(base, ::getpid());
  ::unlink(tmp.c_str());  // a leftover of an earlier process with this PID
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) throw FileError(named(what, path) + ": cannot create a temporary file in '" + escape_bytes(dir) + "': " + os_reason());
  const std::string unchanged = " (the previous file, if any, is unchanged)";
  try {
    write_all(fd, data, size, what, path);
    if (::fsync(fd) != 0) throw FileError(named(what, path) + ": cannot fsync: " + os_reason());
  } catch (const FileError& e) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw FileError(e.what() + unchanged);
  }
  if (::close(fd) != 0) {
    const std::string msg = named(what, tmp) + ": cannot close: " + os_reason();
    ::unlink(tmp.c_str());
    throw FileError(msg + unchanged);
  }
  // The target may have been replaced since it was checked: check again just before the rename.
  struct stat st {};
  if (::lstat(target.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    ::unlink(tmp.c_str());
    throw FileError(named(what, path) + ": is " + kind_of(st.st_mode) + " now, not a regular file" + unchanged);
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const std::string msg = named(what, path) + ": cannot rename the temporary file onto it: " + os_reason();
    ::unlink(tmp.c_str());
    throw FileError(msg + unchanged);
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

AppendFile::AppendFile(const std::string& path, const std::string& what) : path_(path), what_(what) {
  const std::string target = output_target(path, what);
  // O_NONBLOCK: a FIFO swapped in after the check makes open fail instead of blocking; fstat then decides.
  fd_ = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
  if (fd_ < 0) throw FileError(named(what, path) + ": cannot open for appending: " + os_reason());
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw FileError(named(what, path) + ": is not a regular file");
  }
  ::fcntl(fd_, F_SETFL, O_APPEND);
  initial_size_ = static_cast<std::uint64_t>(st.st_size);
}

AppendFile::AppendFile(AppendFile&& o) noexcept { *this = std::move(o); }
AppendFile& AppendFile::operator=(AppendFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    initial_size_ = o.initial_size_;
    path_ = std::move(o.path_);
    what_ = std::move(o.what_);
    o.fd_ = -1;
  }
  return *this;
}
AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

void AppendFile::write(std::string_view text) {
  if (fd_ < 0) throw FileError(what_ + ": the file is not open");
  struct stat st {};
  const bool sized = ::fstat(fd_, &st) == 0;
  try {
    write_all(fd_, text.data(), text.size(), what_, path_);
  } catch (const FileError&) {
    if (sized) (void)!::ftruncate(fd_, st.st_size);  // best effort: the error below is what the caller sees
    throw;
  }
}

void AppendFile::truncate(std::uint64_t size) {
  if (fd_ < 0) throw FileError(what_ + ": the file is not open");
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw FileError(named(what_, path_) + ": " + os_reason());
  if (static_cast<std::uint64_t>(st.st_size) <= size) return;
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) throw FileError(named(what_, path_) + ": cannot truncate: " + os_reason());
}

RegularFile::RegularFile(const std::string& path, const std::string& what) : path_(path), what_(what) {
  if (path.empty()) throw FileError(what + ": the path is empty");
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd_ < 0) throw FileError(named(what, path) + ": cannot open: " + os_reason());
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    const std::string msg = named(what, path) + ": is " + kind_of(st.st_mode) + ", not a regular file";
    ::close(fd_);
    fd_ = -1;
    throw FileError(msg);
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::size_t RegularFile::read(void* out, std::size_t n) {
  for (;;) {
    const ssize_t r = ::read(fd_, out, n);
    if (r >= 0) {
      offset_ += static_cast<std::uint64_t>(r);
      return static_cast<std::size_t>(r);
    }
    if (errno != EINTR) throw FileError(named(what_, path_) + ": cannot read at byte offset " + std::to_string(offset_) + ": " + os_reason());
  }
}

void RegularFile::read_exact(void* out, std::size_t n) {
  auto* p = static_cast<std::uint8_t*>(out);
  std::size_t done = 0;
  while (done < n) {
    const std::size_t r = read(p + done, n - done);
    if (r == 0) throw FileError(named(what_, path_) + ": the file ends after " + std::to_string(offset_) + " bytes");
    done += r;
  }
}

std::vector<std::uint8_t> read_regular_file(const std::string& path, std::size_t max_bytes, const std::string& what) {
  RegularFile f(path, what);
  if (f.size() > max_bytes)
    throw FileError(named(what, path) + ": " + std::to_string(f.size()) + " bytes is more than the limit of " +
                    std::to_string(max_bytes));
  std::vector<std::uint8_t> out(static_cast<std::size_t>(f.size()));
  f.read_exact(out.data(), out.size());
  std::uint8_t extra;
  if (f.read(&extra, 1) != 0) throw FileError(named(what, path) + ": the file grew while it was read");
  return out;
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  const bool ea = ::stat(a.c_str(), &sa) == 0, eb = ::stat(b.c_str(), &sb) == 0;
  if (ea && eb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  if (ea != eb) return false;
  // Neither exists yet: compare where they would be created (parent directory by inode, then the name).
  try {
    const std::string ta = output_target(a, "path"), tb = output_target(b, "path");
    struct stat pa {}, pb {};
    if (::stat(parent_of(ta).c_str(), &pa) != 0 || ::stat(parent_of(tb).c_str(), &pb) != 0) return ta == tb;
    return pa.st_dev == pb.st_dev && pa.st_ino == pb.st_ino && base_of(ta) == base_of(tb);
  } catch (const FileError&) {
    return a == b;
  }
}

std::string printable(std::string_view s) {
  std::string out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == '\\') {
      out += escape_bytes(s.substr(start, i - start));
      if (i < s.size()) out += '\\';
      start = i + 1;
    }
  return out;
}

std::string unescape_bytes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto hex = [](char c) -> int {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (i + 1 < s.size() && s[i + 1] == '\\') {
      out += '\\';
      ++i;
    } else if (i + 3 < s.size() && s[i + 1] == 'x' && hex(s[i + 2]) >= 0 && hex(s[i + 3]) >= 0) {
      out += static_cast<char>(hex(s[i + 2]) * 16 + hex(s[i + 3]));
      i += 3;
    } else {
      throw FileError("'" + escape_bytes(s) + "': a backslash at byte " + std::to_string(i) +
                      " starts neither \\\\ nor \\xHH (not an escaped path)");
    }
  }
  return out;
}

std::string escape_bytes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [&](unsigned char c) {
    static const char* d = "0123456789abcdef";
    out += "\\x";
    out += d[c >> 4];
    out += d[c & 15];
  };
  auto cont = [&](std::size_t i) { return i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80; };
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      out += "\\\\";
      ++i;
      continue;
    }
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // A valid UTF-8 sequence of 2–4 bytes (no overlong forms, no surrogates, nothing above U+10FFFF) stays as it is.
    std::size_t len = 0;
    if (c >= 0xC2 && c <= 0xDF) len = cont(i + 1) ? 2 : 0;
    else if (c >= 0xE0 && c <= 0xEF) {
      const auto c1 = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
      const bool ok = cont(i + 1) && cont(i + 2) && !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
      len = ok ? 3 : 0;
    } else if (c >= 0xF0 && c <= 0xF4) {
      const auto c1 = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
      const bool ok = cont(i + 1) && cont(i + 2) && cont(i + 3) && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
      len = ok ? 4 : 0;
    }
    if (len) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      hex(c);
      ++i;
    }
  }
  return out;
}

}  // namespace xg::files
