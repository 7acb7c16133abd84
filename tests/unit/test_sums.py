"""Kernel edge cases the end-to-end tests do not reach: exact int64 sums."""

from __future__ import annotations

import pytest
from support import events

from workload.errors import DataError
from workload.kernels.categories import Categories
from workload.ops.aggregate import Partials, summarize_events

BIG = 2**62 + 5


@pytest.mark.parametrize("by", ["key", "category", "key,category"])
def test_group_sum_overflow_is_an_error_not_a_wrap(by):
    cats = Categories()
    with pytest.raises(DataError, match="value_sum overflows int64"):
        Partials.from_events(events([1, 1], [BIG, BIG], ["a", "a"]), cats).reduce(by, cats)


def test_final_pod_checks_each_category_sum():
    # per key the sums fit; category "a" gets BIG + BIG, which does not
    cats = Categories()
    with pytest.raises(DataError, match="value_sum overflows int64"):
        summarize_events(events([1, 2, 3], [BIG, BIG, -BIG], ["a", "a", "b"]), cats)


def test_large_values_that_fit_are_summed_exactly():
    cats = Categories()
    table = events([1, 1, 2], [BIG, -BIG, BIG], ["a", "b", "b"])
    summarized = summarize_events(table, cats)
    by_key, by_category = summarized.keyed, summarized.categorized
    assert by_key.value_sum.tolist() == [0, BIG]
    sums = dict(zip(by_category.cat.tolist(), by_category.value_sum.tolist(), strict=True))
    assert sums == {cats.values.index("a"): BIG, cats.values.index("b"): 0}
