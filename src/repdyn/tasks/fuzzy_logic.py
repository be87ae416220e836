"""In-context fuzzy-logic regression (hypernetwork.md §4).

A task is an OR of ``t`` terms, each an AND over all ``d`` literals (``x_i`` or ``1 - x_i``), with
Zadeh semantics (NOT = 1 - x, AND = min, OR = max). A sequence shows 16 (x, y) pairs of one task
and asks for the last y. The last 25% of the ``2^d`` conjunctions never appear in training: "test"
combines seen conjunctions in unseen ways, "ood" combines only unseen ones.
"""

from dataclasses import dataclass
from itertools import combinations, product

import torch
from torch import Tensor

from repdyn.bench.errors import ConfigError, UserError

SPLITS = ("train", "test", "ood")


@dataclass(frozen=True)
class FuzzyLogicConfig:
    """Task family size; defaults are the paper's ``logic_4var_2term``."""

    num_variables: int = 4
    num_terms: int = 2
    seq_len: int = 16
    frac_test: float = 0.5
    frac_ood_conj: float = 0.25
    split_seed: int = 2024  # fixes the train / test split of term combinations

    def __post_init__(self) -> None:
        if self.num_variables < 1 or self.num_terms < 1:
            raise ConfigError("num_variables", "num_variables and num_terms must be >= 1")
        if self.seq_len < 2:
            raise ConfigError("seq_len", f"must be >= 2 (context and query), got {self.seq_len}")
        if not 0.0 < self.frac_test < 1.0:
            raise ConfigError("frac_test", f"must be in (0, 1), got {self.frac_test}")
        if not 0.0 < self.frac_ood_conj < 1.0:
            raise ConfigError("frac_ood_conj", f"must be in (0, 1), got {self.frac_ood_conj}")


@dataclass
class FuzzyLogicBatch:
    """``inputs`` ``[B, T, d + 1]``: (x, y) tokens with the final y set to 0 (the query).
    ``targets`` ``[B]``: the final y. ``base_mse`` ``[B]``: variance of y within each sequence
    (the R^2 denominator). ``latents`` ``[B, t, d]``: the task's literals (1 = x_i, 0 = 1 - x_i)."""

    inputs: Tensor
    targets: Tensor
    base_mse: Tensor
    latents: Tensor


def evaluate_formula(latents: Tensor, x: Tensor) -> Tensor:
    """Zadeh fuzzy DNF: ``max_terms min_vars (x_i if literal else 1 - x_i)``.

    ``latents`` ``[..., t, d]`` (0/1), ``x`` ``[..., d]`` in [0, 1] -> ``[...]``.
    """
    literals = torch.where(latents.bool(), x[..., None, :], 1.0 - x[..., None, :])
    return literals.amin(dim=-1).amax(dim=-1)


class FuzzyLogic:
    """Generator with fixed splits of conjunctions (ood) and of their combinations (test)."""

    def __init__(self, config: FuzzyLogicConfig | None = None) -> None:
        self.config = config or FuzzyLogicConfig()
        c = self.config
        self.conjunctions = torch.tensor(list(product([0, 1], repeat=c.num_variables)))
        num_conj = len(self.conjunctions)
        num_ood = int(num_conj * c.frac_ood_conj)
        seen = list(combinations(range(num_conj - num_ood), c.num_terms))
        unseen = list(combinations(range(num_conj - num_ood, num_conj), c.num_terms))
        if not seen or not unseen:
            raise ConfigError("num_terms", f"{c.num_terms} terms leave an empty split")
        seen_t = torch.tensor(seen)
        order = torch.randperm(len(seen_t), generator=torch.Generator().manual_seed(c.split_seed))
        num_test = int(len(seen_t) * c.frac_test)
        if num_test == 0 or num_test == len(seen_t):
            raise ConfigError("frac_test", f"leaves an empty split of {len(seen_t)} combinations")
        self.terms = {
            "train": seen_t[order[num_test:]],
            "test": seen_t[order[:num_test]],
            "ood": torch.tensor(unseen),
        }
        self.num_ood_conjunctions = num_ood
        self._tables: dict[torch.device, tuple[Tensor, dict[str, Tensor]]] = {}

    def _on(self, device: torch.device) -> tuple[Tensor, dict[str, Tensor]]:
        """(conjunctions, terms per split) on `device`, copied there once."""
        if device not in self._tables:
            terms = {split: t.to(device, non_blocking=True) for split, t in self.terms.items()}
            self._tables[device] = (self.conjunctions.to(device, non_blocking=True), terms)
        return self._tables[device]

    def sample(self, batch_size: int, split: str, generator: torch.Generator) -> FuzzyLogicBatch:
        """Draw ``batch_size`` sequences from ``split`` ("train", "test" or "ood"), on the generator's device."""
        if split not in SPLITS:
            raise UserError(f"unknown fuzzy-logic split {split!r}; accepted: {SPLITS}")
        c = self.config
        device = generator.device
        conjunctions, pools = self._on(device)
        pool = pools[split]
        terms = pool[torch.randint(len(pool), (batch_size,), generator=generator, device=device)]  # [B, t]
        latents = conjunctions[terms]  # [B, t, d]
        x = torch.rand(batch_size, c.seq_len, c.num_variables, generator=generator, device=device)
        y = evaluate_formula(latents[:, None], x)  # [B, T]
        inputs = torch.cat([x, y[..., None]], dim=-1)
        inputs[:, -1, -1] = 0.0
        base_mse = (y - y.mean(dim=1, keepdim=True)).square().mean(dim=1)
        return FuzzyLogicBatch(inputs=inputs, targets=y[:, -1], base_mse=base_mse, latents=latents)


def r_squared(predictions: Tensor, batch: FuzzyLogicBatch) -> Tensor:
    """Mean over sequences of ``1 - (prediction - y)^2 / base_mse`` (hypernetwork.md §4 metric)."""
    return (1.0 - (predictions - batch.targets).square() / batch.base_mse).mean()
