"""RoPE: the rotation as complex numbers, the fraction, and relative-position invariance."""

import pytest
import torch

from repdyn.nn.rope import apply_rope


def test_rope_is_a_complex_rotation_of_non_interleaved_halves():
    x = torch.randn(2, 5, 3, 16, dtype=torch.float64)
    pos = torch.randint(0, 1000, (2, 5))
    y = apply_rope(x, pos, base=10_000.0, fraction=0.5)
    rot = 8  # rotated channels: pairs (i, i + 4), i < 4
    z = torch.complex(x[..., : rot // 2], x[..., rot // 2 : rot])
    theta = pos[..., None, None].double() / 10_000.0 ** (
        2 * torch.arange(rot // 2, dtype=torch.float64) / rot
    )
    z = z * torch.exp(1j * theta)
    torch.testing.assert_close(
        y[..., : rot // 2], z.real, atol=1e-5, rtol=0
    )  # angles are fp32 as in the official code
    torch.testing.assert_close(y[..., rot // 2 : rot], z.imag, atol=1e-5, rtol=0)
    assert torch.equal(y[..., rot:], x[..., rot:])


def test_scores_depend_only_on_relative_position():
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(pq, pk):
        return (apply_rope(q, torch.tensor([[pq]])) * apply_rope(k, torch.tensor([[pk]]))).sum()

    torch.testing.assert_close(score(10, 3), score(107, 100), atol=1e-4, rtol=0)
    assert not torch.allclose(score(10, 3), score(10, 4))


def test_position_zero_is_identity_and_odd_width_is_refused():
    x = torch.randn(1, 2, 1, 8)
    torch.testing.assert_close(apply_rope(x, torch.zeros(1, 2, dtype=torch.long)), x)
    with pytest.raises(ValueError, match="even"):
        apply_rope(torch.randn(1, 2, 1, 6), torch.zeros(1, 2, dtype=torch.long), fraction=0.5)
