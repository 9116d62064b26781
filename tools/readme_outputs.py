"""Re-run the commands pasted in the ```console blocks of README.md and docs/*.md and put their current output in place.

The README and the documentation pages promise that every pasted output comes from the current code; this keeps
that promise checkable (tests/test_docs.py runs it in --check mode on the fast commands). Each
``$ command`` (with ``\\`` continuations) followed by output lines is run from a scratch folder that links the
checkout's top-level entries (so relative paths work and written figures do not land in the checkout). An output
that was cut with a ``...`` line keeps the same number of lines before and after the cut. Commands followed by no
output lines (a list of examples), commands with a ``[--option]`` placeholder and commands matching ``--skip`` are
left alone. ``accelsim`` is found beside the Python running this script first, so a virtual environment need not be
activated.

    python tools/readme_outputs.py --check                      # README.md, docs/*.md: exit 1 and a diff if changed
    python tools/readme_outputs.py --write docs/generation.md   # rewrite one page in place
    python tools/readme_outputs.py --write --only compare --only validate
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CUT = "..."


@dataclass
class Example:
    """One command of a console block and the lines of output pasted after it (indices into the README's lines)."""

    command: str
    first: int  # index of the first output line
    last: int  # one past the last output line

    def run(self, cwd: Path, timeout: float) -> list[str]:
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        env = dict(os.environ, COLUMNS="200", MPLBACKEND="Agg", PATH=path)
        proc = subprocess.run(
            ["bash", "-c", self.command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
        text = (proc.stdout + proc.stderr).rstrip("\n")
        return [line.rstrip() for line in text.splitlines()]


def examples(lines: list[str]) -> list[Example]:
    """Every command with pasted output, in order."""
    found: list[Example] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("```console"):
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                if lines[i].startswith("$ "):
                    parts = [lines[i][2:]]
                    while parts[-1].endswith("\\") and i + 1 < len(lines):
                        i += 1
                        parts.append(lines[i].strip())
                    command = " ".join(p.removesuffix("\\").strip() for p in parts)
                    first = i + 1
                    j = first
                    while j < len(lines) and not lines[j].startswith(("$ ", "```")):
                        j += 1
                    if j > first:
                        found.append(Example(command, first, j))
                    i = j
                    continue
                i += 1
        i += 1
    return found


def fit_cut(old: list[str], new: list[str]) -> list[str]:
    """The new output cut where the old one was: as many lines before and after the ``...`` line."""
    if CUT not in old:
        return new
    k = old.index(CUT)
    head, tail = old[:k], old[k + 1 :]
    if len(new) <= len(head) + len(tail):
        return new
    return new[: len(head)] + [CUT] + (new[len(new) - len(tail) :] if tail else [])


def scratch() -> Path:
    """A folder whose entries link to the checkout's, so commands see its files and write elsewhere."""
    folder = Path(tempfile.mkdtemp(prefix="readme-"))
    for entry in ROOT.iterdir():
        if not entry.name.startswith("."):
            (folder / entry.name).symlink_to(entry)
    return folder


def default_files() -> list[Path]:
    """The README and every documentation page, in a fixed order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def update(path: Path, args: argparse.Namespace, cwd: Path) -> int:
    """Re-run one file's selected examples, print a diff for each changed output, rewrite the file with --write;
    how many changed."""
    lines = path.read_text().splitlines()
    outputs: list[tuple[Example, list[str]]] = []
    # In the page's order, since a command may read what an earlier one wrote (a sweep's file, then its plot).
    for ex in examples(lines):
        if args.only and not any(s in ex.command for s in args.only):
            continue
        if any(s in ex.command for s in args.skip) or re.search(r"\[--\w+", ex.command):
            continue
        print(f"{path.name}: $ {ex.command}", file=sys.stderr)
        old = lines[ex.first : ex.last]
        new = fit_cut(old, ex.run(cwd, args.timeout))
        if new != old:
            outputs.append((ex, new))
            sys.stdout.writelines(
                difflib.unified_diff(
                    [s + "\n" for s in old],
                    [s + "\n" for s in new],
                    f"{path.name}: {shlex.quote(ex.command)[:80]}",
                    "now",
                )
            )
    changed = len(outputs)
    # Later outputs first, so replacing one does not move the lines of those still to do.
    for ex, new in reversed(outputs):
        lines[ex.first : ex.last] = new
    if args.write and changed:
        path.write_text("\n".join(lines) + "\n")
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="print a diff of changed outputs and exit 1 if any")
    mode.add_argument("--write", action="store_true", help="rewrite the files with the current outputs")
    p.add_argument("--only", action="append", default=[], help="run only commands containing this text (repeatable)")
    p.add_argument("--skip", action="append", default=[], help="leave commands containing this text (repeatable)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds a command may take")
    p.add_argument(
        "files", nargs="*", type=Path, help="markdown files to read and rewrite (default: README.md and docs/*.md)"
    )
    args = p.parse_args(argv)
    for path in args.files:
        if not path.is_file():
            p.error(f"{path}: not a file")

    cwd = scratch()
    changed = sum(update(path, args, cwd) for path in args.files or default_files())
    print(f"{changed} pasted output(s) changed", file=sys.stderr)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
