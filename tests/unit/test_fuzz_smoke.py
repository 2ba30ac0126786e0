"""test_fuzz_smoke - a short run of the libFuzzer targets of tests/fuzz.

Runs `tests/fuzz/run-fuzz.sh --seconds 10` (six targets, 10 s each, plus
about 4 s of building each with clang: about 90 s): any crash, leak, timeout,
out-of-memory or broken invariant fails the test, with the reproducer's path
in the message.
The corpus under build/fuzz/corpus grows from run to run.

Needs clang and its libFuzzer runtime (Debian: clang, libclang-rt-14-dev;
deploy/setup.sh installs both). Skipped only when clang is missing; a clang
without libFuzzer fails, so the missing package does not go unnoticed.
THOPTER_FUZZ_SECONDS overrides the 10 s per target.
"""

import os
import shutil
import subprocess
import unittest

SOURCE_DIR = os.environ.get(
    "THOPTER_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
SCRIPT = os.path.join(SOURCE_DIR, "tests", "fuzz", "run-fuzz.sh")
SECONDS = int(os.environ.get("THOPTER_FUZZ_SECONDS", "10"))
TARGETS = ("fuzz_request", "fuzz_json_strict", "fuzz_shell_quote",
           "fuzz_fly_json", "fuzz_http_header", "fuzz_known_hosts")


class FuzzSmoke(unittest.TestCase):
    @unittest.skipIf(shutil.which(os.environ.get("CC", "clang")) is None,
                     "clang is not installed (Debian: clang, "
                     "libclang-rt-14-dev): the fuzz targets cannot be built")
    def test_fuzz_targets_run_clean(self):
        proc = subprocess.run(
            ["bash", SCRIPT, "--seconds", str(SECONDS)],
            cwd=SOURCE_DIR, stdin=subprocess.DEVNULL, capture_output=True,
            text=True, errors="replace", timeout=150 + 2 * len(TARGETS) * SECONDS,
            check=False)
        # Only the summary lines: libFuzzer's own output is in build/fuzz/logs.
        summary = [line for line in proc.stdout.splitlines()
                   if line.startswith("== ")]
        print("\n".join(summary))
        if proc.returncode == 3:
            self.fail("run-fuzz.sh could not build: " + proc.stderr.strip())
        self.assertEqual(
            proc.returncode, 0,
            "run-fuzz.sh exited %d:\n%s\n%s" %
            (proc.returncode, "\n".join(summary), proc.stderr.strip()))
        for name in TARGETS:
            self.assertTrue(
                any(line.startswith("== %s: exit 0, executions " % name)
                    for line in summary), "%s did not run" % name)


if __name__ == "__main__":
    unittest.main()
