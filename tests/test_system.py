"""Systems of many cards: the shipped systems load with their chips, their derived bandwidths are the hand
arithmetic of their datasheets, every kind of bad file is one line, and the CLI lists and shows them."""

import json

import pytest

from accelsim import AccelsimError, load_chip
from accelsim.cli import main
from accelsim.resources import shipped_dir, shipped_names
from accelsim.system import load_system, system_from_dict

SHIPPED = ["dgx-a100", "dgx-h100", "dgx-h200", "dgx2-v100", "hls-1", "hls-gaudi2", "hls-gaudi3"]


def test_every_shipped_system_loads_with_its_chip():
    assert shipped_names("systems") == SHIPPED
    for name in SHIPPED:
        system = load_system(name)
        assert system.name == name
        assert system.chip.name == system.spec.chip
        assert system.total_cards == system.spec.cards_per_node * system.spec.nodes
        assert system.scale_up_gbps_per_card > 0 and system.scale_out_gbps_per_card > 0
        assert system.bisection_gbps == system.node_bisection_gbps  # every shipped system is one node


def test_an_hls_gaudi3_is_eight_cards_wired_all_to_all():
    s = load_system("hls-gaudi3")
    # 8 cards; 3 links of 200 Gb/s = 25 GB/s per pair, 7 peers: 7 x 3 x 25 = 525 GB/s per card, as [HNC] says.
    assert s.total_cards == 8
    assert s.scale_up_gbps_per_card == 525.0
    # 3 scale-out ports x 25 GB/s = 75 GB/s per card, as [HNC] says.
    assert s.scale_out_gbps_per_card == 75.0
    # Cut 4 | 4: 4 x 4 = 16 pairs cross, each 3 x 25 = 75 GB/s: 1,200 GB/s.
    assert s.node_bisection_gbps == 1200.0


def test_a_dgx_h100_is_eight_cards_on_nvswitch():
    s = load_system("dgx-h100")
    # 18 NVLink4 links x 25 GB/s = 450 GB/s per direction per GPU (900 GB/s both ways).
    assert s.scale_up_gbps_per_card == 450.0
    # One NDR port of 400 Gb/s = 50 GB/s per GPU.
    assert s.scale_out_gbps_per_card == 50.0
    # A non-blocking switch: the 4 GPUs of one half each send 450 GB/s across: 1,800 GB/s.
    assert s.node_bisection_gbps == 1800.0


def test_a_dgx2_shares_one_nic_between_two_gpus():
    s = load_system("dgx2-v100")
    assert load_chip("v100").spec.memory.hbm_gb == 32  # the DGX-2's V100s are the 32 GB part
    assert s.total_cards == 16
    assert s.scale_up_gbps_per_card == 6 * 25.0
    assert s.scale_out_gbps_per_card == 0.5 * 12.5  # 8 EDR NICs of 100 Gb/s for 16 GPUs


def _dict(**over):
    d = {
        "name": "toy",
        "chip": "gaudi2",
        "cards_per_node": 4,
        "scale_up": {"topology": "ring", "link_gbps": 10.0, "links": 2, "latency_us": 1.0},
        "scale_out": {"ports_per_card": 1, "port_gbps": 5.0, "latency_us": 2.0},
    }
    d.update(over)
    return d


@pytest.mark.parametrize(
    "topology, n, per_card, bisection",
    [
        ("ring", 4, 2 * 20.0, 2 * 20.0),  # two neighbours of 2 x 10 GB/s; a cut crosses the ring twice
        ("ring", 2, 20.0, 20.0),  # a ring of two is one pair
        ("all-to-all", 5, 4 * 20.0, 2 * 3 * 20.0),  # 4 peers; cut 2 | 3: 6 pairs cross
        ("switch", 5, 20.0, 2 * 20.0),  # the smaller half's 2 cards each at its links' rate
        ("switch", 1, 20.0, 0.0),  # one card: nothing to cut
    ],
)
def test_derived_bandwidths_of_each_topology(topology, n, per_card, bisection):
    up = {"topology": topology, "link_gbps": 10.0, "links": 2, "latency_us": 1.0}
    s = system_from_dict(_dict(cards_per_node=n, scale_up=up))
    assert (s.scale_up_gbps_per_card, s.node_bisection_gbps) == (per_card, bisection)


def test_the_bisection_of_many_nodes_is_the_scale_out_of_half_the_nodes():
    s = system_from_dict(_dict(nodes=5))
    # 5 nodes: the smaller half is 2 nodes of 4 cards, each card sending 1 x 5 GB/s across.
    assert s.total_cards == 20 and s.bisection_gbps == 2 * 4 * 5.0


def test_a_system_file_may_name_a_chip_profile_next_to_it(tmp_path):
    (tmp_path / "mine.toml").write_text((shipped_dir("chips") / "gaudi1.toml").read_text())
    text = (shipped_dir("systems") / "hls-1.toml").read_text().replace('chip = "gaudi1"', 'chip = "mine.toml"')
    (tmp_path / "sys.toml").write_text(text)
    assert load_system(tmp_path / "sys.toml").chip.name == "gaudi1"


def _hls1():
    return (shipped_dir("systems") / "hls-1.toml").read_text()


@pytest.mark.parametrize(
    "edit, key, words",
    [
        (lambda s: s.replace("nodes = 1", "nodez = 1"), "nodez", "unknown key 'nodez'"),
        (lambda s: s.replace("links = 1 ", "linx = 1 "), "scale_up.linx", "allowed keys here: topology"),
        (
            lambda s: s.replace("ports_per_card = 3", "ports_per_kard = 3"),
            "scale_out.ports_per_kard",
            "allowed keys here: ports_per_card, port_gbps",
        ),
        (lambda s: s.replace("cards_per_node = 8", 'cards_per_node = "8"'), "cards_per_node", "valid integer"),
        (lambda s: s.replace("links = 1 ", "links = 1.5 "), "scale_up.links", "integer"),
        (lambda s: s.replace("cards_per_node = 8", "cards_per_node = 0"), "cards_per_node", "greater than 0"),
        (lambda s: s.replace("link_gbps = 12.5", "link_gbps = -1"), "scale_up.link_gbps", "at least 0.001"),
        (lambda s: s.replace("link_gbps = 12.5", "link_gbps = inf"), "scale_up.link_gbps", "finite"),
        (lambda s: s.replace("port_gbps = 12.5", "port_gbps = nan"), "scale_out.port_gbps", "finite"),
        (lambda s: s.replace("latency_us = 2.0", "latency_us = 1e9"), "scale_up.latency_us", "at most"),
        (lambda s: s.replace("nodes = 1", "nodes = 100000000"), "nodes", "at most 1,024"),
        (
            lambda s: s.replace("nodes = 1", "nodes = 200"),
            "nodes",
            "is 1,600 cards; a system may have at most 1,024",
        ),
        (
            lambda s: s.replace('topology = "all-to-all"', 'topology = "mesh"'),
            "scale_up.topology",
            "'all-to-all', 'switch' or 'ring'",
        ),
        (
            lambda s: s.replace('topology = "switch"', 'topology = "torus"'),
            "scale_out.topology",
            "'switch'",
        ),
        (
            lambda s: s.replace('chip = "gaudi1"', 'chip = "gaudi9"'),
            "chip",
            "unknown chip 'gaudi9'; allowed: a shipped chip (a100, ",
        ),
        (lambda s: s.replace('chip = "gaudi1"', "chip = 1"), "chip", "valid string"),
        (lambda s: s.replace('name = "hls-1"\n', ""), "name", "required key is missing"),
        (lambda s: s.split("[scale_out]")[0].replace("nodes = 1", "nodes = 2"), "scale_out", "needs a [scale_out]"),
    ],
)
def test_bad_systems_name_the_file_the_key_and_what_is_allowed(tmp_path, edit, key, words):
    path = tmp_path / "sys.toml"
    path.write_text(edit(_hls1()))
    message = str(pytest.raises(AccelsimError, load_system, path).value)
    assert message.startswith(f"{path}: {key}: ") and words in message, message
    assert "\n" not in message


def test_a_chip_that_does_not_load_is_named_with_its_own_error(tmp_path):
    (tmp_path / "broken.toml").write_text('name = "broken"\n')
    (tmp_path / "sys.toml").write_text(_hls1().replace('chip = "gaudi1"', 'chip = "broken.toml"'))
    message = str(pytest.raises(AccelsimError, load_system, tmp_path / "sys.toml").value)
    assert message.startswith(f"{tmp_path / 'sys.toml'}: chip: chip 'broken.toml' does not load: ")
    assert "required key is missing" in message and "\n" not in message


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_systems_lists_every_shipped_system(capsys):
    code, out, _ = run_cli(capsys, "systems")
    assert code == 0
    header, _, *rows = out.splitlines()
    assert "scale-up GB/s per card" in header and "scale-out GB/s per card" in header
    assert [r.split()[0] for r in rows] == SHIPPED
    assert "all-to-all 3x25" in out and "525" in out


def test_systems_show_and_json(capsys):
    code, out, _ = run_cli(capsys, "systems", "show", "dgx-a100")
    assert code == 0 and "switch 12x25" in out and "8 x a100" in out
    code, out, _ = run_cli(capsys, "systems", "show", "dgx-a100", "--json")
    data = json.loads(out)
    assert code == 0 and data["chip"] == "a100" and data["total_cards"] == 8
    assert data["scale_up"] == {"topology": "switch", "link_gbps": 25.0, "links": 12, "latency_us": 1.0}
    assert data["scale_up_gbps_per_card"] == 300.0 and data["scale_out_gbps_per_card"] == 25.0
    code, out, _ = run_cli(capsys, "systems", "--json")
    assert [s["name"] for s in json.loads(out)] == SHIPPED


@pytest.mark.parametrize(
    "argv, words",
    [
        (["systems", "show"], "needs a system name"),
        (["systems", "show", "dgx-z"], "no shipped system of that name; shipped systems: dgx-a100"),
    ],
)
def test_systems_errors_are_one_line_and_exit_2(capsys, argv, words):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "" and words in err and err.count("\n") == 1


def test_the_a100_profile_has_its_datasheet_peaks():
    h = load_chip("a100").headline()
    assert h.peak_matrix_tflops["bf16"] == pytest.approx(312, rel=0.01)  # [A1W] 312 TFLOPS dense
    assert h.peak_vector_tflops["fp32"] == pytest.approx(19.5, rel=0.01)  # [A1W] 19.5 TFLOPS FP32
    assert (h.hbm_gb, h.hbm_tb_per_s, h.sram_mb) == (40, 1.555, 40)
