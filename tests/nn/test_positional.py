"""Position encodings against hand-derived values (and the official T5 bucket function)."""

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from repdyn.nn.positional import (
    T5RelativeBias,
    alibi_bias,
    alibi_slopes,
    sinusoidal_embedding,
    t5_relative_bucket,
)
from repdyn.nn.rope import apply_rope

FIXTURE = Path(__file__).parents[1] / "fixtures" / "hypernetwork" / "official_attention.safetensors"


def test_rope_rotates_channel_pairs_by_hand_derived_angles():
    """head_dim 4, base 100: pairs (0, 2) turn at 1 rad/step, (1, 3) at 100^(-1/2) = 0.1."""
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64).view(1, 1, 1, 4)
    p = 3
    out = apply_rope(x, torch.tensor([[p]]), base=100.0).flatten()
    c0, s0, c1, s1 = math.cos(p), math.sin(p), math.cos(0.1 * p), math.sin(0.1 * p)
    expected = [1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 3 * c0 + 1 * s0, 4 * c1 + 2 * s1]
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64), atol=1e-6, rtol=0)


def test_rope_equals_complex_rotation_and_leaves_unrotated_channels():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 12, dtype=torch.float64)
    positions = torch.randint(0, 1000, (2, 5))
    out = apply_rope(x, positions, fraction=2 / 3)  # rotates the first 8 of 12 channels
    rot = 8
    freqs = 10_000.0 ** (-torch.arange(rot // 2, dtype=torch.float64) * 2 / rot)
    z = torch.complex(x[..., : rot // 2], x[..., rot // 2 : rot])
    z = z * torch.exp(1j * positions[..., None, None].double() * freqs)
    expected = torch.cat([z.real, z.imag, x[..., rot:]], dim=-1)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)  # angles are float32
    assert torch.equal(out[..., rot:], x[..., rot:])


def test_rope_preserves_norms_and_gives_relative_dot_products():
    torch.manual_seed(1)
    q, k = torch.randn(2, 1, 1, 1, 16, dtype=torch.float64).unbind(0)
    for m, n in [(0, 0), (5, 2), (40, 7)]:
        qm = apply_rope(q, torch.tensor([[m]]))
        kn = apply_rope(k, torch.tensor([[n]]))
        torch.testing.assert_close(qm.norm(), q.norm())
        shifted = (apply_rope(q, torch.tensor([[m + 11]])) * apply_rope(k, torch.tensor([[n + 11]]))).sum()
        torch.testing.assert_close((qm * kn).sum(), shifted, atol=1e-5, rtol=0)


def test_rope_rejects_an_odd_rotated_width():
    with pytest.raises(ValueError, match="even"):
        apply_rope(torch.zeros(1, 1, 1, 6), torch.zeros(1, 1, dtype=torch.long), fraction=0.5)


@pytest.mark.parametrize(
    "heads, exponents",
    [
        (8, [1, 2, 3, 4, 5, 6, 7, 8]),  # 2^(-8/8 * i)
        (4, [2, 4, 6, 8]),
        (6, [2, 4, 6, 8, 1, 3]),  # 4 power-of-two slopes, then every other slope of 8 heads
        (1, [8]),
    ],
)
def test_alibi_slopes(heads, exponents):
    expected = torch.tensor([2.0**-e for e in exponents])
    torch.testing.assert_close(alibi_slopes(heads), expected)


def test_alibi_bias_is_minus_slope_times_distance():
    slopes = alibi_slopes(2)  # 1/16, 1/256
    pos = torch.arange(4)[None]
    bias = alibi_bias(slopes, pos, pos)
    assert bias.shape == (1, 2, 4, 4)
    assert bias[0, 0, 3, 0] == -3 / 16 and bias[0, 1, 3, 1] == -2 / 256 and bias[0, 0, 2, 2] == 0


def test_sinusoidal_table_values():
    table = sinusoidal_embedding(torch.tensor([[0, 1, 7]]), dim=4)[0].double()
    expected = torch.tensor(
        [
            [0.0, 1.0, 0.0, 1.0],
            [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],  # 10000^(2/4) = 100
            [math.sin(7), math.cos(7), math.sin(0.07), math.cos(0.07)],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(table, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "relative, bidirectional, expected",
    [
        (0, False, 0),
        (-5, False, 5),
        (-15, False, 15),  # max_exact = 16: exact buckets 0..15
        (-16, False, 16),  # 16 + floor(log(1) / log(8) * 16)
        (-32, False, 21),  # 16 + floor(log(2) / log(8) * 16) = 16 + 5
        (-127, False, 31),
        (-500, False, 31),  # clipped to the last bucket
        (7, False, 0),  # unidirectional: a later key falls in bucket 0
        (-3, True, 3),
        (3, True, 19),  # later keys use the upper 16 buckets
        (20, True, 26),  # 16 + 8 + floor(log(20/8) / log(16) * 8) = 16 + 8 + 2
    ],
)
def test_t5_bucket_on_chosen_distances(relative, bidirectional, expected):
    got = t5_relative_bucket(
        torch.tensor([relative]), bidirectional=bidirectional, num_buckets=32, max_distance=128
    )
    assert got.item() == expected


def test_t5_bucket_matches_official_function():
    t = load_file(FIXTURE)
    relative = t["bucket.relative_position"]
    for key, expected in t.items():
        if key.startswith("bucket.") and key != "bucket.relative_position":
            _, bidirectional, buckets, max_distance = key.split(".")
            got = t5_relative_bucket(
                relative,
                bidirectional=bool(int(bidirectional)),
                num_buckets=int(buckets),
                max_distance=int(max_distance),
            )
            assert torch.equal(got, expected), key


def test_t5_relative_bias_reads_the_table_at_each_pairs_bucket():
    torch.manual_seed(0)
    rel = T5RelativeBias(3, num_buckets=8, max_distance=8, bidirectional=True)
    pos = torch.arange(6)[None]
    bias = rel(pos, pos)
    assert bias.shape == (1, 3, 6, 6)
    for q in range(6):
        for k in range(6):
            bucket = t5_relative_bucket(
                torch.tensor(k - q), bidirectional=True, num_buckets=8, max_distance=8
            )
            torch.testing.assert_close(bias[0, :, q, k], rel.table[:, bucket])
