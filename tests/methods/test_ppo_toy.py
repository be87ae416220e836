"""The toy of ppo_collapse.md §6 against its table and against a loop with hand-derived gradients."""

import math

import pytest

from repdyn.methods.ppo_toy import ToyConfig, run_toy


def _hand_derived(alpha: float, cfg: ToyConfig) -> tuple[float, float]:
    """Same toy, gradients by hand: d r / d w = (+s, -s) * p (1 - p) / p_old while r <= 1 + eps, else 0."""
    w1, w2 = cfg.w
    states = (cfg.x, alpha * cfg.x)

    def p(s: float) -> float:
        return 1 / (1 + math.exp(-(w1 - w2) * s))

    old = [p(s) for s in states]
    for step in range(cfg.steps):
        s, i = states[step % 2], step % 2
        ratio = p(s) / old[i]
        if ratio <= 1 + cfg.clip_eps:  # gain = min(r, clip(r)) has slope 1 below the clip, 0 above
            g = p(s) * (1 - p(s)) / old[i] * s
            w1, w2 = w1 + cfg.lr * g, w2 - cfg.lr * g
    return p(states[0]) / old[0], p(states[1]) / old[1]


@pytest.mark.parametrize("alpha", [3.0, 2.0, 0.0, -1.0, -2.5])
def test_toy_matches_hand_derived_gradients(alpha):
    trace = run_toy(alpha)
    rx, ry = _hand_derived(alpha, ToyConfig())
    assert trace.ratio_x[-1] == pytest.approx(rx, rel=1e-12)
    assert trace.ratio_y[-1] == pytest.approx(ry, rel=1e-12)
    assert len(trace.ratio_x) == ToyConfig().steps + 1 and trace.ratio_x[0] == 1.0


def test_toy_reproduces_the_fact_sheet_table():
    # ppo_collapse.md §6: alpha 3 -> ratio_y 1.25, ratio_x 1.10; alpha -1 -> 1.01, 0.99; alpha 0 -> 1.00, 1.09
    for alpha, ry, rx in ((3.0, 1.25, 1.10), (-1.0, 1.01, 0.99), (0.0, 1.00, 1.09)):
        trace = run_toy(alpha)
        assert round(trace.ratio_y[-1], 2) == ry and round(trace.ratio_x[-1], 2) == rx
    assert run_toy(0.0).ratio_y == [1.0] * 21  # y's feature is 0: it never moves
    # Clipping does bound the state that is being updated while aliasing is off.
    assert max(run_toy(0.0).ratio_x) < 1.1 + 0.01
