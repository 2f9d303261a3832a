#!/usr/bin/env python3
"""Lines of each function definition in C++ files: `scripts/function_lengths.py models/ [--over N]`.

A rough counter for reviews (the longest functions of a directory), not a parser: it follows braces outside strings,
characters and comments, and counts a function from the line that opens its body at namespace or class level to the
line that closes it (lambdas and nested classes count towards the function that holds them).
"""
import re
import signal
import sys
from pathlib import Path


def strip(line, in_block):
    out, i = [], 0
    while i < len(line):
        if in_block:
            j = line.find("*/", i)
            if j < 0:
                return "".join(out), True
            i, in_block = j + 2, False
            continue
        c = line[i]
        if line.startswith("//", i):
            break
        if line.startswith("/*", i):
            in_block, i = True, i + 2
            continue
        if c in "\"'":
            j = i + 1
            while j < len(line) and line[j] != c:
                j += 2 if line[j] == "\\" else 1
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out), in_block


def functions(path):
    stack, in_block, result, pending = [], False, [], ""
    for n, raw in enumerate(path.read_text(errors="replace").splitlines(), 1):
        code, in_block = strip(raw, in_block)
        if re.match(r"\s*#", code):
            continue
        for ch in code:
            if ch == "{":
                head = pending.strip()
                scope = all(kind != "function" for kind, _, _ in stack)
                if scope and re.search(r"\b(namespace|class|struct|enum|union)\b[^()]*$", head):
                    kind = "scope"
                elif scope and re.search(r"\)\s*(const|noexcept|override|final|->[^{]*|\s)*$", head) or (scope and head.endswith(")")):
                    kind = "function"
                else:
                    kind = "block"
                stack.append((kind, n, head.splitlines()[-1][:90] if head else ""))
                pending = ""
            elif ch == "}":
                if stack:
                    kind, start, head = stack.pop()
                    if kind == "function":
                        result.append((n - start + 1, path, start, head))
                pending = ""
            elif ch == ";":
                pending = ""
            else:
                pending += ch
        pending += "\n"
    return result


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the listing quietly
    args = sys.argv[1:]
    over = 0
    if "--over" in args:
        k = args.index("--over")
        over = int(args[k + 1])
        del args[k : k + 2]
    found = []
    for a in args:
        p = Path(a)
        files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.suffix in (".cpp", ".h"))
        for f in files:
            found += functions(f)
    found.sort(key=lambda r: -r[0])
    for length, path, line, head in found:
        if length > over:
            print(f"{length:5d}  {path}:{line}  {head.strip()}")


if __name__ == "__main__":
    main()
