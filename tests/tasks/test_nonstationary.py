"""Non-stationary streams: exact label-reset fractions, true permutations, determinism per seed."""

import pytest
import torch

from repdyn.tasks.nonstationary import (
    BitFlipStream,
    CompositeStream,
    PermutedInputStream,
    RandomLabelStream,
    TargetOffsetStream,
    permutation,
)

X = torch.randn(500, 12, generator=torch.Generator().manual_seed(0))
Y = torch.randint(0, 10, (500,), generator=torch.Generator().manual_seed(1))


STREAMS = [
    lambda seed: RandomLabelStream(X, 10, 4, 7, 0.3, seed),
    lambda seed: PermutedInputStream(X, Y, 10, 4, 7, seed),
    lambda seed: TargetOffsetStream(X, 3, 7, 11, 50.0, seed, out_dim=2),
    lambda seed: BitFlipStream(4, 7, seed),
    lambda seed: CompositeStream(X, 10, 4, 7, 0.5, 0.5, seed),
]


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.37, 1.0])
def test_label_fraction_changes_exactly_as_configured(fraction):
    stream = RandomLabelStream(X, 10, 6, 5, fraction, seed=3)
    previous = stream.task(0).targets
    for t in range(1, 6):
        labels = stream.task(t).targets
        assert int((labels != previous).sum()) == round(fraction * len(X))
        assert labels.min() >= 0 and labels.max() <= 9
        previous = labels


def test_full_reset_labels_are_close_to_uniform():
    labels = RandomLabelStream(torch.zeros(20000, 1), 10, 2, 1, 1.0, seed=0).task(1).targets
    counts = torch.bincount(labels, minlength=10).float() / len(labels)
    assert (counts - 0.1).abs().max() < 0.01


def test_permutations_are_permutations():
    assert permutation(12, 5, 0).tolist() == list(range(12))
    perms = [permutation(64, 5, t) for t in range(1, 6)]
    for p in perms:
        assert sorted(p.tolist()) == list(range(64))
    assert len({tuple(p.tolist()) for p in perms}) == 5
    stream = PermutedInputStream(X, Y, 10, 3, 5, seed=5)
    task = stream.task(2)
    assert torch.equal(task.x, X[:, permutation(12, 5, 2)])
    assert torch.equal(task.labels, Y)


@pytest.mark.parametrize("index", range(5))
def test_streams_are_deterministic_per_seed(index):
    make = STREAMS[index]
    a, b, c = make(7), make(7), make(8)
    last = a.num_tasks - 1
    walked = [a.task(t) for t in range(a.num_tasks)]
    # A fresh stream asked for the last task first gives the same task as walking there.
    assert torch.equal(b.task(last).x, walked[-1].x) and torch.equal(b.task(last).targets, walked[-1].targets)
    assert torch.equal(b.task(0).x, walked[0].x) and torch.equal(b.task(0).targets, walked[0].targets)
    different = [not (torch.equal(a.task(t).x, c.task(t).x) and torch.equal(a.task(t).targets, c.task(t).targets))
                 for t in range(a.num_tasks)]
    assert any(different)


def test_target_offset_stream_pretrains_on_the_offset_then_fresh_targets():
    stream = TargetOffsetStream(X, 3, 7, 11, 50.0, seed=2, out_dim=2)
    assert stream.num_tasks == 4 and stream.steps_of(0) == 11 and stream.steps_of(3) == 7
    pre = stream.task(0).targets
    assert pre.shape == (500, 2)
    assert torch.allclose(pre.mean(0), torch.full((2,), 50.0), atol=1e-4)
    for t in (1, 2, 3):
        g = stream.task(t).targets
        assert torch.allclose(g.mean(0), torch.zeros(2), atol=1e-5)
        assert torch.allclose(g.std(0), torch.ones(2), atol=1e-5)
        assert not torch.allclose(g, stream.task(1 + t % 3).targets)


def test_bit_flip_stream_flips_one_slow_bit_per_task_and_targets_follow_the_ltu_net():
    stream = BitFlipStream(6, 5, seed=4)
    for t in range(1, 6):
        assert int((stream.slow_bits(t) != stream.slow_bits(t - 1)).sum()) == 1
    task = stream.task(3)
    assert task.x.shape == (32, 20)
    assert len({tuple(r) for r in task.x[:, 15:].tolist()}) == 32  # every setting of the 5 random bits
    assert torch.equal(task.x[:, :15], stream.slow_bits(3).expand(32, -1))
    for row, target in zip(task.x, task.targets, strict=True):
        hidden = [float(sum(w * b for w, b in zip(stream.w_in[:, j].tolist(), row.tolist(), strict=True))
                        > stream.threshold[j]) for j in range(100)]
        assert float(target) == sum(h * v for h, v in zip(hidden, stream.w_out[:, 0].tolist(), strict=True))


def test_composite_stream_permutes_resets_and_grows():
    stream = CompositeStream(X, 10, 4, 5, 0.5, 0.5, seed=1)
    t0, t2 = stream.task(0), stream.task(2)
    assert torch.equal(t0.x, X)
    assert sorted(t2.x[0].tolist()) == sorted(X[0].tolist()) and not torch.equal(t2.x, X)
    assert torch.equal(t2.targets, 2.0 * torch.nn.functional.one_hot(t2.labels, 10).float())
    assert int((stream.task(1).labels != t0.labels).sum()) == 250


def test_bad_stream_arguments():
    with pytest.raises(ValueError, match="label fraction"):
        RandomLabelStream(X, 10, 2, 1, 0.0, seed=0)
    with pytest.raises(IndexError):
        RandomLabelStream(X, 10, 2, 1, 0.5, seed=0).task(2)
