"""The accelsim command: tables, JSON, traces, and one-line errors with exit status 2."""

import json
from pathlib import Path

import pytest

from accelsim.cli import main

EXAMPLE = str(Path(__file__).parent.parent / "examples" / "attention_head.toml")


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_chips_lists_every_shipped_profile_with_headline_figures(capsys):
    code, out, _ = run_cli(capsys, "chips")
    assert code == 0
    for name in ("gaudi1", "gaudi2", "gaudi3"):
        assert name in out
    assert "1835" in out and "432.5" in out


def test_chips_show_json(capsys):
    code, out, _ = run_cli(capsys, "chips", "show", "gaudi3", "--json")
    h = json.loads(out)
    assert code == 0 and h["peak_vector_tflops"]["bf16"] == pytest.approx(28.67, abs=0.01)


def test_run_prints_latency_and_a_per_engine_table(capsys):
    code, out, _ = run_cli(capsys, "run", "--chip", "gaudi1", "--graph", EXAMPLE)
    assert code == 0
    assert "latency" in out and "mme0" in out and "tpc7" in out and "longest idle" in out


def test_run_json_has_every_task_with_its_engine_and_cycles(capsys):
    code, out, _ = run_cli(capsys, "run", "--chip", "gaudi1", "--graph", EXAMPLE, "--json")
    data = json.loads(out)
    assert code == 0
    assert set(data["utilization"]) == {"matrix", "vector", "dma"}
    assert all(0 <= u <= 1 for u in data["utilization"].values())
    assert data["latency_us"] == pytest.approx(data["latency_cycles"] / 1800, rel=1e-3)
    tasks = {t["name"]: t for t in data["tasks"]}
    # gaudi1's compiler cut every op into parts (name#k), each waiting for the parts holding its rows.
    softmax = [t for name, t in tasks.items() if name.split("#")[0] == "softmax"]
    assert len(softmax) == 8 and all(t["engine"].startswith("tpc") for t in softmax)
    for t in softmax:
        assert t["deps"] and all(d.split("#")[0] == "scores" for d in t["deps"])
        assert t["start_cycle"] >= max(tasks[d]["end_cycle"] for d in t["deps"])
    context = [t for name, t in tasks.items() if name.split("#")[0] == "context"]
    assert context and all(d.split("#")[0] in ("softmax", "prefetch:context") for t in context for d in t["deps"])
    assert data["latency_cycles"] == max(t["end_cycle"] for t in data["tasks"])
    eng = data["engines"]["mme0"]
    assert eng["busy_cycles"] + eng["idle_cycles"] == data["latency_cycles"]


def test_run_writes_a_chrome_trace_with_one_row_per_engine(capsys, tmp_path):
    path = tmp_path / "trace.json"
    code, out, _ = run_cli(capsys, "run", "--chip", "gaudi2", "--graph", EXAMPLE, "--trace", str(path))
    assert out.endswith(f"\n\ntrace written to {path}\n")
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    rows = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert code == 0 and len(rows) == 2 + 24 + 8
    slices = [e for e in events if e["ph"] == "X"]
    # The compiler's parts (name#k) and its weight prefetches, of the graph's five tasks.
    bases = {e["name"].split("#")[0].removeprefix("prefetch:") for e in slices}
    assert bases == {"load_qkv", "scores", "softmax", "context", "store"}
    assert all({"op", "shape", "flops", "bytes"} <= set(e["args"]) for e in slices)
    assert any(e["ph"] == "C" and e["name"].startswith("HBM") for e in events)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["run", "--chip", "gaudi9", "--graph", EXAMPLE], "gaudi9: no such file"),
        (["run", "--chip", "gaudi1", "--graph", "missing.toml"], "missing.toml: file not found"),
        (["run", "--chip", "gaudi1", "--graph", EXAMPLE, "--scheduler", "nope"], "unknown scheduler 'nope'"),
        (["chips", "show"], "needs a chip name"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(capsys, argv, words):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and words in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_graph_with_a_cycle_is_reported(capsys, tmp_path):
    p = tmp_path / "g.toml"
    p.write_text(
        '[[tasks]]\nname="a"\nop="add"\nshape=[4]\ndeps=["b"]\n[[tasks]]\nname="b"\nop="add"\nshape=[4]\ndeps=["a"]\n'
    )
    code, _, err = run_cli(capsys, "run", "--chip", "gaudi1", "--graph", str(p))
    assert code == 2 and "cycle" in err and str(p) in err


@pytest.mark.parametrize(
    "body, words",
    [
        ('[[tasks]]\nname="a"\nop="add"\nshape=[4]\ndeps=["zz"]\n', "depends on 'zz'"),
        ('[[tasks]]\nname="a"\nop="add"\nshape=[4]\n[[tasks]]\nname="a"\nop="add"\nshape=[4]\n', "duplicate task name"),
        ('[[tasks]]\nname="a"\nop="addd"\nshape=[4]\n', "unknown op 'addd'"),
        ('[[tasks]]\nname="a"\nop="gemm"\nshape=[4, 4]\n', "takes a shape (M, K, N)"),
        ('[[tasks]]\nname="a"\nop="add"\nshape=[0]\n', "greater than 0"),
        ('[[tasks]]\nname="a"\nop="add"\nshape=[4]\nengines=["tensor"]\n', "unknown engine kind 'tensor'"),
        ('[[tasks]]\nname="a"\nop="add"\nshap=[4]\n', "unknown key 'shap'"),
        ("tasks = []\n", "at least one task"),
    ],
)
def test_bad_graph_files(capsys, tmp_path, body, words):
    p = tmp_path / "g.toml"
    p.write_text(body)
    code, _, err = run_cli(capsys, "run", "--chip", "gaudi1", "--graph", str(p))
    assert code == 2 and words in err and str(p) in err, err


def test_workloads_json_lists_every_preset_with_its_size(capsys):
    code, out, _ = run_cli(capsys, "workloads", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and {"gpt2-small", "llama-7b-like", "vit-b16", "gformer-gpt", "gformer-vit"} <= set(rows)
    for r in rows.values():
        assert {"name", "layers", "d_model", "heads", "seq_len", "batch", "attention", "mode", "flops", "tasks"} <= set(
            r
        )
        assert r["flops"] > 0 and r["tasks"] > 0
    assert rows["gformer-gpt"]["attention"] == "hybrid" and rows["gformer-gpt"]["mode"] == "training"


def test_run_a_workload_with_overrides(capsys):
    code, out, _ = run_cli(
        capsys,
        "run",
        "--chip",
        "gaudi2",
        "--workload",
        "gpt2-small",
        "--set",
        "layers=1",
        "--set",
        "granularity=op",
        "--set",
        "seq_len=512",
        "--set",
        "batch=2",
        "--json",
    )
    data = json.loads(out)
    assert code == 0 and data["graph"] == "gpt2-small"
    names = {t["name"].split("#")[0] for t in data["tasks"]}
    assert "L0.qkv" in names and not any(name.startswith("L1.") for name in names)


def test_set_is_refused_with_a_hand_written_graph(capsys):
    code, _, err = run_cli(capsys, "run", "--chip", "gaudi1", "--graph", EXAMPLE, "--set", "layers=1")
    assert code == 2 and "--set" in err


def test_compare_json_rows_and_table(capsys):
    code, out, _ = run_cli(capsys, "compare", "--chip", "gaudi1", "--graph", EXAMPLE, "--json")
    data = json.loads(out)
    assert code == 0 and data["speedup_over"] == "naive"
    rows = {r["scheduler"]: r for r in data["results"]}
    assert list(rows) == ["naive", "balanced", "heft"]
    keys = ["scheduler", "latency_cycles", "latency_us", "speedup", "utilization", "idle_cycles", "gap_to_bound"]
    assert list(rows["naive"]) == keys and list(rows["heft"]) == keys  # no split note: no "split" key
    assert list(rows["balanced"]) == [*keys, "split"] and rows["naive"]["speedup"] == 1.0
    code, out, _ = run_cli(capsys, "compare", "--chip", "gaudi1", "--graph", EXAMPLE)
    assert code == 0 and out.splitlines()[2].split()[:4] == ["scheduler", "cycles", "ms", "speedup"]
    assert "dual-capable tasks on vector cores" in out


def test_run_set_takes_the_workload_prefix_a_sweep_uses_and_refuses_chip_keys(capsys):
    argv = ["run", "--chip", "gaudi2", "--workload", "gpt2-small", "--set", "layers=1", "--set", "granularity=op"]
    code, plain, _ = run_cli(capsys, *argv, "--set", "seq_len=512", "--json")
    code2, prefixed, _ = run_cli(capsys, *argv, "--set", "workload.seq_len=512", "--json")
    assert code == code2 == 0 and json.loads(plain)["latency_cycles"] == json.loads(prefixed)["latency_cycles"]
    code, _, err = run_cli(capsys, *argv, "--set", "chip.engines.tpc.count=8")
    assert code == 2 and err.count("\n") == 1 and "sweep --set chip.KEY" in err
