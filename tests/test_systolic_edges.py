"""Edges of accelsim.systolic: which argument an error names, and how a split over engines rounds.

Written against the survivors of a mutation run (tools/mutation.sh): each test pins one thing the SCALE-Sim
comparison in test_systolic.py does not look at.
"""

import pytest

from accelsim import AccelsimError, split_gemm_cycles, systolic_cycles

GOOD = dict(M=4, K=4, N=4, rows=2, cols=2, dataflow="os")


@pytest.mark.parametrize("name", ["M", "K", "N", "rows", "cols"])
def test_a_bad_size_error_names_exactly_that_argument(name):
    with pytest.raises(AccelsimError) as err:
        systolic_cycles(**(GOOD | {name: 0}))
    assert err.value.key == name
    assert str(err.value) == f"{name}: must be a positive integer (got 0)"


def test_an_unknown_dataflow_is_named_and_the_allowed_ones_listed():
    with pytest.raises(AccelsimError) as err:
        systolic_cycles(**(GOOD | {"dataflow": "xs"}))
    assert err.value.key == "dataflow"
    assert str(err.value) == "dataflow: unknown dataflow 'xs'; allowed: os, ws, is"


@pytest.mark.parametrize("engines", [0, -2])
def test_zero_or_negative_engines_is_a_clear_error_not_a_division_by_zero(engines):
    with pytest.raises(AccelsimError) as err:
        split_gemm_cycles(4, 4, 4, 2, 2, "os", engines)
    assert err.value.key == "engines"
    assert str(err.value) == f"engines: must be a positive integer (got {engines})"


def test_ten_columns_over_three_engines_the_slowest_gets_four():
    # os on a 2x2 array, M=2 K=3: each engine streams T=K=3 through ceil(2/2)=1 row fold.
    # 10 columns / 3 engines -> ceil(10/3) = 4 columns for the slowest -> ceil(4/2) = 2 column folds.
    # cycles = (R + C + T - 2) * folds - 1 = (2 + 2 + 3 - 2) * (1 * 2) - 1 = 5 * 2 - 1 = 9
    assert split_gemm_cycles(2, 3, 10, 2, 2, "os", 3) == 9
    # More engines than columns: ceil(10/16) = 1 column, one fold: (2 + 2 + 3 - 2) * 1 - 1 = 4
    assert split_gemm_cycles(2, 3, 10, 2, 2, "os", 16) == 4
