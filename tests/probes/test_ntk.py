"""The empirical NTK, both ways, against an explicit Jacobian product; its rank and condition number."""

import pytest
import torch
from torch import nn
from torch.func import functional_call

from repdyn.models.mlp import MLP
from repdyn.probes.ntk import (
    empirical_ntk,
    factorised_ntk,
    jacobian_ntk,
    ntk_stats,
    supports_factorised,
)


def _explicit(model, x, output_fn=lambda out: out):
    """Theta = J J^T with J the full Jacobian of every output of every sample w.r.t. every parameter."""
    names = [n for n, _ in model.named_parameters()]

    def f(*params):
        return output_fn(functional_call(model, dict(zip(names, params, strict=True)), (x,))).reshape(-1)

    jac = torch.autograd.functional.jacobian(f, tuple(model.parameters()))
    j = torch.cat([part.reshape(part.shape[0], -1) for part in jac], dim=1)
    return j @ j.T


def _model(norm):
    torch.manual_seed(0)
    model = MLP(5, 7, 3, 3, norm=norm).double()
    if norm == "layer":  # non-trivial LayerNorm affine parameters
        with torch.no_grad():
            for ln in model.norms:
                ln.weight.normal_()
                ln.bias.normal_()
    return model


@pytest.mark.parametrize("norm", ["none", "layer"])
@pytest.mark.parametrize("ntk", [jacobian_ntk, factorised_ntk])
def test_ntk_matches_explicit_jacobian_product(norm, ntk):
    model, x = _model(norm), torch.randn(4, 5, dtype=torch.float64)
    full = _explicit(model, x)
    assert torch.allclose(ntk(model, x, mode="full"), full, atol=1e-10)
    trace = full.reshape(4, 3, 4, 3).diagonal(dim1=1, dim2=3).sum(-1)
    assert torch.allclose(ntk(model, x, mode="trace"), trace, atol=1e-10)


def test_output_function_is_differentiated_through():
    model, x = _model("none"), torch.randn(4, 5, dtype=torch.float64)
    readout = torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)
    expected = _explicit(model, x, lambda out: out @ readout)
    assert torch.allclose(factorised_ntk(model, x, output_fn=lambda out: out @ readout), expected, atol=1e-10)
    assert torch.allclose(jacobian_ntk(model, x, output_fn=lambda out: out @ readout), expected, atol=1e-10)


def test_models_outside_the_fast_path_use_jacobians():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Unflatten(1, (1, 6)), nn.Conv1d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(8, 2)).double()
    x = torch.randn(3, 6, dtype=torch.float64)
    assert not supports_factorised(model) and supports_factorised(_model("layer"))
    assert torch.allclose(empirical_ntk(model, x, mode="full"), _explicit(model, x), atol=1e-10)
    with pytest.raises(ValueError, match="nn.Linear or nn.LayerNorm"):
        factorised_ntk(model, x)


def test_ntk_stats_on_known_spectra():
    stats = ntk_stats(torch.diag(torch.tensor([4.0, 2.0, 1.0, 0.5])))
    assert stats == {"rank": 4.0, "condition": 8.0, "max_eig": 4.0}
    low_rank = torch.ones(5, 5)  # rank 1, singular
    stats = ntk_stats(low_rank)
    assert stats["rank"] == 1.0 and stats["condition"] == pytest.approx(1 / torch.finfo(torch.float32).eps)
