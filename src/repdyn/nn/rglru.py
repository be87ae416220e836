"""Griffin's Real-Gated Linear Recurrent Unit (RG-LRU), as the official code has it (§1.3-1.4).

    r_t = sigmoid(BD_a u_t),   i_t = sigmoid(BD_x u_t),   log a_t = -c * r_t * softplus(a_param)
    h_t = a_t * h_{t-1} + sqrt(1 - a_t^2) * (i_t * u_t),   c = 8

At a document start (segment_pos == 0) a_t := 0 and the sqrt multiplier := 1, so h_t = i_t * u_t.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from repdyn.nn.scan import linear_scan

GATE_CONSTANT = 8.0  # griffin.md §1.3: c = 8
MAX_SQRT_GRADIENT = 1000.0  # griffin.md §1.3: d sqrt(x)/dx clipped to <= 1000
A_INIT_RANGE = (0.9, 0.999)  # griffin.md §1.4: a^2 ~ U[0.81, 0.998], i.e. a in [0.9, 0.999]


class _SqrtBoundedGradient(torch.autograd.Function):
    """sqrt(x) whose derivative 1 / (2 sqrt x) is clipped at MAX_SQRT_GRADIENT (no bf16 NaNs)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.sqrt(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad / torch.sqrt(torch.clamp(4.0 * x, min=1.0 / MAX_SQRT_GRADIENT**2))


def sqrt_bounded_gradient(x: Tensor) -> Tensor:
    """sqrt with a gradient bounded by MAX_SQRT_GRADIENT."""
    return _SqrtBoundedGradient.apply(x)


def init_a_param_(
    a_param: Tensor, min_rad: float = A_INIT_RANGE[0], max_rad: float = A_INIT_RANGE[1]
) -> Tensor:
    """Fill a_param so that a = exp(-softplus(a_param)) has a^2 ~ U[min_rad^2, max_rad^2]."""
    with torch.no_grad():
        a_param.uniform_(min_rad**2 + 1e-8, max_rad**2 + 1e-8)
        # a_param = softplus^{-1}(-log a) = log(exp(-log a) - 1), with log a = log(a^2) / 2
        return a_param.log_().mul_(0.5).neg_().exp_().sub_(1.0).log_()


class BlockDiagonalLinear(nn.Module):
    """x -> W x + b with W block-diagonal: H blocks of size (L/H)^2; w [H, L/H, L/H], b [H, L/H]."""

    def __init__(self, width: int, num_blocks: int, w_init_variance_scale: float = 1.0) -> None:
        super().__init__()
        if width % num_blocks:
            raise ValueError(f"width {width} is not divisible by num_blocks {num_blocks}")
        self.num_blocks = num_blocks
        self.w_init_variance_scale = w_init_variance_scale
        block = width // num_blocks
        self.w = nn.Parameter(torch.empty(num_blocks, block, block))
        self.b = nn.Parameter(torch.empty(num_blocks, block))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # griffin.md §1.4: N(0, 1 / block_width)
        nn.init.normal_(self.w, std=math.sqrt(self.w_init_variance_scale / self.w.shape[1]))
        nn.init.zeros_(self.b)

    def forward(self, x: Tensor) -> Tensor:
        blocks = x.reshape(-1, self.num_blocks, self.w.shape[1]).transpose(0, 1)  # [H, N, L/H]
        y = torch.baddbmm(self.b[:, None, :], blocks, self.w)
        return y.transpose(0, 1).reshape(x.shape)


class RGLRU(nn.Module):
    """The gated diagonal recurrence over L channels; state h [B, L] kept in fp32."""

    def __init__(self, width: int, num_heads: int, w_init_variance_scale: float = 1.0) -> None:
        super().__init__()
        self.a_param = nn.Parameter(torch.empty(width))
        self.input_gate = BlockDiagonalLinear(width, num_heads, w_init_variance_scale)
        self.a_gate = BlockDiagonalLinear(width, num_heads, w_init_variance_scale)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.input_gate.reset_parameters()
        self.a_gate.reset_parameters()
        init_a_param_(self.a_param)

    def coefficients(self, u: Tensor, reset: Tensor) -> tuple[Tensor, Tensor]:
        """The recurrence h_t = a_t * h_{t-1} + b_t for inputs u [B, T, L]: returns (a, b).

        `a` is before the reset mask (the scan applies it); `b` already uses the reset rule.
        """
        gate_x = torch.sigmoid(self.input_gate(u))
        gate_a = torch.sigmoid(self.a_gate(u))
        log_a = -GATE_CONSTANT * gate_a * nn.functional.softplus(self.a_param)
        a = torch.exp(log_a)
        multiplier = sqrt_bounded_gradient(1.0 - torch.exp(2.0 * log_a))
        multiplier = torch.where(reset[..., None], 1.0, multiplier)
        return a, u * gate_x * multiplier.to(u.dtype)

    def forward(
        self, u: Tensor, reset: Tensor, state: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Run over u [B, T, L] from state [B, L] (zeros if None) -> (h, last state in fp32)."""
        a, b = self.coefficients(u, reset)
        return linear_scan(a, b, state, reset)
