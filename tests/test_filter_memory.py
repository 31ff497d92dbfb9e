"""filter's per-row MinHash state in memory-mapped blocks: what it hands the clustering is
what concatenating every batch and indexing the usable rows gave."""

import numpy as np

from graphgen.stages.filter import _Blocks


def test_blocks_take_equals_concatenate_then_index():
    rng = np.random.default_rng(3)
    batches = [rng.integers(0, 1 << 16, size=(k, 5)).astype(np.uint16) for k in (7, 1, 0, 30, 12)]
    blocks = _Blocks()
    blocks.BLOCK_BYTES = 8 * 10  # 8 rows of 10 bytes: batches straddle blocks
    for batch in batches:
        blocks.append(batch)
    whole = np.concatenate(batches)
    rows = np.sort(rng.choice(len(whole), size=25, replace=False))
    taken = blocks.take(rows)
    assert taken.dtype == np.uint16 and taken.flags.writeable
    assert np.array_equal(taken, whole[rows])
    assert blocks.blocks == []  # handed over and freed
    assert np.array_equal(blocks_of(batches).take(np.arange(len(whole))), whole)


def blocks_of(batches):
    blocks = _Blocks()
    for batch in batches:
        blocks.append(batch)
    return blocks
