"""sRAVEN generator checked by an independent rule verifier and the paper's counts."""

from itertools import pairwise

import pytest
import torch

from repdyn.bench.errors import ConfigError, UserError
from repdyn.tasks.sraven import RULES, SRaven, SRavenConfig, sraven_accuracy


def rule_holds(rule: str, grid: list[list[int]], values: int) -> bool:
    """Independent verifier: does every row of ``grid`` follow ``rule``? (plain Python)"""
    for row in grid:
        if rule == "constant" and len(set(row)) != 1:
            return False
        if rule.startswith("progression"):
            step = int(rule[len("progression") :])
            if any((b - a - step) % values for a, b in pairwise(row)):
                return False
        if rule == "addition" and (sum(row[:-1]) - row[-1]) % values:
            return False
        if rule == "subtraction" and (row[0] - sum(row[1:-1]) - row[-1]) % values:
            return False
    if rule == "distribute_three":
        first = sorted(grid[0])
        if len(set(first)) != len(first) or any(sorted(row) != first for row in grid):
            return False
    return True


def decode_underlying(batch, i: int, config: SRavenConfig) -> list[list[list[list[int]]]]:
    """Rebuild the unpermuted [F][G rows][G cols] values of instance ``i`` from what the model sees
    (one-hot inputs plus the target panel) and the per-column feature permutation."""
    f, g = config.num_features, config.grid_size
    context = batch.inputs[i, : -f]
    assert torch.equal(context.sum(-1), torch.ones(len(context)))  # one-hot
    assert batch.inputs[i, -f:].abs().sum() == 0  # blank query panel
    shown = context.argmax(-1).tolist() + batch.targets[i].tolist()
    grid = [[[None] * g for _ in range(g)] for _ in range(f)]
    for panel in range(g * g):
        row, col = divmod(panel, g)
        for slot in range(f):
            feature = batch.perms[i, col, slot].item()
            grid[feature][row][col] = shown[panel * f + slot]
    return grid


@pytest.mark.parametrize("features, split", [(4, "train"), (4, "ood"), (2, "test"), (3, "ood")])
def test_every_generated_instance_satisfies_its_rules(features, split):
    config = SRavenConfig(num_features=features)
    batch = SRaven(config).sample(256, split, torch.Generator().manual_seed(7))
    for i in range(256):
        grid = decode_underlying(batch, i, config)
        assert torch.equal(torch.tensor(grid), batch.grids[i].permute(2, 0, 1))
        for feature, rule in enumerate(batch.latents[i].tolist()):
            assert rule_holds(RULES[rule], grid[feature], config.num_values), (i, RULES[rule])


def test_the_verifier_rejects_corrupted_answers():
    """The checker has teeth: shifting one answer value breaks the rule (all rules but none)."""
    config = SRavenConfig()
    batch = SRaven(config).sample(64, "train", torch.Generator().manual_seed(3))
    batch.targets[:, 0] = (batch.targets[:, 0] + 1) % config.num_values
    for i in range(64):
        grid = decode_underlying(batch, i, config)
        feature = batch.perms[i, -1, 0].item()
        rule = RULES[batch.latents[i, feature]]
        assert not rule_holds(rule, grid[feature], config.num_values)


def test_paper_counts_330_latents_82_held_out_and_disjoint():
    task = SRaven()
    assert len(task.latents_all) == 330 and len(set(map(tuple, task.latents_all.tolist()))) == 330
    assert len(task.ood_latent_ids) == 82 and len(task.train_latent_ids) == 248
    ood, train = set(task.ood_latent_ids.tolist()), set(task.train_latent_ids.tolist())
    assert not ood & train and ood | train == set(range(330))


def test_small_variant_counts():
    task = SRaven(SRavenConfig(num_features=2))  # hypernetwork.md §7: 36 combinations, 9 held out
    assert len(task.latents_all) == 36 and len(task.ood_latent_ids) == 9 and task.seq_len == 18


def test_split_is_fixed_by_the_seed_and_batches_respect_it():
    a, b, other = SRaven(), SRaven(), SRaven(SRavenConfig(split_seed=1))
    assert torch.equal(a.ood_latent_ids, b.ood_latent_ids)
    assert not torch.equal(a.ood_latent_ids, other.ood_latent_ids)
    ood_set = {tuple(a.latents_all[i].tolist()) for i in a.ood_latent_ids}
    gen = torch.Generator().manual_seed(0)
    assert all(tuple(row) in ood_set for row in a.sample(200, "ood", gen).latents.tolist())
    assert not any(tuple(row) in ood_set for row in a.sample(200, "train", gen).latents.tolist())


def test_batches_are_deterministic_and_permuted():
    task = SRaven()
    one = task.sample(32, "train", torch.Generator().manual_seed(5))
    two = task.sample(32, "train", torch.Generator().manual_seed(5))
    assert torch.equal(one.inputs, two.inputs) and torch.equal(one.targets, two.targets)
    assert one.inputs.shape == (32, 36, 8) and one.targets.shape == (32, 4)
    identity = torch.arange(4)
    assert (one.perms != identity).any()
    plain = task.sample(8, "train", torch.Generator().manual_seed(5), permute=False)
    assert (plain.perms == identity).all()


def test_accuracy_needs_every_feature_right():
    targets = torch.tensor([[1, 2], [3, 4]])
    logits = torch.nn.functional.one_hot(torch.tensor([[1, 2], [3, 0]]), 8).float()
    assert sraven_accuracy(logits, targets).item() == 0.5


def test_bad_settings_raise_user_errors():
    with pytest.raises(ConfigError, match="num_values"):
        SRavenConfig(num_values=2)
    with pytest.raises(UserError, match="split"):
        SRaven().sample(2, "valid", torch.Generator())
