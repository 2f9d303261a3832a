// Build-time tool: extracts the ```cpp snippets of a Markdown file into one C++ program, so that the README's code is
// compiled (and linked) with every build and cannot rot. Usage: readme_snippets_gen README.md OUT.cpp
// #include lines go to the top (once each); every other line goes, in order, into main(): the snippets are one tour,
// later ones using what earlier ones defined. A snippet that should not be compiled is fenced ```cpp-fragment.
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: readme_snippets_gen README.md OUT.cpp\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "readme_snippets_gen: cannot read " << argv[1] << "\n";
    return 1;
  }
  std::set<std::string> seen;
  std::string includes, body, line;
  bool inside = false;
  int snippets = 0, line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!inside && line == "```cpp") {
      inside = true;
      ++snippets;
      body += "  // " + std::string(argv[1]) + ", snippet " + std::to_string(snippets) + " (line " + std::to_string(line_no) + ")\n";
      continue;
    }
    if (inside && line.rfind("```", 0) == 0) {
      inside = false;
      continue;
    }
    if (!inside) continue;
    if (line.rfind("#include", 0) == 0) {
      if (seen.insert(line).second) includes += line + "\n";
    } else {
      body += "  " + line + "\n";
    }
  }
  std::ofstream out(argv[2]);
  out << "// Generated from " << argv[1] << " by tests/readme_snippets_gen.cpp: its C++ snippets, compiled with every build.\n"
      << includes << "\nint main() {\n" << body << "  return 0;\n}\n";
  std::cout << "readme_snippets_gen: " << snippets << " snippets from " << argv[1] << "\n";
  return snippets > 0 ? 0 : 1;
}
