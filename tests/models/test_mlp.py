"""MLP: depth counts Linear layers, every parameter is scaled at init, LayerNorm sits before activations."""

import torch
from torch import nn

from repdyn.models.mlp import MLP


def test_depth_counts_linear_layers_and_names_them():
    model = MLP(64, 32, 10, depth=4)
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    assert linears == ["layers.0", "layers.1", "layers.2", "layers.3"]
    assert model(torch.randn(5, 8, 8)).shape == (5, 10)
    assert [h.shape[1] for h in model.hidden(torch.randn(5, 64))] == [32, 32, 32]


def test_init_scale_multiplies_every_parameter_biases_included():
    torch.manual_seed(0)
    base = MLP(16, 8, 3, depth=3)
    torch.manual_seed(0)
    scaled = MLP(16, 8, 3, depth=3, init_scale=8.0)
    for (name, a), (_, b) in zip(base.named_parameters(), scaled.named_parameters(), strict=True):
        assert torch.allclose(b, 8.0 * a), name


def test_forward_equals_explicit_composition():
    torch.manual_seed(1)
    model = MLP(6, 5, 2, depth=3, norm="layer")
    x = torch.randn(4, 6)
    h = x
    for i in range(2):
        h = torch.relu(model.norms[i](model.layers[i](h)))
    assert torch.allclose(model(x), model.layers[2](h))
    assert isinstance(model.norms[0], nn.LayerNorm)
