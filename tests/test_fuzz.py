"""Fuzzing the command line with mutated input files: whatever the file holds, the CLI ends with exit 0, or with
exit 2 and exactly one stderr line ``accelsim: error: ...`` naming the file; never an exception, never a hang.

Cases are generated from a fixed seed (case ``i`` uses ``random.Random(SEED + i)``), so a failure names a case that
reproduces: ``pytest tests/test_fuzz.py -k 'case_17]'``. Each case mutates a shipped chip profile, a workload, a
small task graph, a system of many cards or a model's config.json (keys deleted or duplicated, values replaced with
huge, negative, non-finite, wrong-typed or deeply nested ones, binary garbage, truncation, a byte order mark), or
draws the options of ``generate`` (--batch, the token counts, --parallel tp=N) or a ``--parallel`` layout (run,
compare), and runs one command in-process (chips, systems, models, run, compare, compile, generate), under a 10 s
alarm. The default run has FAST cases; the slow marker adds SLOW more.

The runs stay small (one layer; a graph of 64-wide shapes; chips whose compilers split are only given that graph;
and a task limit of TASK_LIMIT instead of the machine's 5 million, so that a mutated size is refused by the same
check, sooner), so that a case that is accepted finishes in well under a second: the fuzz looks for crashes and
hangs in input handling; the machine limits themselves are tests/test_edges_inputs.py's.
"""

import json
import random
import re
from pathlib import Path

import pytest

from accelsim.cli import main

from conftest import deadline

ROOT = Path(__file__).parent.parent
SEED = 20261130
FAST = 150
SLOW = 1500
TRAIN_FAST, TRAIN_SLOW = 30, 200  # accelsim train's own cases
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


MODELS = {
    name: (ROOT / "models" / f"{name}.json").read_text()
    for name in ("gpt2-xl", "meta-llama--Llama-3.1-8B", "mistralai--Mixtral-8x7B-v0.1", "google--gemma-2-9b")
}
SYSTEMS = {name: (ROOT / "systems" / f"{name}.toml").read_text() for name in ("hls-gaudi2", "dgx-h100")}

#: Values a mutated config.json key is given (JSON text).
JSON_VALUES = [
    "-1",
    "0",
    "1",
    "2",
    "3",
    "7",
    "0.5",
    "1e300",
    "1e400",
    "NaN",
    "Infinity",
    str(2**31 - 1),
    str(2**31),
    str(2**62),
    str(2**63),
    "9" * 40,
    "1000000000",
    "100000",
    "true",
    "false",
    "null",
    '"x"',
    '""',
    '"llama"',
    '"mamba"',
    '"gelu"',
    '"full_attention"',
    "[]",
    "[1, 2]",
    '["sliding_attention", "full_attention"]',
    "{}",
    '{"a": 1}',
    "[" * 40 + "]" * 40,
    "[" * 3000 + "]" * 3000,
]
#: The config keys the reader looks at, so that a mutation often lands on one.
CONFIG_KEYS = [
    "model_type",
    "hidden_size",
    "n_embd",
    "num_hidden_layers",
    "n_layer",
    "num_attention_heads",
    "n_head",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "n_inner",
    "vocab_size",
    "max_position_embeddings",
    "n_positions",
    "num_local_experts",
    "num_experts_per_tok",
    "sliding_window",
    "sliding_window_pattern",
    "layer_types",
    "hidden_act",
    "activation_function",
    "tie_word_embeddings",
    "rmsnorm",
    "parallel_attn",
    "text_config",
    "config",
    "expansion_ratio",
]


def mutate_json(text: str, rng: random.Random) -> bytes:
    """One to three mutations of a config.json (or catalog entry): keys set to odd values, deleted, or the text
    cut, nested or salted with bytes."""
    lines = text
    for _ in range(rng.randint(1, 3)):
        what = rng.choice(["value", "value", "value", "value", "delete", "garbage", "truncate", "nest", "bom"])
        if what in ("value", "delete"):
            key = rng.choice(CONFIG_KEYS + re.findall(r'"([A-Za-z_]+)":', lines)[:60])
            pattern = re.compile(rf'"{key}":\s*(\[[^\]]*\]|\{{[^}}]*\}}|"[^"]*"|[^,}}\n]+)')
            found = pattern.search(lines)
            if what == "delete" and found:
                lines = lines[: found.start()] + f'"deleted_{key}": 0' + lines[found.end() :]
            elif found:
                lines = lines[: found.start()] + f'"{key}": {rng.choice(JSON_VALUES)}' + lines[found.end() :]
            else:  # a key the config lacks: added to its innermost object that holds sizes
                at = lines.rfind("}")
                lines = lines[:at] + f', "{key}": {rng.choice(JSON_VALUES)}' + lines[at:]
        elif what == "nest":
            lines = "[" * rng.choice([40, 3000, 20000]) + lines
        else:
            raw = lines.encode()
            at = rng.randrange(len(raw) + 1)
            if what == "garbage":
                raw = raw[:at] + rng.choice(GARBAGE) + raw[at:]
            elif what == "truncate":
                raw = raw[:at]
            else:
                raw = b"\xef\xbb\xbf" + raw
            lines = raw.decode("utf-8", errors="replace")
    return lines.encode()


#: --parallel texts are built of these items, and --batch and the token counts are drawn from NUMBERS.
LAYOUT_ITEMS = ["tp=8", "tp=4", "tp=2", "tp=1", "pp=2", "pp=1", "dp=2", "dp=1", "tp=8", "ep=2", "tp", "=2", ""]
NUMBERS = [
    "1",
    "2",
    "8",
    "16",
    "0",
    "-1",
    "+8",
    "1_000",
    "\u0663",
    "1e9",
    "1.5",
    "1024",
    "1025",
    str(2**31 - 1),
    str(2**31),
    "9" * 40,
    "",
    " ",
    "x",
    "0x10",
]


def make_case(index: int, folder: Path) -> tuple[str, list[str]]:
    """(description, argv) of case ``index``; its mutated file is written into ``folder``."""
    rng = random.Random(SEED + index)
    kind = rng.choice(
        ["chip", "chip", "workload", "workload", "graph", "graph", "set", "listing"]
        + ["model", "model", "system", "generate", "parallel"]
    )
    if kind == "model":
        name = rng.choice(sorted(MODELS))
        path = folder / "config.json"
        path.write_bytes(mutate_json(MODELS[name], rng))
        chip = rng.choice(["h100", "gaudi2"])
        tokens = ["--batch", "1", "--input-tokens", "8", "--output-tokens", rng.choice(["1", "3"])]
        argv = rng.choice(
            [
                ["models", "show", str(path)],
                ["models", "show", str(path), "--json"],
                ["run", "--chip", "h100", "--model", str(path), "--set", "layers=1"],
                ["compile", "--chip", chip, "--model", str(path), "--set", "layers=1"],
                ["generate", "--chip", chip, "--model", str(path), *tokens],
                ["generate", "--chip", chip, "--model", str(path), *tokens, "--json"],
            ]
        )
        return f"model {name}", argv
    if kind == "system":
        name = rng.choice(sorted(SYSTEMS))
        path = folder / f"{name}.toml"
        path.write_bytes(mutate(SYSTEMS[name], rng))
        # 32 heads (any shipped node's cards divide them), two layers (two pipeline stages), training (replicas)
        workload = ["--workload", "llama-7b-like", "--set", "layers=2", "--set", "seq_len=256"]
        workload += ["--set", "mode=training"]
        argv = rng.choice(
            [
                ["systems", "show", str(path)],
                ["systems", "show", str(path), "--json"],
                ["run", "--system", str(path), *workload],
                ["run", "--system", str(path), "--parallel", rng.choice(["tp=2", "tp=4,dp=2", "tp=2,pp=2"]), *workload],
                ["compare", "--system", str(path), "--scheduler", "naive", *workload],
            ]
        )
        return f"system {name}", argv
    if kind == "generate":
        option = rng.choice(["--batch", "--input-tokens", "--output-tokens", "--parallel"])
        values = {"--batch": "2", "--input-tokens": "16", "--output-tokens": "3", "--parallel": "tp=1"}
        values[option] = rng.choice(NUMBERS) if option != "--parallel" else f"tp={rng.choice(NUMBERS)}"
        argv = ["generate", "--chip", rng.choice(["gaudi2", "h100"]), "--model", "gpt2-xl"]
        for k, v in values.items():
            argv += [k, v]
        return f"generate {option}={values[option]!r}", argv + rng.choice([[], ["--json"], ["--precision", "fp8"]])
    if kind == "parallel":
        items = [rng.choice(LAYOUT_ITEMS) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.4:  # a degree of a drawn number
            items[0] = f"{rng.choice(['tp', 'pp', 'dp'])}={rng.choice(NUMBERS)}"
        layout = ",".join(items)
        if rng.random() < 0.3:  # a layout of the node's eight cards, which runs
            layout = rng.choice(["tp=8", "tp=4,dp=2", "dp=2,tp=2,pp=2", " tp = 8 , pp = 1 "])
        workload = ["--workload", "llama-7b-like", "--set", "layers=2", "--set", "seq_len=128"]
        workload += ["--set", "mode=training"]
        argv = rng.choice(
            [
                ["run", "--system", "hls-gaudi2", *workload],
                ["compare", "--system", "dgx-h100", "--scheduler", "naive,heft", *workload],
                ["compare", "--system", "hls-gaudi2", "--scheduler", "naive", *workload],
            ]
        )
        return f"--parallel {layout!r}", argv + ["--parallel", layout] + rng.choice([[], ["--json"]])
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
                ["compare", "--chip", str(path), "--graph", str(graph), "--scheduler", "naive,heft"],
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
                ["compare", "--chip", chip, "--workload", str(path), "--scheduler", "naive"],
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
            ["compare", "--chip", "h100", "--graph", str(path), "--scheduler", "naive,balanced"],
        ]
    )
    return f"graph {name}", argv


#: Values argparse accepts (its own refusals print usage: issue 21 makes them one line too), wrong or not for the
#: run: what accelsim train itself must refuse in one line.
TRAIN_FLAGS = {
    "--global-batch": ["1", "2", "4", "6", "7", "1000", str(10**8)],
    "--micro-batch": ["1", "2", "3", "5", str(10**8)],
    "--seq-len": ["16", "32", "7", "100000000"],
    "--zero": ["0", "1", "2", "3"],
    "--precision": ["bf16", "fp8", "fp16", "fp32"],
    "--recompute": ["none", "selective", "full"],
    "--parallel": ["tp=1", "tp=2", "dp=2", "tp=2,dp=2", "pp=2", "tp=1,pp=1,dp=1", "tp=0", "tp=3", "dp=9", "qq=1", ","],
    "--cards": ["1", "2", "4", "3", "9", "12"],
    "--top": ["1", "3"],
}


def make_train_case(index: int, folder: Path) -> tuple[str, list[str]]:
    """``accelsim train`` (and ``--search`` over a few cards) on a mutated one-layer workload, or with random
    option values."""
    rng = random.Random(SEED * 7 + index)
    name = "gpt2-small"
    path = folder / f"{name}.toml"
    text = WORKLOADS[name].replace("heads = 12", "heads = 4").replace("d_model = 768", "d_model = 64")
    path.write_bytes(mutate(text, rng) if rng.random() < 0.5 else text.encode())
    argv = ["train", "--system", rng.choice(["hls-gaudi2", "dgx-a100"]), "--workload", str(path)]
    flags = {"--global-batch": "4", "--seq-len": "32"}
    if rng.random() < 0.3:
        flags.update({"--cards": rng.choice(["2", "4"]), "--micro-batch": "2"})
        argv.append("--search")
    else:
        flags["--parallel"] = rng.choice(["tp=2,dp=2", "dp=2", "tp=1", "pp=1,dp=4"])
    for _ in range(rng.randint(0, 3)):
        flag = rng.choice(sorted(TRAIN_FLAGS))
        flags[flag] = rng.choice(TRAIN_FLAGS[flag])
    for flag, value in flags.items():
        argv += [flag, value] if not value.startswith("-") else [f"{flag}={value}"]
    if rng.random() < 0.3:
        argv.append("--sequence-parallel")
    if rng.random() < 0.3:
        argv.append("--json")
    return "train", argv


TRAIN_RECORD = {
    "kind": "train_step",
    "system": "hls-gaudi2",
    "cards": 4,
    "model": {"family": "gpt", "layers": 1, "d_model": 64, "heads": 4, "seq_len": 32, "vocab": 128},
    "global_batch": 8,
    "micro_batch": 2,
    "tp": 2,
    "pp": 1,
    "dp": 2,
    "zero": 1,
    "sequence_parallel": True,
    "recompute": "selective",
    "dtype": "bf16",
    "ms": 1.5,
}
RECORD_VALUES = [
    0,
    -1,
    1,
    2,
    3,
    4,
    7,
    2**31,
    2**63,
    1e300,
    -0.0,
    None,
    True,
    "x",
    "",
    [],
    {},
    "fp8",
    "full",
    "dgx-a100",
]


def make_train_record_case(index: int, folder: Path) -> tuple[str, list[str]]:
    """``accelsim validate`` (with or without --chip) on a mutated file of train_step records."""
    import json

    rng = random.Random(SEED * 11 + index)
    rows = []
    for _ in range(rng.randint(1, 2)):
        record = json.loads(json.dumps(TRAIN_RECORD))
        for _ in range(rng.randint(0, 3)):
            key = rng.choice([*sorted(record), "model", "batch", "extra"])
            what = rng.random()
            if what < 0.15:
                record.pop(key, None)
            elif key == "model" and what < 0.5 and isinstance(record.get("model"), dict):
                record["model"][rng.choice(sorted(record["model"]))] = rng.choice(RECORD_VALUES)
            else:
                record[key] = rng.choice(RECORD_VALUES)
        rows.append(json.dumps(record, allow_nan=True))
    raw = "\n".join(rows).encode()
    if rng.random() < 0.2:
        at = rng.randrange(len(raw) + 1)
        raw = raw[:at] + rng.choice(GARBAGE) + raw[at:]
    path = folder / "steps.jsonl"
    path.write_bytes(raw)
    argv = ["validate", "--measurements", str(path)]
    if rng.random() < 0.3:
        argv += ["--chip", rng.choice(["gaudi2", "a100"])]
    return "records (train_step)", argv


def check_case(index, tmp_path, capsys, monkeypatch, make=make_case):
    monkeypatch.setattr("accelsim.limits.MAX_TASKS", TASK_LIMIT)
    what, argv = make(index, tmp_path)
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
    if files and not what.startswith(("graph", "train", "options")):  # (a graph's error may name the chip it ran
        # on; train's errors name the option they are about, not the workload file unchanged; an options case's
        # file is an output folder, not an input)
        # A mutated system can make --parallel's layout the thing at fault (tp=4 on a node of 3 cards).
        named = files + (["--parallel"] if "--parallel" in argv else [])
        assert any(f in err for f in named), f"case {index} ({what}): the error does not name the file: {err!r}"


@pytest.mark.parametrize("index", range(FAST), ids=lambda i: f"case_{i}")
def test_fuzz(index, tmp_path, capsys, monkeypatch):
    check_case(index, tmp_path, capsys, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(FAST, FAST + SLOW), ids=lambda i: f"case_{i}")
def test_fuzz_more(index, tmp_path, capsys, monkeypatch):
    check_case(index, tmp_path, capsys, monkeypatch)


#: Hugging Face configs (the catalog's entries: id, source, note and the config's keys), mutated key by key as JSON.
MODELS = {
    name: (ROOT / "models" / f"{name}.json").read_text()
    for name in ("google-bert--bert-base-uncased", "FacebookAI--roberta-base")
}
JSON_VALUES = [
    -1,
    0,
    1,
    2,
    0.5,
    -0.0,
    1e-300,
    1e300,
    2**63,
    "",
    "x",
    None,
    True,
    [],
    {},
    [[[1]]],
    "relative_key",
    "tanh",
]
ADDED_KEYS = ["position_embedding_type", "type_vocab_size", "tie_word_embeddings", "head_dim", "num_key_value_heads"]


def mutate_model(text: str, rng: random.Random) -> bytes:
    """A catalog entry with one to three of its config's keys replaced, deleted or added, then perhaps garbage,
    truncation, a byte order mark or deep nesting in the raw text."""
    entry = json.loads(text)
    config = entry["config"]
    for _ in range(rng.randint(1, 3)):
        what = rng.choice(["value", "value", "value", "delete", "add"])
        if what == "value":
            config[rng.choice(sorted(config))] = rng.choice(JSON_VALUES)
        elif what == "delete" and config:
            del config[rng.choice(sorted(config))]
        else:
            config[rng.choice(ADDED_KEYS)] = rng.choice(JSON_VALUES)
    raw = json.dumps(entry).encode()
    what = rng.choice(["none", "none", "none", "garbage", "truncate", "bom", "nest"])
    at = rng.randrange(len(raw) + 1)
    if what == "garbage":
        raw = raw[:at] + rng.choice(GARBAGE) + raw[at:]
    elif what == "truncate":
        raw = raw[:at]
    elif what == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif what == "nest":
        depth = rng.choice([31, 200, 3000])
        raw = raw.replace(b'"config": {', b'"config": {"x": ' + b"[" * depth + b"]" * depth + b", ", 1)
    return raw


def make_model_case(index: int, folder: Path) -> tuple[str, list[str]]:
    """(description, argv) of model case ``index``: a mutated encoder config run, trained, compiled or shown."""
    rng = random.Random(SEED + 7_000_000 + index)
    name = rng.choice(sorted(MODELS))
    path = folder / f"{name}.json"
    path.write_bytes(mutate_model(MODELS[name], rng))
    model = ["--model", str(path), "--set", "layers=1"]
    argv = rng.choice(
        [
            ["run", "--chip", "h100", *model],
            ["run", "--chip", "h100", *model, "--set", "mode=training"],
            ["compile", "--chip", "v100", *model, "--json"],
            ["models", "show", str(path)],
        ]
    )
    return f"model {name}", argv


@pytest.mark.parametrize("index", range(FAST // 4), ids=lambda i: f"model_case_{i}")
def test_fuzz_model_configs(index, tmp_path, capsys, monkeypatch):
    check_case(index, tmp_path, capsys, monkeypatch, make=make_model_case)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(FAST // 4, FAST // 4 + SLOW // 10), ids=lambda i: f"model_case_{i}")
def test_fuzz_model_configs_more(index, tmp_path, capsys, monkeypatch):
    check_case(index, tmp_path, capsys, monkeypatch, make=make_model_case)


# ---- measurement files of the kernel kind (accelsim.kernel_records): validate on mutated records ----------------

KERNEL_LINES = [
    json.loads(line)
    for line in (ROOT / "tests" / "data" / "gaudi_kernels.jsonl").read_text().splitlines()
    if '"all_reduce"' in line or '"M": 4096' in line
][:2]
KERNEL_VALUES = [
    -1,
    0,
    1,
    0.5,
    1e300,
    2**63,
    2**64,
    10**40,
    True,
    None,
    "",
    "x",
    "bf16",
    "fp8 x",
    "all_gather",
    [],
    {},
    [1],
]


def mutate_record(rng: random.Random) -> tuple[str, bytes]:
    """The chip a small kernel or collective record ran on, and the record after up to two mutations: a value
    replaced (at the top or under ``params``), a key deleted or added, bytes of garbage, a truncation."""
    rec = json.loads(json.dumps(rng.choice(KERNEL_LINES)))
    chip = rec["chip"]
    if "M" in rec["params"]:
        rec["params"].update(M=256, K=256, N=256)  # small, so that an accepted case is fast
    raw: bytes | None = None
    for _ in range(rng.randint(0, 2)):
        target = rec["params"] if rng.random() < 0.6 and isinstance(rec.get("params"), dict) else rec
        what = rng.choice(["value", "value", "value", "delete", "add", "garbage", "truncate"])
        if what == "value" and target:
            target[rng.choice(sorted(target))] = rng.choice(KERNEL_VALUES)
        elif what == "delete" and target:
            del target[rng.choice(sorted(target))]
        elif what == "add":
            target[rng.choice(["extra", "M", "ranks", "nodes", "bytes_per_rank_input", "params"])] = rng.choice(
                KERNEL_VALUES
            )
        elif what in ("garbage", "truncate"):
            text = json.dumps(rec).encode()
            at = rng.randrange(len(text) + 1)
            raw = text[:at] + (rng.choice(GARBAGE) if what == "garbage" else b"")
    return chip, (raw if raw is not None else json.dumps(rec).encode()) + b"\n"


@pytest.mark.parametrize("index", range(40), ids=lambda i: f"kernel_case_{i}")
def test_fuzz_kernel_records(index, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("accelsim.limits.MAX_TASKS", TASK_LIMIT)
    rng = random.Random(SEED + 10**6 + index)
    path = tmp_path / "kernels.jsonl"
    chip, data = mutate_record(rng)
    path.write_bytes(data)
    argv = ["validate", "--chip", chip if rng.random() < 0.8 else "gaudi3", "--measurements", str(path)]
    argv += rng.choice([[], ["--json"]])
    try:
        with deadline(SECONDS):
            code = main(argv)
    except BaseException as exc:  # noqa: BLE001 - anything escaping the CLI is the failure looked for
        pytest.fail(f"kernel case {index}: {type(exc).__name__}: {exc}\n  file: {path.read_bytes()[:300]!r}")
    out, err = capsys.readouterr()
    if code == 0:
        assert not err
        return
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"accelsim: error: {path}"), err


@pytest.mark.parametrize("index", range(TRAIN_FAST), ids=lambda i: f"train_{i}")
def test_fuzz_train(index, tmp_path, capsys, monkeypatch):
    check_case(index, tmp_path, capsys, monkeypatch, make_train_case)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(TRAIN_FAST, TRAIN_FAST + TRAIN_SLOW), ids=lambda i: f"train_{i}")
def test_fuzz_train_more(index, tmp_path, capsys, monkeypatch):
    check_case(index, tmp_path, capsys, monkeypatch, make_train_case)


@pytest.mark.parametrize("index", range(TRAIN_FAST), ids=lambda i: f"train_step_{i}")
def test_fuzz_train_step_records(index, tmp_path, capsys, monkeypatch):
    check_case(index, tmp_path, capsys, monkeypatch, make_train_record_case)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(TRAIN_FAST, TRAIN_FAST + TRAIN_SLOW), ids=lambda i: f"train_step_{i}")
def test_fuzz_train_step_records_more(index, tmp_path, capsys, monkeypatch):
    check_case(index, tmp_path, capsys, monkeypatch, make_train_record_case)


#: Values drawn for any option by the command-line fuzz: names that exist, names that do not, numbers (NUMBERS),
#: layouts, comma lists, and text that looks like a flag.
OPTION_VALUES = [
    "gaudi2",
    "h100",
    "hls-gaudi2",
    "gpt2-small",
    "gpt2-xl",
    "naive",
    "naive,heft",
    "naive,,heft",
    "nope",
    "tp=2",
    "tp=2,dp=2",
    "fp8",
    "bf16",
    "fp16",
    "layers=1",
    "workload.layers=1",
    "chip.clock_ghz=1,2",
    "show",
    "-",
    "--",
    "\x00",
    *NUMBERS,
]
#: Commands the fuzz runs whole (the rest, which plot or sweep, only parse: their drawn argv is cut at --out).
LIGHT_INPUTS = ["--set", "layers=1", "--set", "seq_len=64"]


def make_option_case(index: int, folder: Path) -> tuple[str, list[str]]:
    """A command and options drawn from accelsim.options' description of it (retired spellings, prefixes of
    flags, flags of other commands, and drawn values included), after a base that runs quickly."""
    from accelsim.options import COMMANDS, OPTIONS

    rng = random.Random(SEED * 11 + index)
    command = rng.choice(["run", "compare", "compile", "generate", "train", "chips", "models", "schedulers"])
    base = {
        "run": ["--chip", "gaudi2", "--workload", "gpt2-small", *LIGHT_INPUTS],
        "compare": ["--chip", "h100", "--workload", "gpt2-small", *LIGHT_INPUTS],
        "compile": ["--chip", "gaudi2", "--workload", "gpt2-small", *LIGHT_INPUTS],
        "generate": ["--chip", "gaudi2", "--model", "gpt2-xl", "--batch", "1", "--input-tokens", "8"]
        + ["--output-tokens", "2"],
        "train": ["--system", "hls-gaudi2", "--workload", "gpt2-small", "--set", "layers=1", "--global-batch", "2"]
        + ["--seq-len", "32", "--parallel", "tp=1"],
        "chips": [],
        "models": [],
        "schedulers": [],
    }[command]
    own = [u.option for u in COMMANDS[command].uses if hasattr(u, "option")]
    own += [o for u in COMMANDS[command].uses for o in getattr(u, "options", ())]
    flags = [f for f in own if f.startswith("--")] + list(COMMANDS[command].retired)
    others = [f for f in OPTIONS if f.startswith("--") and f not in flags]
    argv = [command, *base]
    for _ in range(rng.randint(1, 3)):
        pick = rng.random()
        flag = rng.choice(flags) if pick < 0.7 or not others else rng.choice(others)
        if pick > 0.9:
            flag = flag[: rng.randint(3, len(flag) - 1)]  # a prefix: never taken for the flag
        if flag in ("--out", "--plot", "--trace"):
            argv += [flag, str(folder / "out")]
        elif OPTIONS.get(flag) is not None and OPTIONS[flag].action == "store_true":
            argv.append(flag)
        else:
            argv += rng.choice([[flag, rng.choice(OPTION_VALUES)], [f"{flag}={rng.choice(OPTION_VALUES)}"]])
    if "--explicit" in argv:  # every card of a system in one clock: slow by design, and checked elsewhere
        argv.remove("--explicit")
    return "options", argv


@pytest.mark.parametrize("index", range(TRAIN_FAST), ids=lambda i: f"options_{i}")
def test_fuzz_options(index, tmp_path, capsys, monkeypatch):
    check_case(index, tmp_path, capsys, monkeypatch, make_option_case)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(TRAIN_FAST, TRAIN_FAST + TRAIN_SLOW), ids=lambda i: f"options_{i}")
def test_fuzz_options_more(index, tmp_path, capsys, monkeypatch):
    check_case(index, tmp_path, capsys, monkeypatch, make_option_case)
