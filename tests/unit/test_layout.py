"""The tree's arithmetic."""

from __future__ import annotations

import pytest

from workload import layout
from workload.errors import UsageError


@pytest.mark.parametrize(
    ("files", "fan_in", "final_fan_in", "levels", "shape"),
    [
        (128, 2, None, None, (128, 64, 32)),  # the seed's case
        (9, 2, 2, None, (9, 5, 3, 2)),
        (23, 3, 1, None, (23, 8, 3, 1)),
        (5, 2, None, None, (5,)),  # already few enough: the final pod reads l1
        (100, 4, None, 1, (100, 25)),
    ],
)
def test_plans(files, fan_in, final_fan_in, levels, shape):
    plan = layout.plan(files, fan_in, levels=levels, final_fan_in=final_fan_in)
    assert plan.files == shape
    assert plan.final_level == len(shape) and plan.final_count == shape[-1]
    for level in range(1, plan.levels + 1):
        assert layout.files_at(level + 1, files, fan_in) == shape[level]


def test_the_last_pod_of_an_odd_level_takes_fewer_inputs():
    assert layout.inputs(1, 4, 9, 2) == ["l1/8.parquet"]
    with pytest.raises(UsageError, match="file_number 5 is beyond level 1"):
        layout.inputs(1, 5, 9, 2)
