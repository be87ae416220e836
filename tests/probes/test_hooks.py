"""FeatureRecorder selects modules by name or type, records inputs or outputs, then unhooks."""

import pytest
import torch
from torch import nn

from repdyn.probes import FeatureRecorder


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))


def test_records_pre_and_post_activations():
    net = _net()
    x = torch.randn(5, 4)
    with FeatureRecorder(net, types=nn.Linear) as pre, FeatureRecorder(net, names="1") as post:
        net(x)
    assert list(pre.features) == ["0", "2", "4"]
    expected_pre = net[0](x)
    assert torch.equal(pre.features["0"], expected_pre.detach())
    assert torch.equal(post.features["1"], torch.relu(expected_pre).detach())


def test_input_capture_and_concatenation_over_batches():
    net = _net()
    x = torch.randn(6, 4)
    with FeatureRecorder(net, names=["3"], capture="input") as rec:
        net(x[:3])
        net(x[3:])
    assert rec.features["3"].shape == (6, 8)
    assert torch.allclose(rec.features["3"], net[2](torch.relu(net[0](x))).detach())


def test_hooks_are_removed():
    net = _net()
    with FeatureRecorder(net, names="*") as rec:
        pass
    assert all(not m._forward_hooks for m in net.modules())
    assert rec.features == {}


def test_no_match_is_an_error():
    with pytest.raises(ValueError, match="no module"):
        FeatureRecorder(_net(), names="encoder.*")
