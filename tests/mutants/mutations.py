#!/usr/bin/env python3
"""The planted-bug list (tests/mutants/mutations): read, check, apply.

    mutations.py check LIST TOP MAKEFILE   every block well formed, its original
                                           text exactly once in TOP/file, its
                                           catchers in MAKEFILE's TESTS
    mutations.py ids LIST [--quick]        the ids, in order (--quick: those
                                           marked quick)
    mutations.py field LIST ID KEY         one field of a block (file, what, catch)
    mutations.py tests MAKEFILE            the TESTS of a generated Makefile
    mutations.py apply LIST ID TOP         plants the mutation in TOP/file

The standard library only: the system python3 runs it, with no oracle venv.
"""
import re
import sys

KEYS = ("file", "what", "catch", "quick")


def fail(msg):
    sys.exit(f"mutations: {msg}")


def parse(path):
    """The blocks in file order: dicts with id, file, what, catch (a list),
    quick, old, new (whole lines, each ending in a newline) and line."""
    blocks, cur, part = [], None, None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for no, line in enumerate(lines, 1):
        where = f"{path}:{no}"
        if part in ("old", "new"):
            if line == "===" and part == "old":
                part = "new"
            elif line == ">>>" and part == "new":
                part = None
                blocks.append(cur)
                cur = None
            elif line in ("<<<", "===", ">>>"):
                fail(f"{where}: '{line}' out of order")
            else:
                cur[part] += line + "\n"
            continue
        if not line.strip() or line.startswith("#"):
            continue
        m = re.fullmatch(r"\[([A-Za-z0-9_.-]+)\]", line)
        if m:
            if cur is not None:
                fail(f"{where}: block [{cur['id']}] has no <<< ... >>> text")
            cur = {"id": m.group(1), "line": no, "old": "", "new": "", "quick": "no"}
            continue
        if cur is None:
            fail(f"{where}: '{line}' outside a block")
        if line == "<<<":
            part = "old"
            continue
        m = re.fullmatch(r"(\w+):\s*(.*)", line)
        if not m or m.group(1) not in KEYS:
            fail(f"{where}: expected one of {', '.join(KEYS)} (key: value), or <<<")
        cur[m.group(1)] = m.group(2).strip()
    if part is not None or cur is not None:
        fail(f"{path}: the last block is not closed with >>>")
    seen = set()
    for b in blocks:
        where = f"{path}:{b['line']} [{b['id']}]"
        if b["id"] in seen:
            fail(f"{where}: the id is used twice")
        seen.add(b["id"])
        for k in ("file", "what", "catch"):
            if not b.get(k):
                fail(f"{where}: no {k}:")
        if not b["old"]:
            fail(f"{where}: no original text")
        if b["old"] == b["new"]:
            fail(f"{where}: the replacement equals the original")
        b["catch"] = b["catch"].split()
    return blocks


def find(blocks, ident):
    for b in blocks:
        if b["id"] == ident:
            return b
    fail(f"no mutation '{ident}' in the list")


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        fail(f"{path}: {e.strerror}")


def makefile_tests(path):
    """TESTS of an Automake-generated Makefile: one assignment with
    backslash continuations, $(EXEEXT) after programs."""
    text = read(path).replace("\\\n", " ")
    m = re.search(r"^TESTS =(.*)$", text, re.M)
    if not m:
        fail(f"{path}: no TESTS")
    return [t.replace("$(EXEEXT)", "") for t in m.group(1).split()]


def check(list_path, top, makefile):
    blocks = parse(list_path)
    tests = set(makefile_tests(makefile))
    problems = []
    for b in blocks:
        n = read(f"{top}/{b['file']}").count(b["old"])
        if n != 1:
            problems.append(f"[{b['id']}] {b['file']}: the original text occurs {n} times, not once")
        for t in b["catch"]:
            if t not in tests:
                problems.append(f"[{b['id']}] catcher {t} is not in the test suite's TESTS")
    for p in problems:
        print(f"FAIL: {p}")
    print(f"{len(blocks)} mutations, {len(blocks) - len({p.split()[0] for p in problems})} intact")
    return 1 if problems else 0


def apply(list_path, ident, top):
    b = find(parse(list_path), ident)
    path = f"{top}/{b['file']}"
    text = read(path)
    n = text.count(b["old"])
    if n != 1:
        fail(f"[{ident}] {path}: the original text occurs {n} times, not once")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(b["old"], b["new"]))


def main(argv):
    if len(argv) >= 4 and argv[0] == "check":
        return check(argv[1], argv[2], argv[3])
    if len(argv) in (2, 3) and argv[0] == "ids":
        quick = argv[2:] == ["--quick"]
        for b in parse(argv[1]):
            if not quick or b["quick"] == "yes":
                print(b["id"])
        return 0
    if len(argv) == 4 and argv[0] == "field":
        v = find(parse(argv[1]), argv[2]).get(argv[3])
        print(" ".join(v) if isinstance(v, list) else v)
        return 0
    if len(argv) == 2 and argv[0] == "tests":
        print("\n".join(makefile_tests(argv[1])))
        return 0
    if len(argv) == 4 and argv[0] == "apply":
        apply(argv[1], argv[2], argv[3])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
