"""RG-LRU: gradients, the bounded sqrt, the reset rule, stationarity, the composition identity."""

import torch

from repdyn.nn.rglru import RGLRU, sqrt_bounded_gradient
from repdyn.nn.scan import linear_scan_reference


def _layer(width=8, heads=2, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    layer = RGLRU(width, heads).to(dtype)
    with torch.no_grad():  # make the gates input dependent
        for p in (layer.input_gate.b, layer.a_gate.b):
            p.normal_()
    return layer


def test_rglru_matches_written_out_equations():
    layer = _layer()
    u = torch.randn(2, 9, 8, dtype=torch.float64)
    reset = torch.zeros(2, 9, dtype=torch.bool)
    reset[1, 4] = True
    h0 = torch.randn(2, 8, dtype=torch.float64)
    h, last = layer(u, reset, h0)
    # griffin.md §1.3 written out step by step
    r = torch.sigmoid(
        torch.einsum("bthi,hij->bthj", u.view(2, 9, 2, 4), layer.a_gate.w) + layer.a_gate.b
    ).reshape(2, 9, 8)
    i = torch.sigmoid(
        torch.einsum("bthi,hij->bthj", u.view(2, 9, 2, 4), layer.input_gate.w) + layer.input_gate.b
    ).reshape(2, 9, 8)
    a = torch.exp(-8.0 * r * torch.nn.functional.softplus(layer.a_param))
    state, states = h0, []
    for t in range(9):
        keep = ~reset[:, t, None]
        normalised = (
            torch.where(keep, torch.sqrt(1 - a[:, t] ** 2), torch.ones_like(a[:, t]))
            * i[:, t]
            * u[:, t]
        )
        state = torch.where(keep, a[:, t] * state, 0.0) + normalised
        states.append(state)
    torch.testing.assert_close(h, torch.stack(states, 1))
    torch.testing.assert_close(last, state)
    # at the reset h_t = i_t * u_t exactly
    torch.testing.assert_close(h[1, 4], i[1, 4] * u[1, 4])


def test_rglru_gradcheck():
    layer = _layer(width=4, heads=2, seed=1)
    u = torch.randn(1, 6, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)
    reset = torch.tensor([[False, False, True, False, False, False]])
    names = [name for name, _ in layer.named_parameters()]
    values = [p.detach().clone().requires_grad_() for p in layer.parameters()]

    def run(u, h0, *values):
        return torch.func.functional_call(layer, dict(zip(names, values, strict=True)), (u, reset, h0))

    assert torch.autograd.gradcheck(run, (u, h0, *values))


def test_sqrt_gradient_is_bounded_at_1000():
    x = torch.tensor([0.0, 1e-9, 2.5e-7, 0.25, 1.0], dtype=torch.float64, requires_grad=True)
    sqrt_bounded_gradient(x).sum().backward()
    # d sqrt(x)/dx = 1 / (2 sqrt x), clipped to <= 1000 (griffin.md §1.3)
    torch.testing.assert_close(
        x.grad, torch.tensor([1000.0, 1000.0, 1000.0, 1.0, 0.5], dtype=torch.float64)
    )
    torch.testing.assert_close(sqrt_bounded_gradient(x.detach()), x.detach().sqrt())


def test_unit_variance_is_stationary():
    """With fixed gates, h_t = a h_{t-1} + sqrt(1 - a^2) x_t keeps unit variance for unit x."""
    torch.manual_seed(0)
    layer = RGLRU(256, 4)
    with torch.no_grad():
        layer.input_gate.w.zero_()
        layer.input_gate.b.fill_(30.0)  # input gate = 1
        layer.a_gate.w.zero_()
        layer.a_gate.b.zero_()  # recurrence gate = 1/2: a = a_base^4 in [0.66, 0.996]
    u = torch.randn(32, 600, 256)
    reset = torch.zeros(32, 600, dtype=torch.bool)
    reset[:, 0] = True  # starts at h = x_0, already unit variance
    h, _ = layer(u, reset)
    assert abs(h.var().item() - 1.0) < 0.03
    assert abs(h[:, 100:200].var().item() - 1.0) < 0.05


def test_composition_identity_of_one_layer():
    """h(s1 || s2) = A(s2) * h(s1) + h_0(s2), A(s2) = product of a_t over s2 (state_soup.md §2)."""
    layer = _layer(width=6, heads=3, seed=2)
    s1, s2 = torch.randn(2, 11, 6, dtype=torch.float64), torch.randn(2, 7, 6, dtype=torch.float64)
    no_reset = lambda t: torch.zeros(2, t.shape[1], dtype=torch.bool)
    _, h_s1 = layer(s1, no_reset(s1))
    _, h0_s2 = layer(s2, no_reset(s2))
    a_s2, _ = layer.coefficients(s2, no_reset(s2))
    _, h_joint = layer(torch.cat([s1, s2], 1), no_reset(torch.cat([s1, s2], 1)))
    torch.testing.assert_close(h_joint, a_s2.prod(dim=1) * h_s1 + h0_s2)
    # and continuing from the state is the same as running the concatenation
    _, h_continued = layer(s2, no_reset(s2), h_s1)
    torch.testing.assert_close(h_continued, h_joint)


def test_scan_reference_is_what_the_layer_runs():
    layer = _layer(seed=4)
    u = torch.randn(1, 30, 8, dtype=torch.float64)
    reset = torch.rand(1, 30) < 0.1
    a, b = layer.coefficients(u, reset)
    torch.testing.assert_close(layer(u, reset)[0], linear_scan_reference(a, b, None, reset)[0])
