"""Symbolic RAVEN (sRAVEN): compositional reasoning on a grid of panels (hypernetwork.md §3).

Each panel has ``num_features`` features with ``num_values`` values. In every feature the rows of
the grid follow one of 8 rules; a task (latent) is the multiset of rules over the features, so
``combinations_with_replacement(8, F)`` latents exist (330 for F = 4), and a fixed-seed 25% of
them (82) is held out to test compositional generalisation. The model reads the panels as
one-hot tokens, the final panel blank, and predicts the final panel's features.
"""

from dataclasses import dataclass
from itertools import combinations_with_replacement

import torch
from torch import Tensor

from repdyn.bench.errors import ConfigError, UserError

# hypernetwork.md §3 (official `rules` order): index -> rule name
RULES = (
    "constant",
    "progression+1",
    "progression+2",
    "progression-1",
    "progression-2",
    "addition",
    "subtraction",
    "distribute_three",
)
# test: fresh instances of training latents; ood: instances of held-out latents
SPLITS = ("train", "test", "ood")


@dataclass(frozen=True)
class SRavenConfig:
    """sRAVEN size. Defaults are the paper's: 4 features x 8 values, 3 x 3 grid, 25% held out."""

    num_features: int = 4
    num_values: int = 8
    grid_size: int = 3
    permute_features: bool = True
    frac_ood: float = 0.25
    split_seed: int = 2024  # fixes which latents are held out

    def __post_init__(self) -> None:
        if self.num_features < 1:
            raise ConfigError("num_features", f"must be >= 1, got {self.num_features}")
        if self.grid_size < 2:
            raise ConfigError("grid_size", f"must be >= 2, got {self.grid_size}")
        if self.num_values < self.grid_size:
            raise ConfigError(
                "num_values", f"must be >= grid_size ({self.grid_size}) for distribute_three"
            )
        if not 0.0 < self.frac_ood < 1.0:
            raise ConfigError("frac_ood", f"must be in (0, 1), got {self.frac_ood}")


@dataclass
class SRavenBatch:
    """A batch ready for the transformer.

    ``inputs`` ``[B, T, V]``: one-hot feature tokens, panel by panel (row-major), the last panel's
    ``F`` tokens all zero. ``targets`` ``[B, F]``: the last panel's values as shown (permuted).
    ``latents`` ``[B, F]``: the rule of each underlying feature. ``grids`` ``[B, G, G, F]``: the
    values before permutation. ``perms`` ``[B, G, F]``: slot ``f`` of a panel in grid column ``c``
    shows feature ``perms[c, f]``.
    """

    inputs: Tensor
    targets: Tensor
    latents: Tensor
    grids: Tensor
    perms: Tensor


class SRaven:
    """Generator of sRAVEN batches with a fixed train / held-out split of the rule combinations."""

    def __init__(self, config: SRavenConfig | None = None) -> None:
        self.config = config or SRavenConfig()
        c = self.config
        self.latents_all = torch.tensor(
            list(combinations_with_replacement(range(len(RULES)), c.num_features))
        )
        num_ood = int(len(self.latents_all) * c.frac_ood)
        if num_ood == 0 or num_ood == len(self.latents_all):
            total = len(self.latents_all)
            raise ConfigError("frac_ood", f"leaves an empty split of {total} latents")
        order = torch.randperm(
            len(self.latents_all), generator=torch.Generator().manual_seed(c.split_seed)
        )
        self.ood_latent_ids = order[:num_ood].sort().values
        self.train_latent_ids = order[num_ood:].sort().values
        self._tables: dict[torch.device, tuple[Tensor, Tensor, Tensor]] = {}

    def _on(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """(all latents, held-out ids, training ids) on `device`, copied there once."""
        if device not in self._tables:
            tables = (self.latents_all, self.ood_latent_ids, self.train_latent_ids)
            self._tables[device] = tuple(t.to(device, non_blocking=True) for t in tables)
        return self._tables[device]

    @property
    def seq_len(self) -> int:
        """Tokens per sequence: one per feature of each of the ``G^2`` panels."""
        return self.config.grid_size**2 * self.config.num_features

    def sample(
        self,
        batch_size: int,
        split: str,
        generator: torch.Generator,
        *,
        permute: bool | None = None,
    ) -> SRavenBatch:
        """Draw ``batch_size`` instances from ``split`` ("train", "test" or "ood"), on the generator's device."""
        if split not in SPLITS:
            raise UserError(f"unknown sRAVEN split {split!r}; accepted: {SPLITS}")
        c = self.config
        device = generator.device
        latents_all, ood_ids, train_ids = self._on(device)
        pool = ood_ids if split == "ood" else train_ids
        picks = torch.randint(len(pool), (batch_size,), generator=generator, device=device)
        latents = latents_all[pool[picks]]
        grids = self._sample_grids(latents.flatten(), generator)  # [B*F, G, G]
        grids = grids.view(batch_size, c.num_features, c.grid_size, c.grid_size)
        grids = grids.permute(0, 2, 3, 1)  # [B, rows, cols, F]
        if c.permute_features if permute is None else permute:
            noise = torch.rand(batch_size, c.grid_size, c.num_features, generator=generator, device=device)
            perms = noise.argsort(-1)
        else:
            perms = torch.arange(c.num_features, device=device).expand(batch_size, c.grid_size, -1)
        shown = grids.gather(3, perms[:, None].expand_as(grids))
        sequence = shown.reshape(batch_size, -1)  # panel by panel, features within a panel
        context = torch.nn.functional.one_hot(sequence[:, : -c.num_features], c.num_values)
        blank = torch.zeros(batch_size, c.num_features, c.num_values, dtype=context.dtype, device=device)
        return SRavenBatch(
            inputs=torch.cat([context, blank], dim=1).float(),
            targets=sequence[:, -c.num_features :],
            latents=latents,
            grids=grids,
            perms=perms.contiguous(),
        )

    def _sample_grids(self, rules: Tensor, generator: torch.Generator) -> Tensor:
        """One ``[G, G]`` grid per rule index in ``rules`` ``[n]``; each row is one example."""
        n, g, v = len(rules), self.config.grid_size, self.config.num_values
        device = generator.device
        cols = torch.arange(g, device=device)

        def uniform(*shape: int) -> Tensor:
            return torch.randint(v, (n, *shape), generator=generator, device=device)

        start = uniform(g, 1)
        operands = uniform(g, g - 1)
        addition = torch.cat([operands, operands.sum(-1, keepdim=True) % v], dim=-1)
        difference = operands[..., :1] - operands[..., 1:].sum(-1, keepdim=True)
        subtraction = torch.cat([operands, difference % v], dim=-1)
        symbols = torch.rand(n, v, generator=generator, device=device).argsort(-1)[:, :g]  # g distinct values
        row_orders = torch.rand(n, g, g, generator=generator, device=device).argsort(-1)
        distribute = symbols[:, None, :].expand(n, g, g).gather(2, row_orders)
        candidates = torch.stack(
            [
                uniform(g, 1).expand(n, g, g),  # constant: one value per row
                (start + 1 * cols) % v,
                (start + 2 * cols) % v,
                (start - 1 * cols) % v,
                (start - 2 * cols) % v,
                addition,  # last = sum of the others
                subtraction,  # last = first - the others
                distribute,  # every row a permutation of the same g distinct values
            ]
        )  # [rules, n, G, G]
        return candidates[rules, torch.arange(n, device=device)]


def sraven_accuracy(logits: Tensor, targets: Tensor) -> Tensor:
    """Fraction of instances with every feature right (hypernetwork.md §3 metric).

    ``logits`` ``[B, F, V]`` are the predictions at the ``F`` blank positions.
    """
    return (logits.argmax(-1) == targets).all(dim=-1).float().mean()
