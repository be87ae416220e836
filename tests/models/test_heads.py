"""Output heads: two-hot and HL-Gauss encodings against their definitions; bounded gradients at any scale."""

import itertools
import math

import pytest
import torch

from repdyn.models.heads import (
    ClassificationReadout,
    DistributionalReadout,
    RegressionReadout,
    hl_gauss,
    symlog_support,
    two_hot,
    uniform_support,
)


def test_two_hot_puts_linear_weights_on_the_two_neighbouring_bins():
    support = torch.tensor([-2.0, 0.0, 1.0, 5.0])
    probs = two_hot(torch.tensor([0.25, 3.0, 1.0, 9.0, -7.0]), support)
    expected = torch.tensor([[0, 0.75, 0.25, 0], [0, 0, 0.5, 0.5], [0, 0, 1.0, 0], [0, 0, 0, 1.0], [1.0, 0, 0, 0]])
    assert torch.allclose(probs, expected)


def test_two_hot_mean_is_the_target_on_a_symlog_support():
    support = symlog_support(200.0, 101)
    y = torch.tensor([[-150.0], [-0.3], [0.0], [0.07], [3.3], [99.9]])
    probs = two_hot(y, support)
    assert torch.allclose(probs.sum(-1), torch.ones(6, 1))
    assert torch.allclose(probs @ support, y, atol=1e-4)
    assert ((probs > 0).sum(-1) <= 2).all()


def test_supports():
    s = symlog_support(100.0, 11)
    assert torch.allclose(s, -s.flip(0)) and s[0] == pytest.approx(-100.0) and s[5] == 0
    assert (s[6:] - s[5:-1]).diff().gt(0).all()  # spacing grows away from zero
    assert torch.allclose(uniform_support(3.0, 7), torch.arange(-3.0, 4.0))


def test_hl_gauss_integrates_a_gaussian_over_the_bins():
    support = uniform_support(10.0, 21)
    y, sigma = torch.tensor([1.3]), 0.75
    probs = hl_gauss(y, support, sigma)
    edges = torch.arange(-10.5, 11.0, 1.0)
    phi = [0.5 * (1 + math.erf((e - 1.3) / (sigma * math.sqrt(2)))) for e in edges.tolist()]
    mass = torch.tensor([b - a for a, b in itertools.pairwise(phi)])
    assert torch.allclose(probs[0], (mass / mass.sum()).float(), atol=1e-6)
    assert float(probs[0] @ support) == pytest.approx(1.3, abs=1e-4)


@pytest.mark.parametrize("kind", ["twohot", "hlgauss"])
def test_distributional_loss_gradient_is_bounded_for_any_target_scale(kind):
    head = DistributionalReadout(2, symlog_support(1000.0, 51), kind)
    out = torch.zeros(4, head.out_dim, requires_grad=True)
    for scale in (1.0, 500.0):
        out.grad = None
        head.loss(out, torch.full((4, 2), scale)).backward()
        # d CE / d logits = (softmax - target probs) / (n * dim): each row has L1 norm <= 2.
        assert out.grad.abs().sum() <= 2.0 + 1e-6
    assert head.predict(torch.zeros(3, head.out_dim)).shape == (3, 2)
    assert torch.allclose(head.predict(torch.zeros(1, head.out_dim)), torch.zeros(1, 2), atol=1e-3)


def test_plain_readouts():
    out, labels = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    assert ClassificationReadout(3).loss(out, labels) == torch.nn.functional.cross_entropy(out, labels)
    assert RegressionReadout(3).loss(out, out + 2) == pytest.approx(4.0)
