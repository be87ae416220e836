"""Plasticity interventions for an `MLP`, combinable, and a learner that applies them while training.

Each intervention targets one mechanism of plasticity loss (plasticity.md §5, probes.md §7):

| intervention            | what it does                                                            | mechanism        |
|-------------------------|-------------------------------------------------------------------------|------------------|
| LayerNorm (`MLP(norm=)`)| normalise pre-activations before each nonlinearity                       | pre-act. shift   |
| `l2_penalty`            | coupled L2: loss + coef/2 * sum W^2 (gradient + coef * W)                | norm growth      |
| decoupled weight decay  | AdamW: W <- W - lr * wd * W each step                                    | norm growth      |
| `l2_init_penalty`       | loss + coef/2 * sum (theta - theta_0)^2 (regenerative L2)                | norm, units      |
| `shrink_perturb`        | theta <- shrink * theta + noise * theta_fresh (Ash & Adams 2020)         | norm, units      |
| `ReDo`                  | recycle dormant units, zero their optimizer moments (Sokar et al. 2023)  | dead units       |
| `ContinualBackprop`     | replace low-utility mature units at a fixed rate (Dohare et al. 2024)    | dead units, rank |
| `reset_layers`          | re-initialise all (full reset) or the last k layers (partial reset)      | everything       |
| distributional head     | `repdyn.models.heads.DistributionalReadout`                              | target scale     |

L2 and weight decay act on the Linear layers' weight matrices W only, not on biases or LayerNorm
gains and shifts (plasticity.md §5 leaves this open): decaying a LayerNorm gain towards 0 would
silence its unit, the failure LayerNorm is there to prevent.
Re-initialised units draw their incoming weights from PyTorch's `nn.Linear` initialisation,
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the network's own initial distribution (dopamine's ReDo and
lop's continual backprop also use their network's initializer), with the incoming bias at zero.
Random draws use torch's global generator, which checkpoints capture, so a resumed run repeats them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from repdyn.models.heads import Readout
from repdyn.models.mlp import MLP
from repdyn.probes.units import dormant_mask

# ---- penalties and parameter maps ---------------------------------------------------------------

def l2_penalty(params: Iterable[Tensor], coef: float) -> Tensor:
    """Coupled L2: coef/2 * sum of squared parameters (its gradient adds coef * theta)."""
    return 0.5 * coef * sum(p.square().sum() for p in params)


def l2_init_penalty(named_params: Iterable[tuple[str, Tensor]], init: dict[str, Tensor], coef: float) -> Tensor:
    """L2 towards the initial weights (Kumar et al. 2023): coef/2 * sum (theta - theta_0)^2."""
    return 0.5 * coef * sum((p - init[name]).square().sum() for name, p in named_params)


@torch.no_grad()
def shrink_perturb(model: nn.Module, fresh: nn.Module, shrink: float, noise: float) -> None:
    """Shrink-and-perturb: theta <- shrink * theta + noise * theta_fresh, theta_fresh a fresh initialisation."""
    for p, q in zip(model.parameters(), fresh.parameters(), strict=True):
        p.mul_(shrink).add_(q, alpha=noise)


def linear_init_bound(layer: nn.Linear) -> float:
    """Half-width of PyTorch's default `nn.Linear` weight initialisation: 1 / sqrt(fan_in)."""
    return 1.0 / math.sqrt(layer.in_features)


def zero_optimizer_state(optimizer: torch.optim.Optimizer, param: Tensor, index: Any) -> None:
    """Zero Adam's moment estimates of `param[index]` (no-op before the first step)."""
    state = optimizer.state.get(param)
    if not state:
        return
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        if key in state:
            state[key][index] = 0.0


@torch.no_grad()
def reinit_incoming(model: MLP, optimizer: torch.optim.Optimizer, layer: int, units: Tensor) -> None:
    """Fresh incoming weights, zero incoming bias, LayerNorm gain 1 and shift 0 for hidden `units` of
    `layer`; their optimizer moments are zeroed."""
    if units.numel() == 0:
        return
    incoming, norm = model.layers[layer], model.norms[layer]
    bound = linear_init_bound(incoming)
    incoming.weight[units] = torch.empty(len(units), incoming.in_features).uniform_(-bound, bound).to(incoming.weight)
    zero_optimizer_state(optimizer, incoming.weight, units)
    if incoming.bias is not None:
        incoming.bias[units] = 0.0
        zero_optimizer_state(optimizer, incoming.bias, units)
    if isinstance(norm, nn.LayerNorm) and norm.elementwise_affine:
        norm.weight[units] = 1.0
        norm.bias[units] = 0.0
        zero_optimizer_state(optimizer, norm.weight, units)
        zero_optimizer_state(optimizer, norm.bias, units)


@torch.no_grad()
def zero_outgoing(model: MLP, optimizer: torch.optim.Optimizer, layer: int, units: Tensor) -> None:
    """Zero the outgoing weights of hidden `units` of `layer` and their optimizer moments."""
    outgoing = model.layers[layer + 1]
    outgoing.weight[:, units] = 0.0
    zero_optimizer_state(optimizer, outgoing.weight, (slice(None), units))


def reinit_units(model: MLP, optimizer: torch.optim.Optimizer, units: dict[int, Tensor]) -> None:
    """Re-initialise hidden units, `{layer: unit indices}`: every incoming side first, then every
    outgoing side, so a recycled unit's outgoing weights are zero even when the next layer's units
    are recycled too."""
    for layer, chosen in units.items():
        reinit_incoming(model, optimizer, layer, chosen)
    for layer, chosen in units.items():
        zero_outgoing(model, optimizer, layer, chosen)


@torch.no_grad()
def reset_layers(model: MLP, optimizer: torch.optim.Optimizer, count: int) -> None:
    """Re-initialise the last `count` Linear layers (and the LayerNorms feeding them) and drop their
    optimizer state: `count = depth` is a full reset, `count = 1` resets the output layer."""
    depth = len(model.layers)
    for index in range(max(depth - count, 0), depth):
        modules = [model.layers[index]] + ([model.norms[index]] if index < depth - 1 else [])
        for module in modules:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            for p in module.parameters():
                optimizer.state.pop(p, None)


def hidden_and_output(model: MLP, x: Tensor) -> tuple[list[Tensor], Tensor]:
    """Post-activation features of every hidden layer and the network's output, in one pass."""
    feats = model.hidden(x)
    return feats, model.layers[-1](feats[-1])


# ---- unit recycling ---------------------------------------------------------------------------

@dataclass
class ReDo:
    """Recycling dormant neurons (Sokar et al. 2023; probes.md §7): every `every` steps, hidden units
    whose ReDo score on the batch is <= `tau` are re-initialised (`reinit_units`). Never the output layer."""

    tau: float = 0.025
    every: int = 1000

    @torch.no_grad()
    def recycle(self, model: MLP, optimizer: torch.optim.Optimizer, x: Tensor) -> int:
        """Recycle the dormant units found on batch `x`; returns how many."""
        units = {layer: dormant_mask(feats, self.tau).nonzero().flatten()
                 for layer, feats in enumerate(model.hidden(x))}
        reinit_units(model, optimizer, units)
        return sum(len(u) for u in units.values())


class ContinualBackprop:
    """Continual backprop (Dohare et al. 2024; probes.md §7): utility-based replacement of hidden units.

    Per hidden unit a running utility u <- eta u + (1 - eta) |h| mean|w_out| (mean over the batch of
    the unit's "contribution"), a running mean activation and an age. After each step, among units
    older than `maturity`, `rate` x (number eligible) units are due; fractional counts accumulate
    across steps. The lowest bias-corrected-utility units are replaced: their mean contribution is
    folded into the next layer's bias, then `reinit_units`, and their statistics restart at zero.
    """

    def __init__(self, model: MLP, rate: float, maturity: int = 100, decay: float = 0.99) -> None:
        self.rate, self.maturity, self.decay = rate, maturity, decay
        widths = [layer.out_features for layer in model.layers[:-1]]
        self.state: dict[str, Tensor] = {}
        for i, w in enumerate(widths):
            self.state[f"utility/{i}"] = torch.zeros(w)
            self.state[f"mean/{i}"] = torch.zeros(w)
            self.state[f"age/{i}"] = torch.zeros(w, dtype=torch.long)
            self.state[f"pending/{i}"] = torch.zeros(())
        self.layers = len(widths)

    @torch.no_grad()
    def observe(self, model: MLP, feats: list[Tensor]) -> None:
        """Update ages, running mean activations and utilities from one batch of hidden features."""
        eta = self.decay
        for i, h in enumerate(feats):
            h = h.detach()
            out_weight = model.layers[i + 1].weight.detach().abs().mean(0)
            self.state[f"age/{i}"] += 1
            self.state[f"mean/{i}"].mul_(eta).add_(h.mean(0).cpu(), alpha=1 - eta)
            self.state[f"utility/{i}"].mul_(eta).add_((h.abs().mean(0) * out_weight).cpu(), alpha=1 - eta)

    def _corrected(self, name: str, i: int) -> Tensor:
        age = self.state[f"age/{i}"].double()
        return (self.state[f"{name}/{i}"].double() / (1 - self.decay**age).clamp_min(1e-12)).float()

    @torch.no_grad()
    def replace(self, model: MLP, optimizer: torch.optim.Optimizer) -> int:
        """Replace the units due this step; returns how many."""
        chosen: dict[int, Tensor] = {}
        for i in range(self.layers):
            eligible = (self.state[f"age/{i}"] > self.maturity).nonzero().flatten()
            self.state[f"pending/{i}"] += self.rate * len(eligible)
            count = int(self.state[f"pending/{i}"].floor())
            if count == 0:
                continue
            self.state[f"pending/{i}"] -= count
            utility = self._corrected("utility", i)[eligible]
            units = eligible[torch.argsort(utility, stable=True)[:count]]
            nxt = model.layers[i + 1]
            if nxt.bias is not None:
                nxt.bias += nxt.weight[:, units.to(nxt.weight.device)] @ self._corrected("mean", i)[units].to(nxt.weight)
            for name in ("utility", "mean", "age"):
                self.state[f"{name}/{i}"][units] = 0
            chosen[i] = units.to(nxt.weight.device)
        reinit_units(model, optimizer, chosen)
        return sum(len(u) for u in chosen.values())


# ---- the learner ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Interventions:
    """Which interventions are on and how strong (0 / 1.0 / False = off)."""

    layer_norm: bool = False
    l2: float = 0.0
    weight_decay: float = 0.0
    l2_init: float = 0.0
    snp_shrink: float = 1.0
    snp_noise: float = 0.0
    snp_every: int = 0
    """Shrink-and-perturb every this many steps; 0 = at each task switch."""
    redo_every: int = 0
    redo_tau: float = 0.025
    cbp_rate: float = 0.0
    cbp_maturity: int = 100
    cbp_decay: float = 0.99
    reset_layers: int = 0
    """Re-initialise the last this many Linear layers at each task switch (depth = full reset)."""

    @property
    def snp(self) -> bool:
        """Whether shrink-and-perturb is on."""
        return self.snp_shrink != 1.0 or self.snp_noise != 0.0


class PlasticLearner:
    """An MLP, its optimizer (Adam, or AdamW with decoupled decay) and the configured interventions.

    `start_task(t)` applies the task-switch interventions; `step(x, y, step)` makes one update and
    applies the per-step ones. `state()` is everything a checkpoint needs besides the global RNG.
    """

    def __init__(self, build_model: Callable[[], MLP], readout: Readout, interventions: Interventions,
                 lr: float) -> None:
        self.build_model, self.readout, self.iv, self.lr = build_model, readout, interventions, lr
        self.model = build_model()
        self.decayed = [layer.weight for layer in self.model.layers]
        if interventions.weight_decay > 0:
            kept = [p for p in self.model.parameters() if all(p is not w for w in self.decayed)]
            groups = [{"params": self.decayed, "weight_decay": interventions.weight_decay},
                      {"params": kept, "weight_decay": 0.0}]
            self.optimizer = torch.optim.AdamW(groups, lr=lr)
        else:
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.init = {k: v.detach().clone() for k, v in self.model.named_parameters()}
        self.redo = ReDo(interventions.redo_tau, interventions.redo_every) if interventions.redo_every else None
        self.cbp = (ContinualBackprop(self.model, interventions.cbp_rate, interventions.cbp_maturity,
                                      interventions.cbp_decay) if interventions.cbp_rate > 0 else None)
        self.counters = {"recycled": 0, "replaced": 0}

    def state(self) -> dict[str, Any]:
        """Checkpointable state: model, optimizer, initial weights, unit statistics and counters."""
        out: dict[str, Any] = {"model": self.model, "optimizer": self.optimizer, "init": self.init,
                               "counters": self.counters}
        if self.cbp is not None:
            out["cbp"] = self.cbp.state
        return out

    def _perturb(self) -> None:
        shrink_perturb(self.model, self.build_model().to(next(self.model.parameters())), self.iv.snp_shrink,
                       self.iv.snp_noise)

    def start_task(self, index: int) -> None:
        """Task-switch interventions (none before the first task): resets, shrink-and-perturb."""
        if index == 0:
            return
        if self.iv.reset_layers:
            reset_layers(self.model, self.optimizer, self.iv.reset_layers)
        if self.iv.snp and self.iv.snp_every == 0:
            self._perturb()

    def loss(self, out: Tensor, targets: Tensor) -> Tensor:
        """Training loss: the readout's loss plus the configured penalties."""
        loss = self.readout.loss(out, targets)
        if self.iv.l2:
            loss = loss + l2_penalty(self.decayed, self.iv.l2)
        if self.iv.l2_init:
            loss = loss + l2_init_penalty(self.model.named_parameters(), self.init, self.iv.l2_init)
        return loss

    def step(self, x: Tensor, targets: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """One update on a batch (global update index `step`); returns the loss and the raw outputs,
        detached and on the device (reading them waits for the device)."""
        feats, out = hidden_and_output(self.model, x)
        loss = self.loss(out, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        done = step + 1
        if self.cbp is not None:
            self.cbp.observe(self.model, feats)
            self.counters["replaced"] += self.cbp.replace(self.model, self.optimizer)
        if self.redo is not None and done % self.redo.every == 0:
            self.counters["recycled"] += self.redo.recycle(self.model, self.optimizer, x)
        if self.iv.snp and self.iv.snp_every and done % self.iv.snp_every == 0:
            self._perturb()
        return loss.detach(), out.detach()
