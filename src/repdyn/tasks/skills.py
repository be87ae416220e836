"""In-context "skills" as token distributions, for State Soup at CPU scale (state_soup.md §3).

A skill (task) is a random support of `support` tokens out of `vocab`; its text is tokens drawn
uniformly from the support. Text of two skills is the 50/50 mixture: each token comes from either
skill with probability 1/2. A model trained on single- and two-skill sequences must infer the
support(s) in context, so the state after a prompt encodes which skill it saw.
"""

from __future__ import annotations

import torch
from torch import Tensor

from repdyn.bench.errors import ConfigError

__all__ = ["SkillTasks"]


class SkillTasks:
    """Samplers of skills (supports) and of their text, from explicit torch.Generators."""

    def __init__(self, vocab: int = 64, support: int = 8) -> None:
        # state_soup.md §3: each task = a random support of 8 of 64 tokens
        if not 1 <= support <= vocab:
            raise ConfigError("support", f"must lie in [1, vocab = {vocab}]; got {support}")
        self.vocab, self.support = vocab, support

    def supports(self, count: int, generator: torch.Generator) -> Tensor:
        """`count` random skills: distinct-token supports [count, support], each drawn without replacement."""
        return torch.rand(count, self.vocab, generator=generator).argsort(dim=1)[:, : self.support]

    def text(self, supports: Tensor, length: int, generator: torch.Generator) -> Tensor:
        """Tokens [B, length], row b uniform over supports[b]."""
        index = torch.randint(0, supports.shape[1], (supports.shape[0], length), generator=generator)
        return supports.gather(1, index)

    def mixture_text(self, first: Tensor, second: Tensor, length: int, generator: torch.Generator) -> Tensor:
        """Tokens [B, length] of the 50/50 mixture of skills first[b] and second[b]."""
        pick = torch.rand(first.shape[0], length, generator=generator) < 0.5
        return torch.where(pick, self.text(first, length, generator), self.text(second, length, generator))

    def training_batch(self, batch: int, length: int, two_skill_fraction: float, generator: torch.Generator) -> Tensor:
        """Tokens [batch, length]: fresh skills each row; a `two_skill_fraction` of rows mix two skills."""
        first, second = self.supports(batch, generator), self.supports(batch, generator)
        mixed = self.mixture_text(first, second, length, generator)
        single = self.text(first, length, generator)
        two = (torch.rand(batch, generator=generator) < two_skill_fraction)[:, None]
        return torch.where(two, mixed, single)
