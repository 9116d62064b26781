"""The documentation: README.md is the front page and docs/ the reference site (mkdocs.yml); every pasted
``$ accelsim ...`` output on them comes from the current code (tools/readme_outputs.py, checked here)."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "readme_outputs.py"

# Commands the docs test leaves alone (the tool's --write re-runs them by hand), each for its reason. Every other
# pasted command with output is checked (18 of the 31, 1-14 s each on 2 cores).
LEFT_ALONE = [
    "benchmarks/",  # timing tables
    "accelsim sweep",  # the elapsed seconds and a progress bar (so its plot's input too)
    "accelsim fit ",  # minutes of fitting
    "accelsim plot ",  # over 20 s
    "--measurements tests/data/gaudi2_generate.jsonl",  # over 40 s: every record's generation simulated
    "--search",  # over 30 s: ten layouts simulated
    "--measurements m.jsonl",  # a hypothetical bad file
    "--measurements gaudi2_generate.jsonl",  # the file above, cut
]


def tool():
    spec = importlib.util.spec_from_file_location("readme_outputs", TOOL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up while the class is built
    spec.loader.exec_module(module)
    return module


def nav_pages() -> list[str]:
    """The pages mkdocs.yml's nav lists, in order."""
    return re.findall(r"^\s+- [^:]+: (\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), flags=re.M)


def test_readme_opens_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[:5] == [
        "# accelsim",
        "",
        "```bash",
        "python3 -m venv .venv && . .venv/bin/activate && pip install . && accelsim compare --chip gaudi1 --workload"
        " gformer-gpt",
        "python3 -m venv .venv && . .venv/bin/activate && pip install '.[test]' && pytest",
    ]


def test_every_page_is_in_the_nav_and_linked_from_the_readme_and_the_home_page():
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    nav = nav_pages()
    assert sorted(p for p in nav if "/" not in p) == pages
    assert all((ROOT / "docs" / p).is_file() for p in nav)
    readme = set(re.findall(r"\]\(docs/([^)#]+\.md)\)", (ROOT / "README.md").read_text()))
    home = set(re.findall(r"\]\(([^)#/]+\.md)\)", (ROOT / "docs" / "index.md").read_text()))
    assert readme == set(pages) - {"index.md"}
    assert home == set(pages) - {"index.md"}


def test_relative_links_in_the_readme_resolve():
    for target in re.findall(r"\]\((?!https?:)([^)#]+)", (ROOT / "README.md").read_text()):
        assert (ROOT / target).exists(), target


def test_the_tool_finds_a_stale_output_and_rewrites_it(tmp_path, capsys):
    block = "```console\n$ printf 'a\\nb\\nc\\nd\\n'\na\n...\n{}\n```\n\n```console\n$ echo hi\nhi\n```\n"
    page = tmp_path / "page.md"
    page.write_text("# p\n\n" + block.format("x"))
    readme_outputs = tool()
    assert readme_outputs.main(["--check", str(page)]) == 1
    assert "-x\n+d\n" in capsys.readouterr().out
    assert readme_outputs.main(["--write", str(page)]) == 0
    # The cut keeps one line before and one after the "..." line; the second block was current and stays.
    assert page.read_text() == "# p\n\n" + block.format("d")
    assert readme_outputs.main(["--check", str(page)]) == 0


def test_the_tool_runs_a_page_in_order_so_a_command_reads_what_an_earlier_one_wrote(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```console\n$ echo made | tee made.txt\nmade\n$ cat made.txt\nmade\n```\n")
    assert tool().main(["--check", str(page)]) == 0


def test_the_tool_refuses_a_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        tool().main(["--check", str(tmp_path / "none.md")])
    assert exit_.value.code == 2
    assert "none.md: not a file" in capsys.readouterr().err


@pytest.mark.slow
def test_every_pasted_output_of_a_fast_command_is_current():
    argv = [sys.executable, str(TOOL), "--check", "--timeout", "120"]
    argv += [f"--skip={pattern}" for pattern in LEFT_ALONE]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
