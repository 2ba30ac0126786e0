#!/usr/bin/python3
"""gen-cli-docs.py - man pages and bash completion generated from the
programs' own --help (so they never drift from it).

    deploy/gen-cli-docs.py BUILD_DIR OUT_DIR

For each program (thopter-consumer, thopter-send, thopter-dlq, thopter-reaper,
thopter-status, thopter-devbroker and producer-tools/bulk-destroy) it runs
`PROGRAM --help` with an empty environment and writes
  OUT_DIR/man1/PROGRAM.1                 the help text as a man page
  OUT_DIR/bash-completion/PROGRAM        completion of its options, its
                                         subcommands and, for the settings
                                         flags, nothing more than the names
Python 3 standard library only."""
import os
import re
import subprocess
import sys

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PROGRAMS = ["thopter-consumer", "thopter-send", "thopter-dlq", "thopter-reaper", "thopter-status",
            "thopter-devbroker", "bulk-destroy"]
SUMMARY = {
    "thopter-consumer": "provision and destroy thopters from Kafka requests",
    "thopter-send": "validate and publish provision and destroy requests",
    "thopter-dlq": "list, show and replay dead letters",
    "thopter-reaper": "publish destroy requests for thopters that should be gone",
    "thopter-status": "consumer groups' committed offsets, lag and members",
    "thopter-devbroker": "an embedded Kafka-protocol broker for development and tests",
    "bulk-destroy": "destroy requests for machine ids on stdin, with kcat",
}
# Subcommands: the first word after the program in its Usage lines.
OPTION_RE = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])\b")


def program_path(build_dir, name):
    if name == "bulk-destroy":
        return os.path.join(SOURCE_DIR, "producer-tools", "bulk-destroy")
    return os.path.join(build_dir, name)


def help_text(path):
    out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30,
                         env={"PATH": "/usr/bin:/bin"})
    if out.returncode != 0:
        raise SystemExit("%s --help: exit %d: %s" % (path, out.returncode, out.stderr))
    return out.stdout


def roff_escape(line):
    line = line.replace("\\", "\\e").replace("-", "\\-")
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line


def man_page(name, text, version):
    lines = text.rstrip("\n").split("\n")
    out = ['.TH %s 1 "" "thopter-consumer %s" "User Commands"' % (name.upper(), version),
           ".SH NAME", "%s \\- %s" % (roff_escape(name), SUMMARY[name]),
           ".SH DESCRIPTION",
           "The text below is the output of \\fB%s \\-\\-help\\fR." % roff_escape(name),
           ".PP", ".nf"]
    out += [roff_escape(line) for line in lines]
    out += [".fi", ".SH SEE ALSO",
            "thopter\\-consumer(1), thopter\\-send(1), thopter\\-dlq(1), thopter\\-reaper(1), "
            "thopter\\-status(1), thopter\\-devbroker(1), bulk\\-destroy(1); docs/CONTRACT.md"]
    return "\n".join(out) + "\n"


def subcommands(name, text):
    subs = []
    for m in re.finditer(r"^\s*(?:Usage:\s*)?%s ([a-z][a-z|]*)\b" % re.escape(name), text, re.M):
        for word in m.group(1).split("|"):
            if word not in subs:
                subs.append(word)
    return subs


def completion(name, text):
    opts = sorted(set(OPTION_RE.findall(text)))
    subs = subcommands(name, text)
    fn = "_" + re.sub(r"[^a-z0-9]", "_", name)
    value_opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])[ =](?:[A-Z][A-Z_:.,\[\]-]*|key=value)",
                                text))
    # The settings' flags ("  NAME   --flag"): each takes a value.
    value_opts |= set(re.findall(r"^  [A-Z][A-Z0-9_]+\s+(--[a-z0-9-]+)", text, re.M))
    value_opts = sorted(value_opts)
    return """# bash completion for %(name)s, generated from its --help by deploy/gen-cli-docs.py.
%(fn)s() {
        local cur prev
        cur="${COMP_WORDS[COMP_CWORD]}"
        prev="${COMP_WORDS[COMP_CWORD-1]}"
        # After an option that takes a value: --role's, else file names
        # (complete -o default).
        if [[ $prev == --role ]]; then
                COMPREPLY=($(compgen -W "provision destroy all" -- "$cur"))
                return
        fi
        case " %(values)s " in
        *" $prev "*) return ;;
        esac
        if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "%(opts)s" -- "$cur"))
                return
        fi
        local subs="%(subs)s" w
        if [[ -n $subs ]]; then
                for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
                        [[ " $subs " == *" $w "* ]] && return
                done
                COMPREPLY=($(compgen -W "$subs" -- "$cur"))
        fi
}
complete -o default -F %(fn)s %(name)s
""" % {"name": name, "fn": fn, "opts": " ".join(opts), "subs": " ".join(subs), "values": " ".join(value_opts)}


def main(argv):
    if len(argv) != 3:
        raise SystemExit("usage: gen-cli-docs.py BUILD_DIR OUT_DIR")
    build_dir, out_dir = argv[1], argv[2]
    os.makedirs(os.path.join(out_dir, "man1"), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "bash-completion"), exist_ok=True)
    for name in PROGRAMS:
        path = program_path(build_dir, name)
        text = help_text(path)
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30,
                                 env={"PATH": "/usr/bin:/bin"}).stdout.split()
        with open(os.path.join(out_dir, "man1", name + ".1"), "w") as f:
            f.write(man_page(name, text, version[1] if len(version) > 1 else ""))
        with open(os.path.join(out_dir, "bash-completion", name), "w") as f:
            f.write(completion(name, text))


if __name__ == "__main__":
    main(sys.argv)
