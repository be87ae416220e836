"""Causal depthwise temporal convolution with document masking and a carried state (§1.2).

y_t = b + sum_{s=0}^{K-1} w[K-1-s] * x_{t-s}, so w[K-1] multiplies the current token. An input
x_{t-s} is dropped when a document starts in (t-s, t] (reset = segment_pos == 0), exactly as the
official training-mode mask does. The state is the last K-1 inputs; inputs that precede the
latest document start are stored as zeros, so continuing from a state equals one long call.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from repdyn.nn.scan import may_hold_true


class Conv1D(nn.Module):
    """Depthwise causal conv of temporal width K over channels L: weight w [K, L], bias b [L]."""

    def __init__(
        self, width: int, temporal_width: int = 4, w_init_variance_scale: float = 0.01
    ) -> None:
        super().__init__()
        self.temporal_width = temporal_width  # griffin.md §1.2: width 4
        self.w_init_variance_scale = w_init_variance_scale  # griffin.md §1.4: N(0, 0.01 / 4)
        self.w = nn.Parameter(torch.empty(temporal_width, width))
        self.b = nn.Parameter(torch.empty(width))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = math.sqrt(self.w_init_variance_scale / self.temporal_width)
        nn.init.normal_(self.w, std=std)
        nn.init.zeros_(self.b)

    def empty_state(
        self, batch: int, dtype: torch.dtype, device: torch.device | None = None
    ) -> Tensor:
        """The state before any token: K-1 zero inputs, [B, K-1, L]."""
        return torch.zeros(
            batch, self.temporal_width - 1, self.w.shape[1], dtype=dtype, device=device
        )

    def forward(
        self, x: Tensor, reset: Tensor, state: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Convolve x [B, T, L] given resets [B, T]; return (y [B, T, L], new state [B, K-1, L])."""
        batch, length, _ = x.shape
        past = self.temporal_width - 1
        if state is None:
            state = self.empty_state(batch, x.dtype, x.device)
        padded = torch.cat([state.to(x.dtype), x], dim=1)  # chunk position t sits at t + past
        has_reset = may_hold_true(reset)
        if has_reset:
            # resets_upto[:, past + t] = resets in chunk positions <= t; stored inputs count none.
            resets_upto = nn.functional.pad(torch.cumsum(reset.to(torch.int32), dim=1), (past, 0))
        y = None
        for shift in range(self.temporal_width):
            tap = padded[:, past - shift : past - shift + length]
            if shift and has_reset:
                # keep x_{t-shift} only when no document starts in (t - shift, t]
                started = (
                    resets_upto[:, past:] - resets_upto[:, past - shift : past - shift + length]
                )
                tap = tap * (started == 0).to(x.dtype)[..., None]
            term = tap * self.w[past - shift]
            y = term if y is None else y + term
        y = y + self.b
        new_state = padded[:, -past:]
        if has_reset:  # drop stored inputs that come before the latest document start
            after_latest_start = resets_upto[:, -1:] - resets_upto[:, -past:] == 0
            new_state = new_state * after_latest_start.to(x.dtype)[..., None]
        return y, new_state
