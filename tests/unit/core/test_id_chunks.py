"""Customers split into consecutive chunks of ids: the one helper loyalty and churn use."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm.core.db import id_chunks


def test_ids_are_distinct_increasing_and_at_most_size_per_chunk():
    chunks = id_chunks(pd.Series([9, 3, 3, 7, 1, 5]), 2)
    assert [c.tolist() for c in chunks] == [[1, 3], [5, 7], [9]]


def test_a_chunk_boundary_falls_exactly_on_the_size():
    assert [c.tolist() for c in id_chunks([4, 1, 3, 2], 2)] == [[1, 2], [3, 4]]
    assert [c.tolist() for c in id_chunks([1, 2, 3], 3)] == [[1, 2, 3]]
    assert [c.tolist() for c in id_chunks([1, 2, 3, 4], 3)] == [[1, 2, 3], [4]]


def test_without_a_size_every_id_is_one_chunk_and_no_ids_no_chunk():
    assert [c.tolist() for c in id_chunks(np.array([2, 1, 2]), None)] == [[1, 2]]
    assert [c.tolist() for c in id_chunks([5, 6], 0)] == [[5, 6]]
    assert id_chunks([], 10) == []
    assert id_chunks(pd.Series(dtype="int64"), None) == []


def test_ids_beyond_32_bits_stay_exact():
    big = [2**40 + 1, 2**40]
    assert [c.tolist() for c in id_chunks(big, 1)] == [[2**40], [2**40 + 1]]
