"""No circle of calls among the consumer/lib files (docs/DESIGN.md, "Layers").

Reads each consumer/lib object file of the build with nm: a file that leaves
a symbol undefined which another file defines sits above that file. The edges
must form no cycle, so that every file has a floor it stands on and nothing it
stands on calls back up.
"""

import glob
import os
import shutil
import subprocess
import unittest

BUILD_DIR = os.environ.get("THOPTER_BUILD_DIR", "")


def object_files(build_dir):
    pattern = os.path.join(build_dir, "CMakeFiles", "thopter.dir", "**", "consumer", "lib", "*.o")
    return sorted(glob.glob(pattern, recursive=True))


def module_name(path):
    name = os.path.basename(path)
    for suffix in (".o", ".c"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def symbols(path):
    """(defined, undefined) external symbol names of one object file."""
    out = subprocess.run(["nm", "-P", path], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        name, kind = fields[0], fields[1]
        if kind == "U":
            undefined.add(name)
        elif kind.isupper() or kind in ("V", "W"):
            defined.add(name)
    return defined, undefined


def edges(paths):
    """{file: {file it uses: [symbols]}} for the given object files."""
    owner, needs = {}, {}
    for path in paths:
        mod = module_name(path)
        defined, undefined = symbols(path)
        for sym in defined:
            owner[sym] = mod
        needs[mod] = undefined
    graph = {mod: {} for mod in needs}
    for mod, undefined in needs.items():
        for sym in sorted(undefined):
            dep = owner.get(sym)
            if dep and dep != mod:
                graph[mod].setdefault(dep, []).append(sym)
    return graph


def find_cycle(graph):
    """One cycle as a list of files (first == last), or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


class FindCycle(unittest.TestCase):
    """The checker itself, on small graphs."""

    def test_a_chain_has_no_cycle(self):
        self.assertIsNone(find_cycle({"a": {"b": ["f"]}, "b": {"c": ["g"]}, "c": {}}))

    def test_a_circle_is_named(self):
        cycle = find_cycle({"a": {"b": ["f"]}, "b": {"c": ["g"]}, "c": {"a": ["h"]}})
        self.assertEqual(cycle, ["a", "b", "c", "a"])


@unittest.skipUnless(shutil.which("nm"), "nm (binutils) is not installed")
class LibLayers(unittest.TestCase):
    def test_no_cycle_among_lib_files(self):
        paths = object_files(BUILD_DIR)
        self.assertGreater(len(paths), 20, "no consumer/lib objects under %r (THOPTER_BUILD_DIR)" % BUILD_DIR)
        graph = edges(paths)
        cycle = find_cycle(graph)
        if cycle:
            steps = [
                "%s -> %s (%s)" % (a, b, ", ".join(graph[a][b][:3]))
                for a, b in zip(cycle, cycle[1:])
            ]
            self.fail("consumer/lib files call each other in a circle:\n  " + "\n  ".join(steps))


if __name__ == "__main__":
    unittest.main()
