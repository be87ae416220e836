"""Sharpness by power iteration on Hessian-vector products against an explicit Hessian's eigvalsh."""

import pytest
import torch
from torch.func import functional_call

from repdyn.models.mlp import MLP
from repdyn.probes.curvature import hessian_vector_product, top_hessian_eigenvalue


def _tiny(seed=0):
    torch.manual_seed(seed)
    model = MLP(3, 4, 2, 3, activation="tanh").double()
    x, y = torch.randn(7, 3, dtype=torch.float64), torch.randn(7, 2, dtype=torch.float64)
    return model, x, y


def _explicit_hessian(model, x, y):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(theta):
        parts, start = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            parts[name] = theta[start:start + shape.numel()].reshape(shape)
            start += shape.numel()
        return (functional_call(model, parts, (x,)) - y).square().mean()

    return torch.autograd.functional.hessian(loss, flat)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_power_iteration_matches_the_explicit_hessian(seed):
    model, x, y = _tiny(seed)
    eig = torch.linalg.eigvalsh(_explicit_hessian(model, x, y))
    dominant = float(eig[eig.abs().argmax()])
    found = top_hessian_eigenvalue(lambda: (model(x) - y).square().mean(), list(model.parameters()),
                                   iters=500, tol=1e-12, seed=seed)
    assert found == pytest.approx(dominant, rel=1e-6)


def test_hessian_vector_product_matches_the_explicit_hessian():
    model, x, y = _tiny()
    params = list(model.parameters())
    grads = torch.autograd.grad((model(x) - y).square().mean(), params, create_graph=True)
    v = [torch.randn_like(p) for p in params]
    hv = torch.cat([h.reshape(-1) for h in hessian_vector_product(grads, params, v)])
    expected = _explicit_hessian(model, x, y) @ torch.cat([t.reshape(-1) for t in v])
    assert torch.allclose(hv, expected, atol=1e-10)


def test_quadratic_with_known_spectrum():
    theta = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    a = torch.diag(torch.tensor([0.5, -1.0, 7.0, 2.0], dtype=torch.float64))
    assert top_hessian_eigenvalue(lambda: 0.5 * theta @ a @ theta, [theta], iters=300, tol=0) == pytest.approx(7.0)
