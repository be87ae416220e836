"""The shared LM input checks: default positions count on from the cache; bad shapes are refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from repdyn.models.lm_inputs import checked_segment_pos


def test_positions_count_from_zero_or_from_the_cache():
    tokens = torch.zeros(2, 3, dtype=torch.long)
    assert checked_segment_pos(tokens, None, None, 1).tolist() == [[0, 1, 2], [0, 1, 2]]
    cache = SimpleNamespace(blocks=[None], next_segment_pos=torch.tensor([5, 0]))
    assert checked_segment_pos(tokens, None, cache, 1).tolist() == [[5, 6, 7], [0, 1, 2]]
    given = torch.tensor([[0, 0, 1], [3, 4, 5]])
    assert checked_segment_pos(tokens, given, cache, 1) is given


@pytest.mark.parametrize(
    ("tokens", "segment_pos", "blocks", "needle"),
    [
        (torch.zeros(3, dtype=torch.long), None, 1, "tokens must be [B, T]"),
        (torch.zeros(2, 0, dtype=torch.long), None, 1, "tokens must be [B, T]"),
        (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4), 1, "segment_pos must match"),
        (torch.zeros(2, 3, dtype=torch.long), None, 2, "cache has 1 blocks, the model 2"),
    ],
)
def test_bad_inputs_are_refused(tokens, segment_pos, blocks, needle):
    cache = SimpleNamespace(blocks=[None], next_segment_pos=torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=needle.replace("[", r"\[")):
        checked_segment_pos(tokens, segment_pos, cache, blocks)
