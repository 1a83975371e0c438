"""group_by_length (training.loop.length_grouped, EpochSampler): every row once per epoch, batches of similar
length, the batch order still shuffled, the same order on a rerun; and through fit, a resumed run the same."""

from __future__ import annotations

import pytest
import torch

from talking_points.pipeline.training.config import TrainConfig
from talking_points.pipeline.training.loop import MEGABATCH, EpochSampler, fit, length_grouped


def _batches(sampler: EpochSampler) -> list[list[int]]:
    rows = list(sampler)
    return [rows[i:i + sampler.batch_size] for i in range(0, len(rows), sampler.batch_size)]


def test_length_grouped_batches_hold_rows_of_similar_length_in_a_shuffled_order():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(10, 200, (1000,), generator=g)
    plain = EpochSampler(1000, seed=3, batch_size=8)
    grouped = EpochSampler(1000, seed=3, batch_size=8, lengths=lengths.tolist())
    assert len(grouped) == len(plain) == 1000
    assert sorted(grouped) == sorted(plain) == list(range(1000))  # the same rows, each once

    def padding(sampler):  # padded cells per epoch, as a right-padding collate makes them
        return sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in map(torch.tensor, _batches(sampler)))

    assert padding(grouped) < 0.2 * padding(plain)
    first = [int(lengths[b].max()) for b in map(torch.tensor, _batches(grouped))]
    assert first != sorted(first, reverse=True)  # not longest-first across the epoch: the batches are shuffled
    assert list(grouped) == list(EpochSampler(1000, seed=3, batch_size=8, lengths=lengths.tolist()))
    grouped.set_epoch(1)
    assert list(grouped) != list(EpochSampler(1000, seed=3, batch_size=8, lengths=lengths.tolist()))


def test_length_grouped_sorts_within_megabatches_only():
    perm = torch.arange(8 * MEGABATCH * 2)
    lengths = torch.arange(len(perm))  # longer with the index: the two megabatches must not mix
    out = length_grouped(perm, lengths, 8, torch.Generator().manual_seed(0))
    for batch in out.split(8):
        assert len({int(i) // (8 * MEGABATCH) for i in batch}) == 1


def test_processes_get_micro_batches_of_one_length_group():
    lengths = [i % 50 for i in range(400)]
    ranks = [EpochSampler(400, seed=0, batch_size=4, rank=r, world=2, lengths=lengths) for r in range(2)]
    for b0, b1 in zip(_batches(ranks[0]), _batches(ranks[1])):
        step = [lengths[i] for i in b0 + b1]
        assert max(step) - min(step) <= 2  # one group of 8 consecutive rows of the sorted megabatch
    assert sorted(list(ranks[0]) + list(ranks[1])) == list(range(400))


def test_lengths_must_match_the_rows_and_fit_asks_for_them():
    with pytest.raises(ValueError, match="3 lengths for 4 rows"):
        EpochSampler(4, seed=0, batch_size=2, lengths=[1, 2, 3])
    cfg = TrainConfig(max_steps=1, batch_size=2, group_by_length=True)
    with pytest.raises(ValueError, match="group_by_length needs the rows' text lengths"):
        fit(torch.nn.Linear(2, 1), lambda m, b: (m(b).sum(), {}), [torch.zeros(2)] * 4, torch.stack, cfg, "/x")
