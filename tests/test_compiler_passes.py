"""The compiler's passes are numbered in its module docstring (in the order compile_graph runs them) and again in
the section headers of its source; the two must name the same pass by the same number."""

import re
from pathlib import Path

import accelsim.compiler as compiler


def test_the_docstring_and_the_section_headers_number_the_passes_alike():
    documented = {int(n): name.lower() for n, name in re.findall(r"^(\d)\. \*\*([^.*]+)", compiler.__doc__, re.M)}
    source = Path(compiler.__file__).read_text()
    headed: dict[int, str] = {}
    for numbers, names in re.findall(r"^# ---- ([\d and]+)\. ([a-z -]+?) -", source, re.M):
        nums = [int(n) for n in re.findall(r"\d", numbers)]
        parts = [p.strip().removeprefix("the ") for p in names.split(" and ")]
        headed.update(zip(nums, parts, strict=True))
    assert documented == {1: "edges", 2: "fusion", 3: "split", 4: "prefetch", 5: "on-chip plan"}
    assert headed == documented
