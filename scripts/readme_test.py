"""Runs the README's shell blocks, in order, in one bash session, and
compares what each prints with the output block shown after it.

A ```sh block runs unless the line before it is
`<!-- readme-test: skip (reason) -->`; a ```text block right after a run
block, marked `<!-- readme-test: output -->`, is what that block must print
on stdout, exactly. The session starts in the repository root with a clean
environment (PATH, a fresh HOME and TMPDIR, the Rust toolchain's variables), and stops
at the first failing command: set -euo pipefail.

Usage: readme_test.py <README.md> <work dir>
"""

import os
import re
import subprocess
import sys

FENCE = re.compile(r"^```(\w*)\s*$")
MARK = re.compile(r"^<!-- readme-test: (skip|output)\b.*-->\s*$")


def blocks(text):
    """(kind, info, body, line, mark) for every fenced block."""
    lines = text.splitlines()
    out, i, mark = [], 0, None
    while i < len(lines):
        m = MARK.match(lines[i])
        if m:
            mark = m.group(1)
            i += 1
            continue
        f = FENCE.match(lines[i])
        if f:
            start, info, body = i + 1, f.group(1), []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            out.append((info, "\n".join(body) + "\n", start, mark))
            if i >= len(lines):
                break
        if lines[i].strip():
            mark = None
        i += 1
    return out


def main():
    readme, work = sys.argv[1], sys.argv[2]
    found = blocks(open(readme, encoding="utf-8").read())
    runs = []  # (line, body, expected output or None)
    for n, (info, body, line, mark) in enumerate(found):
        if info == "sh" and mark != "skip":
            expected = None
            if n + 1 < len(found) and found[n + 1][3] == "output":
                expected = found[n + 1][1]
            runs.append((line, body, expected))
    if not runs:
        sys.exit("no runnable block in the README")
    marker = "@@readme-test block {}@@"
    script = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT"]
    for k, (line, body, _) in enumerate(runs):
        script.append(f"echo '{marker.format(k)}'")
        script.append(f"echo '== README.md line {line}' >&2")
        script.append(body)
    script.append(f"echo '{marker.format(len(runs))}'")
    home = os.path.join(work, "home")
    os.makedirs(home, exist_ok=True)
    keep = ["PATH", "CARGO_TARGET_DIR", "CARGO_HOME", "RUSTUP_HOME", "LANG", "TERM"]
    env = {k: os.environ[k] for k in keep if k in os.environ}
    # With HOME moved, cargo and rustup must still find the toolchain.
    real_home = os.path.expanduser("~")
    env.setdefault("CARGO_HOME", os.path.join(real_home, ".cargo"))
    env.setdefault("RUSTUP_HOME", os.path.join(real_home, ".rustup"))
    env["HOME"] = home
    # Scratch directories the blocks make (mktemp) go with the work dir.
    env["TMPDIR"] = os.path.join(work, "tmp")
    os.makedirs(env["TMPDIR"], exist_ok=True)
    root = os.path.dirname(os.path.abspath(readme))
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=root, env=env, stdout=subprocess.PIPE, text=True
    )
    parts = done.stdout.split("\n")
    printed, current = {}, None
    for row in parts:
        m = re.fullmatch(r"@@readme-test block (\d+)@@", row)
        if m:
            current = int(m.group(1))
            printed[current] = []
        elif current is not None:
            printed[current].append(row)
    failed = 0
    for k, (line, _, expected) in enumerate(runs):
        if k not in printed or (k + 1 not in printed):
            print(f"FAILED: the block at README.md line {line} did not finish (exit status {done.returncode})")
            print("".join(f"  | {r}\n" for r in printed.get(k, [])), end="")
            failed += 1
            break
        got = "\n".join(printed[k]).rstrip("\n") + "\n"
        if expected is not None and got != expected:
            print(f"FAILED: the block at README.md line {line} printed:")
            print("".join(f"  | {r}\n" for r in got.splitlines()), end="")
            print("instead of:")
            print("".join(f"  | {r}\n" for r in expected.splitlines()), end="")
            failed += 1
    if done.returncode != 0 and not failed:
        print(f"FAILED: the session exited {done.returncode}")
        failed += 1
    checked = sum(1 for r in runs if r[2] is not None)
    print(f"README: {len(runs)} blocks run, {checked} outputs compared, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
