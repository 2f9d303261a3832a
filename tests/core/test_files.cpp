// core/files.h and core/json_limits.h: the rules for every file xgrad writes or reads whole, and bounded JSON.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <filesystem>
#include <fstream>

#include "core/errors.h"
#include "core/files.h"
#include "core/json_limits.h"
#include "helpers.h"

namespace fs = std::filesystem;
using namespace xg;

namespace {
struct Scratch {
  fs::path dir;
  Scratch() : dir(fs::temp_directory_path() / ("xgrad_files_" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string operator/(const std::string& f) const { return (dir / f).string(); }
};
std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
}  // namespace

TEST_SUITE("files") {

TEST_CASE("output_target accepts a regular file or a new one, follows symlinks and refuses everything else") {
  Scratch d;
  std::ofstream(d / "file") << "x";
  CHECK(files::output_target(d / "file", "out") == d / "file");
  CHECK(files::output_target(d / "new", "out") == d / "new");
  fs::create_symlink("file", d / "link1");
  fs::create_symlink("link1", d / "link2");
  CHECK(files::output_target(d / "link2", "out") == d / "file");
  fs::create_symlink("loop", d / "loop");
  CHECK_THROWS_WITH_AS(files::output_target(d / "loop", "--save"), doctest::Contains("too many levels of symbolic links"), FileError);
  CHECK_THROWS_WITH_AS(files::output_target("/dev/null", "--save"), doctest::Contains("'/dev/null': is a character device"), FileError);
  CHECK_THROWS_WITH_AS(files::output_target(d.dir.string(), "--save"), doctest::Contains("is a directory"), FileError);
  REQUIRE(::mkfifo((d / "fifo").c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(files::output_target(d / "fifo", "--save"), doctest::Contains("is a FIFO"), FileError);
  CHECK_THROWS_WITH_AS(files::output_target(d / "missing/x", "--save"), doctest::Contains("its directory"), FileError);
  CHECK_THROWS_WITH_AS(files::output_target(d / "file/x", "--save"), doctest::Contains("Not a directory"), FileError);
  CHECK_THROWS_AS(files::output_target(d / "x/", "--save"), FileError);
  CHECK_THROWS_AS(files::output_target("", "--save"), FileError);
}

TEST_CASE("write_atomic replaces a regular file, writes through a symlink to its target, and never touches a device") {
  Scratch d;
  files::write_atomic(d / "a", "one", 3, "out");
  files::write_atomic(d / "a", "two!", 4, "out");
  CHECK(slurp(d / "a") == "two!");
  fs::create_symlink("a", d / "link");
  files::write_atomic(d / "link", "three", 5, "out");
  CHECK(fs::is_symlink(d / "link"));
  CHECK(slurp(d / "a") == "three");
  CHECK_THROWS_AS(files::write_atomic("/dev/null", "x", 1, "out"), FileError);
  struct stat st {};
  REQUIRE(::stat("/dev/null", &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(d.dir)) ++n;
  CHECK(n == 2);  // no temporary left behind
}

TEST_CASE("temporary names stay within NAME_MAX and differ for long names that share a prefix") {
  const std::string a(255, 'a'), b = std::string(254, 'a') + "b";
  CHECK(files::temporary_name(a, 4194304).size() <= 255);
  CHECK(files::temporary_name(a, 1) != files::temporary_name(b, 1));
  CHECK(files::temporary_name("m.xgck", 12) == ".m.xgck.tmp.12");
}

TEST_CASE("AppendFile appends to a regular file and refuses a FIFO without blocking") {
  Scratch d;
  {
    files::AppendFile f(d / "m", "--metrics");
    CHECK(f.initial_size() == 0);
    f.write("a\n");
  }
  files::AppendFile g(d / "m", "--metrics");
  CHECK(g.initial_size() == 2);
  g.write("b\n");
  CHECK(slurp(d / "m") == "a\nb\n");
  REQUIRE(::mkfifo((d / "fifo").c_str(), 0600) == 0);
  CHECK_THROWS_AS(files::AppendFile(d / "fifo", "--metrics"), FileError);
}

TEST_CASE("reading whole files refuses directories, devices and files over the limit, naming them") {
  Scratch d;
  std::ofstream(d / "f") << "12345";
  CHECK(files::read_regular_file(d / "f", 5, "x").size() == 5);
  CHECK_THROWS_WITH_AS(files::read_regular_file(d / "f", 4, "x"), doctest::Contains("more than the limit of 4"), FileError);
  CHECK_THROWS_WITH_AS(files::read_regular_file(d.dir.string(), 100, "x"), doctest::Contains("is a directory"), FileError);
  CHECK_THROWS_WITH_AS(files::read_regular_file("/dev/zero", 100, "x"), doctest::Contains("character device"), FileError);
}

TEST_CASE("escape_bytes keeps printable text and UTF-8, escapes every other byte, and is one-to-one") {
  CHECK(files::escape_bytes("plain/path.png") == "plain/path.png");
  CHECK(files::escape_bytes("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(files::escape_bytes("a\xff\n") == "a\\xff\\x0a");
  CHECK(files::escape_bytes("\xc3\x28") == "\\xc3(");  // a broken sequence
  CHECK(files::escape_bytes("\\xff") == "\\\\xff");    // a literal backslash differs from an escaped byte
  CHECK(files::escape_bytes("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // a surrogate is not UTF-8
}

TEST_CASE("a refused output names a symbolic link only when one was followed") {
  // Round 3: "(reached through symbolic links)" appeared for /dev/null, a FIFO and a directory given directly.
  Scratch s;
  const std::string fifo = (s.dir / "fifo").string(), link = (s.dir / "link").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  fs::create_symlink("/dev/null", link);
  for (const std::string& direct : {std::string("/dev/null"), fifo, s.dir.string()}) {
    CAPTURE(direct);
    try {
      files::output_target(direct, "--save");
      FAIL("accepted");
    } catch (const FileError& e) {
      CHECK(std::string(e.what()).find("symbolic link") == std::string::npos);
    }
  }
  CHECK_THROWS_WITH_AS(files::output_target(link, "--save"), doctest::Contains("is a character device (reached through symbolic links)"), FileError);
}

TEST_CASE("unescape_bytes inverts escape_bytes for any bytes and refuses text it did not write") {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  for (const std::string& s : {all, std::string("plain/path"), std::string("a\\b"), std::string("\xff\xfe\\x41")})
    CHECK(files::unescape_bytes(files::escape_bytes(s)) == s);
  CHECK_THROWS_AS(files::unescape_bytes("a\\qb"), FileError);
  CHECK_THROWS_AS(files::unescape_bytes("trailing\\x4"), FileError);
}

TEST_CASE("check_writable makes and removes a file in the target's directory, and refuses what output_target refuses") {
  Scratch s;
  const std::string target = (s.dir / "run.xgck").string();
  CHECK_NOTHROW(files::check_writable(target, "--save"));
  CHECK_FALSE(fs::exists(target));
  CHECK(std::distance(fs::directory_iterator(s.dir), fs::directory_iterator()) == 0);
  CHECK_THROWS_AS(files::check_writable("/dev/null", "--save"), FileError);
  CHECK_THROWS_AS(files::check_writable((s.dir / "missing" / "x").string(), "--save"), FileError);
}

TEST_CASE("a failed append leaves the file as it was: no torn line") {
  // Round 3: a metrics write that hit a full disk left half a line, and the next run glued its line onto it. A child
  // with a file-size limit (EFBIG, as on a full disk) appends past it.
  Scratch s;
  const std::string path = s / "m.jsonl";
  std::ofstream(path) << "{\"epoch\":1}\n";
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl {64, 64};
    ::setrlimit(RLIMIT_FSIZE, &rl);
    try {
      files::AppendFile f(path, "metrics");
      f.write(std::string(200, 'x') + "\n");
      ::_exit(0);  // the write should have failed
    } catch (const FileError&) {
      ::_exit(7);
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 7);
  CHECK(slurp(path) == "{\"epoch\":1}\n");
}

TEST_CASE("parse_json_bounded refuses deep nesting and oversized text with the caller's error type") {
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  CHECK_THROWS_WITH_AS(parse_json_bounded<DataError>(deep.begin(), deep.end(), "f.json", JsonLimits{64, 1000}),
                       doctest::Contains("f.json: JSON nested deeper than 64 levels"), DataError);
  const std::string ok = std::string(10, '[') + std::string(10, ']');
  CHECK(parse_json_bounded<DataError>(ok.begin(), ok.end(), "f.json", JsonLimits{10, 1000}).is_array());
  CHECK_THROWS_AS(parse_json_bounded<DataError>(ok.begin(), ok.end(), "f.json", JsonLimits{9, 1000}), DataError);
  CHECK_THROWS_WITH_AS(parse_json_bounded<CheckpointError>(ok.begin(), ok.end(), "h", JsonLimits{64, 5}),
                       doctest::Contains("larger than the limit of 5"), CheckpointError);
  const std::string bad = "{\"a\": ";
  CHECK_THROWS_WITH_AS(parse_json_bounded<DataError>(bad.begin(), bad.end(), "f.json"), doctest::Contains("invalid JSON"), DataError);
  // Many objects parse in linear time (nlohmann's callback parser, used before, was quadratic in them).
  std::string objects = "[";
  for (int i = 0; i < 200000; ++i) objects += i ? ",{}" : "{}";
  objects += "]";
  CHECK(parse_json_bounded<DataError>(objects.begin(), objects.end(), "f.json", JsonLimits{8, objects.size()}).size() == 200000);
  const std::string huge = "[1e999]";
  CHECK_THROWS_AS(parse_json_bounded<DataError>(huge.begin(), huge.end(), "f.json"), DataError);
}

}  // TEST_SUITE
