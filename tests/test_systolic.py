"""accelsim.systolic_cycles against SCALE-Sim 3.0.0 itself (cases recorded by tools/scalesim_reference.py)."""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accelsim import AccelsimError, split_gemm_cycles, systolic_cycles

CASES = json.loads((Path(__file__).parent / "data" / "scalesim_cycles.json").read_text())["cases"]


def _case_id(c: dict) -> str:
    return f"{c['M']}x{c['K']}x{c['N']}-{c['rows']}x{c['cols']}-{c['dataflow']}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_equals_scale_sim(case):
    got = systolic_cycles(case["M"], case["K"], case["N"], case["rows"], case["cols"], case["dataflow"])
    assert got == case["cycles"]


def test_the_recorded_cases_cover_every_dataflow_and_non_square_arrays():
    assert {c["dataflow"] for c in CASES} == {"os", "ws", "is"}
    assert any(c["rows"] != c["cols"] for c in CASES)
    assert len(CASES) >= 36


@given(
    st.integers(1, 300),
    st.integers(1, 300),
    st.integers(1, 300),
    st.sampled_from([4, 8, 32, 128]),
    st.sampled_from([4, 16, 128]),
    st.sampled_from(["os", "ws", "is"]),
)
def test_never_faster_than_the_array_can_do_the_macs(m, k, n, rows, cols, flow):
    cycles = systolic_cycles(m, k, n, rows, cols, flow)
    assert cycles * rows * cols >= m * k * n


@given(st.integers(1, 200), st.integers(1, 200), st.integers(1, 200), st.sampled_from(["os", "ws", "is"]))
def test_a_bigger_array_is_never_slower_on_more_work_than_it_has_rows(m, k, n, flow):
    assert systolic_cycles(m, k, n + 1, 8, 8, flow) >= systolic_cycles(m, k, n, 8, 8, flow)


def test_splitting_a_gemm_over_engines_divides_the_columns():
    one = systolic_cycles(256, 256, 1024, 128, 128, "os")
    four = split_gemm_cycles(256, 256, 1024, 128, 128, "os", 4)
    assert four == systolic_cycles(256, 256, 256, 128, 128, "os") and four < one
    assert split_gemm_cycles(256, 256, 1024, 128, 128, "os", 1) == one


@pytest.mark.parametrize("bad", [dict(M=0), dict(K=-3), dict(rows=0), dict(dataflow="xs"), dict(N=1.5)])
def test_bad_arguments_are_clear_errors(bad):
    args = dict(M=4, K=4, N=4, rows=2, cols=2, dataflow="os") | bad
    with pytest.raises(AccelsimError) as err:
        systolic_cycles(**args)
    assert next(iter(bad)) in str(err.value)


def test_pipelined_folds_pay_each_folds_stream_and_hide_fill_and_drain():
    from accelsim.systolic import pipelined_cycles

    # os on 4 x 4: a 8 x 16 @ 16 x 8 GEMM has ceil(8/4) * ceil(8/4) = 4 folds of K = 16 cycles each
    assert pipelined_cycles([(1, 8, 16, 8)], 4, 4, "os") == 4 * 16
    # ws: folds over K and N (4 x 2 = 8), each streaming M = 2 rows but preloading R = 4 weights first
    assert pipelined_cycles([(1, 2, 16, 8)], 4, 4, "ws") == 8 * 4
    # a batch of 3 is three times the folds; SCALE-Sim's count pays (R + C + K - 2) on each of them
    assert pipelined_cycles([(3, 8, 16, 8)], 4, 4, "os") == 3 * 4 * 16
    assert 3 * systolic_cycles(8, 16, 8, 4, 4, "os") == 3 * ((4 + 4 + 16 - 2) * 4 - 1)


@given(
    st.integers(1, 300),
    st.integers(1, 300),
    st.integers(1, 300),
    st.sampled_from([4, 8, 32, 128]),
    st.sampled_from([4, 16, 128]),
    st.sampled_from(["os", "ws", "is"]),
)
def test_pipelined_folds_are_between_the_macs_and_scale_sims_count(m, k, n, rows, cols, flow):
    from accelsim.systolic import pipelined_cycles

    cycles = pipelined_cycles([(1, m, k, n)], rows, cols, flow)
    assert m * k * n <= cycles * rows * cols and cycles <= systolic_cycles(m, k, n, rows, cols, flow)


def test_pipelined_folds_add_up_over_a_tasks_gemms_and_refuse_an_unknown_dataflow():
    from accelsim.systolic import pipelined_cycles

    # is on 4 x 4: folds over K and M (4 x 2 = 8), each streaming N = 2 but preloading R = 4 first
    assert pipelined_cycles([(1, 8, 16, 2)], 4, 4, "is") == 8 * 4
    # two GEMMs in one task: their folds add
    assert pipelined_cycles([(1, 8, 16, 8), (2, 4, 4, 4)], 4, 4, "os") == 4 * 16 + 2 * 4
    with pytest.raises(AccelsimError, match="dataflow: unknown dataflow 'rs'; allowed: os, ws, is"):
        pipelined_cycles([(1, 4, 4, 4)], 4, 4, "rs")
