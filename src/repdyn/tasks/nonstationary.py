"""Non-stationary streams for plasticity studies: sequences of tasks, each trained for a fixed budget.

A stream is a deterministic function of its seed: `stream.task(i)` gives the same inputs and
targets every time, so a resumed run sees the tasks it saw before. The streams (plasticity.md §4,
§6, §8):

- `RandomLabelStream`: fixed inputs; at each switch exactly `fraction` of the labels change to
  another class (1% = a smooth drift, 100% = a fresh random labelling).
- `PermutedInputStream`: true labels; a new pixel permutation per task (task 0 unpermuted).
- `TargetOffsetStream`: regression; pretrain on `c + g0(x)`, then fine-tune on fresh zero-mean
  targets `g1(x), g2(x), ...` (g = a random sin-feature network, standardised).
- `BitFlipStream`: Dohare et al.'s slowly changing regression: 20 input bits of which 15 flip one
  at a time (one flip per task), the rest random; a fixed random LTU network gives the target.
- `CompositeStream`: a new permutation, a label reset and a growing target scale at every switch
  (targets `scale_t * one_hot(label)`, regressed), the paper's "composite" mode.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Kind = Literal["classification", "regression"]


@dataclass(frozen=True)
class Task:
    """One task: inputs, targets (int64 labels or float [n, k] values), its step budget and class labels."""

    index: int
    x: Tensor
    targets: Tensor
    steps: int
    labels: Tensor | None = None
    """Class labels for scoring accuracy (classification, and regression on scaled one-hot targets)."""


def generator(seed: int, *keys: int) -> torch.Generator:
    """A torch generator seeded from (seed, *keys) so every task draws from its own stream."""
    state = np.random.SeedSequence([seed % 2**32, *keys]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


class Stream(ABC):
    """A sequence of `num_tasks` tasks; subclasses define `task(i)`."""

    kind: Kind
    out_dim: int
    num_tasks: int

    @abstractmethod
    def task(self, index: int) -> Task:
        """The `index`-th task (0-based), identical on every call."""

    def _check(self, index: int) -> None:
        if not 0 <= index < self.num_tasks:
            raise IndexError(f"task {index} outside 0..{self.num_tasks - 1}")

    def steps_of(self, index: int) -> int:
        """Step budget of task `index` (without building the task)."""
        self._check(index)
        return self.steps


def _check_fraction(fraction: float) -> None:
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")


class _LabelResets:
    """Labels of every task: task 0 uniform at random; at each switch exactly round(f*n) labels change class."""

    def __init__(self, n: int, num_classes: int, fraction: float, seed: int, key: int) -> None:
        _check_fraction(fraction)
        self.n, self.num_classes, self.fraction, self.seed, self.key = n, num_classes, fraction, seed, key
        self._labels = [torch.randint(0, num_classes, (n,), generator=generator(seed, key, 0))]

    @property
    def resets(self) -> int:
        """Number of labels that change at each switch (at least one)."""
        return max(1, round(self.fraction * self.n))

    def __call__(self, index: int) -> Tensor:
        while len(self._labels) <= index:
            t = len(self._labels)
            gen = generator(self.seed, self.key, t)
            labels = self._labels[-1].clone()
            chosen = torch.randperm(self.n, generator=gen)[: self.resets]
            # A shift of 1..C-1 classes: the new label is uniform over the *other* classes.
            shift = torch.randint(1, self.num_classes, (len(chosen),), generator=gen)
            labels[chosen] = (labels[chosen] + shift) % self.num_classes
            self._labels.append(labels)
        return self._labels[index]


class RandomLabelStream(Stream):
    """Fixed inputs with random labels; exactly `fraction` of them change class at every task switch."""

    kind: Kind = "classification"

    def __init__(self, x: Tensor, num_classes: int, num_tasks: int, steps: int, fraction: float, seed: int) -> None:
        self.x, self.out_dim, self.num_tasks, self.steps = x, num_classes, num_tasks, steps
        self._labels = _LabelResets(len(x), num_classes, fraction, seed, key=1)

    def task(self, index: int) -> Task:
        self._check(index)
        labels = self._labels(index)
        return Task(index, self.x, labels, self.steps, labels)


def permutation(num_features: int, seed: int, index: int, key: int = 2) -> Tensor:
    """The input permutation of task `index`: the identity for task 0, a seeded random one after."""
    if index == 0:
        return torch.arange(num_features)
    return torch.randperm(num_features, generator=generator(seed, key, index))


class PermutedInputStream(Stream):
    """True labels; task t sees the inputs with a fixed random permutation of their features."""

    kind: Kind = "classification"

    def __init__(self, x: Tensor, y: Tensor, num_classes: int, num_tasks: int, steps: int, seed: int) -> None:
        self.x, self.y, self.out_dim, self.num_tasks, self.steps, self.seed = x, y, num_classes, num_tasks, steps, seed

    def task(self, index: int) -> Task:
        self._check(index)
        perm = permutation(self.x.shape[1], self.seed, index)
        return Task(index, self.x[:, perm], self.y, self.steps, self.y)


def sin_features_target(x: Tensor, out_dim: int, hidden: int, frequency: float, gen: torch.Generator) -> Tensor:
    """g(x) = sin(frequency * (x W1 + b)) W2 from a random network, standardised per output over x."""
    w1 = torch.randn(x.shape[1], hidden, generator=gen) / math.sqrt(x.shape[1])
    b = torch.rand(hidden, generator=gen) * 2 * math.pi
    w2 = torch.randn(hidden, out_dim, generator=gen) / math.sqrt(hidden)
    g = torch.sin(frequency * (x @ w1) + b) @ w2
    return (g - g.mean(0)) / g.std(0).clamp_min(1e-8)


class TargetOffsetStream(Stream):
    """Task 0: regress `offset + g0(x)` for `pretrain_steps`; tasks 1..n: fresh zero-mean `g_t(x)`.

    plasticity.md §3 mechanism 2 and §6.3: a large offset c leaves the network much worse at
    fitting the fresh targets than a freshly initialised one.
    """

    kind: Kind = "regression"

    def __init__(self, x: Tensor, num_tasks: int, steps: int, pretrain_steps: int, offset: float, seed: int, *,
                 out_dim: int = 1, hidden: int = 256, frequency: float = 3.0) -> None:
        self.x, self.num_tasks, self.steps, self.pretrain_steps = x, num_tasks + 1, steps, pretrain_steps
        self.offset, self.seed, self.out_dim, self.hidden, self.frequency = offset, seed, out_dim, hidden, frequency

    def steps_of(self, index: int) -> int:
        self._check(index)
        return self.pretrain_steps if index == 0 else self.steps

    def task(self, index: int) -> Task:
        self._check(index)
        g = sin_features_target(self.x, self.out_dim, self.hidden, self.frequency, generator(self.seed, 3, index))
        if index == 0:
            return Task(0, self.x, self.offset + g, self.pretrain_steps)
        return Task(index, self.x, g, self.steps)


class BitFlipStream(Stream):
    """Slowly changing regression (Dohare et al.; plasticity.md §8): bit-flipping inputs, fixed LTU target.

    Inputs are `bits` binary features; the first `flipping` are slow bits, one of which flips at
    every task switch; the others are random per example. A task's data are all 2^(bits - flipping)
    inputs sharing its slow bits (uniform sampling from them is the online stream). The target is a
    fixed network of `hidden` linear threshold units with +-1 weights, threshold
    beta * bits - (number of negative input weights), and +-1 output weights.
    """

    kind: Kind = "regression"
    out_dim = 1

    def __init__(self, num_tasks: int, steps: int, seed: int, *, bits: int = 20, flipping: int = 15,
                 hidden: int = 100, beta: float = 0.7) -> None:
        if not 0 < flipping < bits or bits - flipping > 16:
            raise ValueError(f"need 0 < flipping < bits and at most 16 random bits, got bits={bits}, flipping={flipping}")
        self.num_tasks, self.steps, self.seed, self.bits, self.flipping = num_tasks, steps, seed, bits, flipping
        gen = generator(seed, 4, 0)
        self.slow0 = torch.randint(0, 2, (flipping,), generator=gen).float()
        self.flips = torch.randint(0, flipping, (max(num_tasks - 1, 0),), generator=gen)
        self.w_in = torch.randint(0, 2, (bits, hidden), generator=gen).float() * 2 - 1
        self.threshold = beta * bits - (self.w_in < 0).sum(0).float()
        self.w_out = torch.randint(0, 2, (hidden, 1), generator=gen).float() * 2 - 1
        fast = bits - flipping
        codes = torch.arange(2**fast)
        self.fast = ((codes[:, None] >> torch.arange(fast)) & 1).float()

    def slow_bits(self, index: int) -> Tensor:
        """The slow bits during task `index`: the initial ones with the first `index` flips applied."""
        slow = self.slow0.clone()
        for bit in self.flips[:index].tolist():
            slow[bit] = 1 - slow[bit]
        return slow

    def target(self, x: Tensor) -> Tensor:
        """The LTU network's output for binary inputs `[n, bits]`."""
        return ((x @ self.w_in) > self.threshold).float() @ self.w_out

    def task(self, index: int) -> Task:
        self._check(index)
        slow = self.slow_bits(index).expand(len(self.fast), -1)
        x = torch.cat([slow, self.fast], dim=1)
        return Task(index, x, self.target(x), self.steps)


class CompositeStream(Stream):
    """Every switch: a new input permutation, a label reset of `fraction`, and a larger target scale.

    Targets are `scale_t * one_hot(label_t)` with `scale_t = 1 + growth * t`, regressed with the
    network's outputs (plasticity.md §4: composite = input transformation + label reset + target
    growth). Accuracy is the argmax of the outputs against `label_t`.
    """

    kind: Kind = "regression"

    def __init__(self, x: Tensor, num_classes: int, num_tasks: int, steps: int, fraction: float, growth: float,
                 seed: int) -> None:
        self.x, self.out_dim, self.num_tasks, self.steps, self.growth, self.seed = (
            x, num_classes, num_tasks, steps, growth, seed)
        self._labels = _LabelResets(len(x), num_classes, fraction, seed, key=5)

    def scale(self, index: int) -> float:
        """Target scale of task `index`."""
        return 1.0 + self.growth * index

    def task(self, index: int) -> Task:
        self._check(index)
        labels = self._labels(index)
        x = self.x[:, permutation(self.x.shape[1], self.seed, index, key=6)]
        targets = self.scale(index) * F.one_hot(labels, self.out_dim).float()
        return Task(index, x, targets, self.steps, labels)
