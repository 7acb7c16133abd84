"""The category registry: one code per string across dictionaries, nulls, string order."""

from __future__ import annotations

import pyarrow as pa

from workload.kernels.categories import Categories


def dict_array(values, dictionary):
    codes = pa.array([None if v is None else dictionary.index(v) for v in values], pa.int32())
    return pa.DictionaryArray.from_arrays(codes, pa.array(dictionary, pa.string()))


def test_codes_mean_the_same_across_dictionaries():
    cats = Categories()
    one = cats.codes(dict_array(["b", "a"], ["a", "b"]))
    two = cats.codes(dict_array(["a", "b"], ["b", "a"]))
    assert [cats.values[c] for c in one] == ["b", "a"]
    assert [cats.values[c] for c in two] == ["a", "b"]


def test_nulls_get_a_code_and_come_back_as_nulls():
    cats = Categories()
    codes = cats.codes(dict_array(["x", None, "x"], ["x"]))
    assert cats.array(codes).to_pylist() == ["x", None, "x"]
    assert cats.strings(codes).to_pylist() == ["x", None, "x"]


def test_ranks_follow_string_order_with_nulls_last():
    cats = Categories()
    cats.codes(dict_array(["m", None, "a", "z"], ["m", "a", "z"]))
    order = sorted(range(len(cats.values)), key=lambda c: cats.ranks()[c])
    assert [cats.values[c] for c in order] == ["a", "m", "z", None]


def test_plain_string_columns_are_encoded_too():
    cats = Categories()
    codes = cats.codes(pa.array(["q", "r", "q"]))
    assert [cats.values[c] for c in codes] == ["q", "r", "q"]


def test_a_written_dictionary_reads_back_without_a_category_more():
    # A null category has no dictionary slot: reading what a pod wrote registers exactly the
    # strings its rows hold (a placeholder slot once came back as one more category, and the
    # next pod's dictionary then held a string twice).
    first = Categories()
    written = first.array(first.codes(dict_array(["b", None, "a", "b"], ["b", "a"])))
    assert written.dictionary.to_pylist() == ["b", "a"]
    assert written.to_pylist() == ["b", None, "a", "b"]
    second = Categories()
    again = second.array(second.codes(written))
    assert second.values == ["b", "a", None] and again.to_pylist() == written.to_pylist()
    assert again.dictionary.to_pylist() == ["b", "a"]
