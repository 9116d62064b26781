"""Fuzzing the command line with mutated input files: whatever the file holds, the CLI ends with exit 0, or with
exit 2 and exactly one stderr line ``accelsim: error: ...`` naming the file; never an exception, never a hang.

Cases are generated from a fixed seed (case ``i`` uses ``random.Random(SEED + i)``), so a failure names a case that
reproduces: ``pytest tests/test_fuzz.py -k 'case_17]'``. Each case mutates a shipped chip profile, a workload or a
small task graph (keys deleted or duplicated, values replaced with huge, negative, non-finite, wrong-typed or
deeply nested ones, binary garbage, truncation, a byte order mark) and runs one command on it in-process, under a
10 s alarm. The default run has FAST cases; the slow marker adds SLOW more.

The runs stay small (one layer; a graph of 64-wide shapes; chips whose compilers split are only given that graph;
and a task limit of TASK_LIMIT instead of the machine's 5 million, so that a mutated size is refused by the same
check, sooner), so that a case that is accepted finishes in well under a second: the fuzz looks for crashes and
hangs in input handling; the machine limits themselves are tests/test_edges_inputs.py's.
"""

import random
import re
from pathlib import Path

import pytest

from accelsim.cli import main

from conftest import deadline

ROOT = Path(__file__).parent.parent
SEED = 20261130
FAST = 100
SLOW = 1500
SECONDS = 10
TASK_LIMIT = 20_000

TINY_GRAPH = """name = "tiny"

[[tasks]]
name = "load"
op = "dma"
shape = [4096]

[[tasks]]
name = "mm"
op = "gemm"
shape = [64, 64, 64]
deps = ["load"]

[[tasks]]
name = "sm"
op = "softmax"
shape = [64, 64]
deps = ["mm"]
engines = ["vector"]

[[tasks]]
name = "out"
op = "add"
shape = [64, 64]
deps = ["sm", "mm"]
"""


def _one_layer(text):
    return re.sub(r"(?m)^layers = \d+", "layers = 1", text)


CHIPS = {name: (ROOT / "chips" / f"{name}.toml").read_text() for name in ("gaudi2", "h100", "tpu-v4", "trainium2")}
WORKLOADS = {
    name: _one_layer((ROOT / "workloads" / f"{name}.toml").read_text())
    for name in ("gpt2-small", "gformer-vit", "llama-7b-like-layer")
}
GRAPHS = {"tiny": TINY_GRAPH, "attention_head": (ROOT / "examples" / "attention_head.toml").read_text()}

VALUES = [
    "-1",
    "0",
    "1",
    "2",
    "0.5",
    "-0.0",
    "1e-300",
    "1e300",
    "1e400",
    "inf",
    "-inf",
    "nan",
    "+nan",
    str(2**31),
    str(2**62),
    str(2**63 - 1),
    str(2**63),
    str(2**64),
    "9" * 40,
    "100000",
    "100001",
    "1000000000000",
    "1e12",
    "1e6",
    "3.0",
    "0.01",
    "0.001",
    "100",
    "1000000000",
    "true",
    "false",
    '"x"',
    '""',
    '"tile"',
    '"training"',
    '"hybrid"',
    '"matrix"',
    "[]",
    "[1, 2]",
    '["vector"]',
    "[0]",
    "[-1]",
    f"[{2**63}]",
    "[1e300]",
    "{}",
    "{ a = 1 }",
    "[" * 40 + "]" * 40,
    "{ a = " * 40 + "1" + " }" * 40,
    "1979-05-27",
    "07:32:00",
    "0x7fffffffffffffff",
    '"\\u0000"',
    "'''\nx\n'''",
]
GARBAGE = [
    b"\x00",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"[[",
    b"]]",
    b"=",
    b'"',
    b"\n[a]\n[a]\n",
    b"\x80\x81\x82",
    b"= = =",
    b"\n" + b"a." * 5000 + b"a = 1\n",
    b"\nx = " + b"[" * 2000 + b"\n",
]

KEY_LINE = re.compile(r"^([A-Za-z0-9_.\"-]+)\s*=\s*(.*)$")


def mutate(text: str, rng: random.Random) -> bytes:
    """One to three mutations of a TOML text."""
    lines = text.splitlines()
    data: bytes | None = None
    for _ in range(rng.randint(1, 3)):
        keyed = [i for i, line in enumerate(lines) if KEY_LINE.match(line)]
        what = rng.choice(
            [
                "value",
                "value",
                "value",
                "value",
                "delete",
                "duplicate",
                "header",
                "nest",
                "garbage",
                "truncate",
                "bom",
                "engines",
            ]
        )
        if what == "value" and keyed:
            i = rng.choice(keyed)
            key = KEY_LINE.match(lines[i]).group(1)
            lines[i] = f"{key} = {rng.choice(VALUES)}"
        elif what == "delete" and lines:
            del lines[rng.randrange(len(lines))]
        elif what == "duplicate" and lines:
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
        elif what == "header":
            lines.insert(
                rng.randrange(len(lines) + 1),
                rng.choice(
                    ["[memory]", "[engines]", "[[tasks]]", "[model]", "[engines.x]", "[run.batch]", "[a.b.c.d]"]
                ),
            )
        elif what == "nest":
            depth = rng.choice([31, 33, 200, 3000])
            lines.append(rng.choice(["x = " + "[" * depth + "]" * depth, ".".join(["k"] * depth) + " = 1"]))
        elif what == "engines":  # a table of engines or a task's engines replaced
            lines.append(
                rng.choice(
                    [
                        "engines = []",
                        'engines = ["warp"]',
                        "engines = {}",
                        '[engines.tpc1]\nkind = "vector"\ncount = 11\nlanes = { bf16 = 8 }',
                    ]
                )
            )
        elif what in ("garbage", "truncate", "bom"):
            raw = "\n".join(lines).encode()
            at = rng.randrange(len(raw) + 1)
            if what == "garbage":
                raw = raw[:at] + rng.choice(GARBAGE) + raw[at:]
            elif what == "truncate":
                raw = raw[:at]
            else:
                raw = b"\xef\xbb\xbf" + raw
            data = raw
            lines = raw.decode("utf-8", errors="replace").splitlines()
    return data if data is not None and rng.random() < 0.5 else "\n".join(lines).encode() + b"\n"


def make_case(index: int, folder: Path) -> tuple[str, list[str]]:
    """(description, argv) of case ``index``; its mutated file is written into ``folder``."""
    rng = random.Random(SEED + index)
    kind = rng.choice(["chip", "chip", "workload", "workload", "graph", "graph", "set", "listing"])
    if kind == "listing":
        return "listing", rng.choice([["workloads"], ["workloads", "--json"], ["chips"], ["schedulers"]])
    if kind == "set":
        key = rng.choice(
            [
                "layers",
                "d_model",
                "heads",
                "seq_len",
                "batch",
                "mlp_ratio",
                "d_ff",
                "vocab",
                "embeddings",
                "linear_heads",
                "window",
                "chunk",
                "variant",
                "mode",
                "dtype",
                "granularity",
                "tile_m",
                "tile_n",
                "batch_split",
                "run.batch",
                "model.x",
                "chip.clock_ghz",
                "query_groups",
                "experts_used",
            ]
        )
        value = rng.choice(
            VALUES + ["training", "tile", "hybrid", "per_query_head", "2**63", "", "[" * 3000, "x" * 5000]
        )
        return f"--set {key}={value}", [
            "run",
            "--chip",
            "h100",
            "--workload",
            "gpt2-small",
            "--set",
            "layers=1",
            "--set",
            f"{key}={value}",
        ]
    if kind == "chip":
        name = rng.choice(sorted(CHIPS))
        path = folder / f"{name}.toml"
        path.write_bytes(mutate(CHIPS[name], rng))
        graph = folder / "tiny.toml"
        graph.write_text(TINY_GRAPH)
        argv = rng.choice(
            [
                ["chips", "show", str(path)],
                ["chips", "show", str(path), "--json"],
                ["run", "--chip", str(path), "--graph", str(graph)],
                ["run", "--chip", str(path), "--graph", str(graph), "--json"],
                ["compare", "--chip", str(path), "--graph", str(graph), "--schedulers", "naive,heft"],
                ["compile", "--chip", str(path), "--graph", str(graph)],
            ]
        )
        return f"chip {name}", argv
    if kind == "workload":
        name = rng.choice(sorted(WORKLOADS))
        path = folder / f"{name}.toml"
        path.write_bytes(mutate(WORKLOADS[name], rng))
        chip = rng.choice(["h100", "v100"])  # one kernel per op: a mutated size cannot multiply the tasks
        argv = rng.choice(
            [
                ["run", "--chip", chip, "--workload", str(path)],
                ["compare", "--chip", chip, "--workload", str(path), "--schedulers", "naive"],
                ["compile", "--chip", chip, "--workload", str(path), "--json"],
            ]
        )
        return f"workload {name}", argv
    name = rng.choice(sorted(GRAPHS))
    path = folder / f"{name}.toml"
    path.write_bytes(mutate(GRAPHS[name], rng))
    argv = rng.choice(
        [
            ["run", "--chip", "h100", "--graph", str(path)],
            ["run", "--chip", "gaudi2", "--graph", str(path)]
            if name == "tiny"
            else ["compile", "--chip", "v100", "--graph", str(path)],
            ["compare", "--chip", "h100", "--graph", str(path), "--schedulers", "naive,balanced"],
        ]
    )
    return f"graph {name}", argv


def check_case(index, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("accelsim.limits.MAX_TASKS", TASK_LIMIT)
    what, argv = make_case(index, tmp_path)
    try:
        with deadline(SECONDS):
            code = main(argv)
    except BaseException as exc:  # noqa: BLE001 - anything escaping the CLI is the failure looked for
        pytest.fail(f"case {index} ({what}): {type(exc).__name__}: {exc}\n  argv: {argv}")
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if not line.startswith("accelsim: warning: ")]
    if code == 0:
        assert not lines, f"case {index} ({what}): exit 0 with stderr {err!r}"
        return
    assert code == 2, f"case {index} ({what}): exit {code}; stderr {err!r}; argv {argv}"
    assert len(err.splitlines()) == 1 and err.startswith("accelsim: error: "), (
        f"case {index} ({what}): stderr is not one error line: {err!r}"
    )
    files = [a for a in argv if a.startswith(str(tmp_path))]
    if files and not what.startswith("graph"):  # (a graph's error may name the chip it was compiled for)
        assert any(f in err for f in files), f"case {index} ({what}): the error does not name the file: {err!r}"


@pytest.mark.parametrize("index", range(FAST), ids=lambda i: f"case_{i}")
def test_fuzz(index, tmp_path, capsys, monkeypatch):
    check_case(index, tmp_path, capsys, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(FAST, FAST + SLOW), ids=lambda i: f"case_{i}")
def test_fuzz_more(index, tmp_path, capsys, monkeypatch):
    check_case(index, tmp_path, capsys, monkeypatch)
