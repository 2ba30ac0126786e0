"""Man pages and bash completion generated from --help (deploy/gen-cli-docs.py):
every program gets both, the man page carries the help text, and the
completion completes subcommands and options in a real bash. Label unit: it
runs the built programs' --help only."""
import os
import shutil
import subprocess
import tempfile
import unittest

SOURCE_DIR = os.path.abspath(os.environ.get("THOPTER_SOURCE_DIR")
                             or os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.environ.get("THOPTER_BUILD_DIR") or os.path.join(SOURCE_DIR, "build", "dev")
PROGRAMS = ["thopter-consumer", "thopter-send", "thopter-dlq", "thopter-reaper", "thopter-status",
            "thopter-devbroker", "bulk-destroy"]


def complete(script, line):
    """The words bash's completion function offers for @line (the cursor at its end)."""
    words = line.split(" ")
    prog = (
        "source %s\n"
        "COMP_WORDS=(%s); COMP_CWORD=%d; COMP_LINE=%s; COMP_POINT=${#COMP_LINE}\n"
        "f=$(complete -p %s | sed -E 's/.* -F ([^ ]+) .*/\\1/')\n"
        "$f; printf '%%s\\n' \"${COMPREPLY[@]}\"\n"
        % (script, " ".join("'%s'" % w for w in words), len(words) - 1, "'%s'" % line, words[0]))
    out = subprocess.run(["bash", "--norc", "-c", prog], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    return [w for w in out.stdout.splitlines() if w]


class TestCliDocs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(os.path.join(BUILD_DIR, "thopter-status"), os.X_OK):
            raise unittest.SkipTest("no build in %s" % BUILD_DIR)
        cls.out = tempfile.mkdtemp(prefix="cli-docs-")
        subprocess.run(["/usr/bin/python3", os.path.join(SOURCE_DIR, "deploy", "gen-cli-docs.py"),
                        BUILD_DIR, cls.out], check=True, timeout=120)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def test_every_program_has_a_man_page_with_its_help(self):
        for name in PROGRAMS:
            path = os.path.join(self.out, "man1", name + ".1")
            with open(path) as f:
                page = f.read()
            self.assertTrue(page.startswith(".TH %s 1 " % name.upper()), name)
            self.assertIn(".SH NAME", page)
            self.assertIn("\\-\\-help", page)
            if shutil.which("groff"):
                text = subprocess.run(["groff", "-man", "-Tutf8", path], capture_output=True, text=True,
                                      timeout=20, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}).stdout
                self.assertIn("Usage", text, name)

    def test_completion_offers_subcommands_and_options(self):
        comp = os.path.join(self.out, "bash-completion")
        for name in PROGRAMS:
            subprocess.run(["bash", "-n", os.path.join(comp, name)], check=True, timeout=10)
        self.assertEqual(complete(os.path.join(comp, "thopter-dlq"), "thopter-dlq re"), ["replay"])
        self.assertEqual(sorted(complete(os.path.join(comp, "thopter-send"), "thopter-send ")),
                         ["destroy", "provision"])
        self.assertIn("--since", complete(os.path.join(comp, "thopter-dlq"), "thopter-dlq list --s"))
        self.assertIn("--thopter-drain-timeout",
                      complete(os.path.join(comp, "thopter-consumer"), "thopter-consumer --thopter-dr"))
        self.assertEqual(complete(os.path.join(comp, "thopter-consumer"), "thopter-consumer --role p"),
                         ["provision"])
        self.assertIn("--metrics", complete(os.path.join(comp, "thopter-status"), "thopter-status --m"))
        # After an option that takes a value: nothing from us (bash completes file names).
        self.assertEqual(complete(os.path.join(comp, "thopter-dlq"), "thopter-dlq list --dlq-topic "), [])


if __name__ == "__main__":
    unittest.main()
