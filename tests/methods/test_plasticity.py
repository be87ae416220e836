"""Plasticity interventions against their formulas: penalties, shrink-and-perturb, ReDo, continual backprop, resets."""

import math

import pytest
import torch

from repdyn.methods.plasticity import (
    ContinualBackprop,
    Interventions,
    PlasticLearner,
    ReDo,
    l2_init_penalty,
    l2_penalty,
    reset_layers,
    shrink_perturb,
)
from repdyn.models.heads import ClassificationReadout
from repdyn.models.mlp import MLP


def _net(norm="none", seed=0):
    torch.manual_seed(seed)
    return MLP(6, 8, 3, 3, norm=norm)


def _adam_after_one_step(model):
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(16, 6)).square().sum().backward()
    opt.step()
    return opt


def test_penalty_gradients_are_coef_times_theta():
    model = _net()
    init = {k: v.detach().clone() + 0.5 for k, v in model.named_parameters()}
    l2_penalty(model.parameters(), 0.3).backward()
    for p in model.parameters():
        assert torch.allclose(p.grad, 0.3 * p.detach())
    model.zero_grad()
    l2_init_penalty(model.named_parameters(), init, 0.2).backward()
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, 0.2 * (p.detach() - init[name]))


def test_shrink_and_perturb_formula():
    model, fresh = _net(seed=0), _net(seed=1)
    before = [p.detach().clone() for p in model.parameters()]
    shrink_perturb(model, fresh, shrink=0.6, noise=0.05)
    for p, b, q in zip(model.parameters(), before, fresh.parameters(), strict=True):
        assert torch.allclose(p, 0.6 * b + 0.05 * q)


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_redo_reinitialises_exactly_the_dormant_units_and_zeroes_their_moments(norm):
    model = _net(norm)
    x = torch.randn(32, 6)
    with torch.no_grad():  # units 1 and 4 of the first hidden layer, unit 6 of the second: never active
        if norm == "none":
            model.layers[0].bias[[1, 4]] = -1e3
            model.layers[1].bias[6] = -1e3
        else:
            model.norms[0].weight[[1, 4]] = 0.0
            model.norms[0].bias[[1, 4]] = -1.0
            model.norms[1].weight[6] = 0.0
            model.norms[1].bias[6] = -1.0
    opt = _adam_after_one_step(model)
    if norm == "none":
        with torch.no_grad():  # the update must not have revived them
            model.layers[0].bias[[1, 4]] = -1e3
            model.layers[1].bias[6] = -1e3
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    moments = {k: opt.state[p]["exp_avg_sq"].clone() for k, p in model.named_parameters()}
    # Dormant at tau = 0 means zero on every sample of the batch (probes.md §3).
    dormant = [(h == 0).all(0).nonzero().flatten().tolist() for h in model.hidden(x)]
    assert {1, 4} <= set(dormant[0]) and 6 in dormant[1]
    assert ReDo(tau=0.0).recycle(model, opt, x) == len(dormant[0]) + len(dormant[1])
    after = dict(model.named_parameters())
    for layer, units in enumerate(dormant):
        others = [i for i in range(8) if i not in units]
        w_in, bias, w_out = (f"layers.{layer}.weight", f"layers.{layer}.bias", f"layers.{layer + 1}.weight")
        bound = 1 / math.sqrt(model.layers[layer].in_features)
        assert (after[w_in][units] != before[w_in][units]).all()
        assert after[w_in][units].abs().max() <= bound
        others_in = [c for c in range(after[w_in].shape[1]) if layer == 0 or c not in dormant[0]]
        assert torch.equal(after[w_in][others][:, others_in], before[w_in][others][:, others_in])
        assert (after[bias][units] == 0).all() and torch.equal(after[bias][others], before[bias][others])
        assert (after[w_out][:, units] == 0).all()
        rows = [r for r in range(after[w_out].shape[0]) if layer + 1 == len(dormant) or r not in dormant[layer + 1]]
        assert torch.equal(after[w_out][rows][:, others], before[w_out][rows][:, others])
        state = opt.state
        assert (state[after[w_in]]["exp_avg"][units] == 0).all() and (state[after[w_in]]["exp_avg_sq"][units] == 0).all()
        assert torch.equal(state[after[w_in]]["exp_avg_sq"][others][:, others_in], moments[w_in][others][:, others_in])
        assert (state[after[w_out]]["exp_avg_sq"][:, units] == 0).all()
        assert torch.equal(state[after[w_out]]["exp_avg_sq"][rows][:, others], moments[w_out][rows][:, others])
        if norm == "layer":
            assert (after[f"norms.{layer}.weight"][units] == 1).all() and (after[f"norms.{layer}.bias"][units] == 0).all()
    assert torch.equal(after["layers.2.bias"], before["layers.2.bias"])  # never the output layer
    assert ReDo(tau=0.0).recycle(model, opt, x) == 0


def _cbp_steps(cbp, model, opt, steps):
    replaced = []
    for _ in range(steps):
        cbp.observe(model, model.hidden(torch.randn(16, 6)))
        replaced.append(cbp.replace(model, opt))
    return replaced


def test_continual_backprop_replaces_at_the_configured_rate():
    model = _net()
    opt = _adam_after_one_step(model)
    cbp = ContinualBackprop(model, rate=1 / 32, maturity=0)  # 8 eligible units -> 0.25 due per layer per step
    replaced = _cbp_steps(cbp, model, opt, 40)
    assert sum(replaced) == 2 * 10
    assert replaced[:3] == [0, 0, 0] and replaced[3] == 2


def test_continual_backprop_respects_maturity_and_picks_the_lowest_utility():
    model = _net()
    opt = _adam_after_one_step(model)
    cbp = ContinualBackprop(model, rate=0.25, maturity=5)
    assert _cbp_steps(cbp, model, opt, 5) == [0] * 5  # ages 1..5 are not above the threshold
    cbp.observe(model, model.hidden(torch.randn(16, 6)))
    cbp.state["utility/0"] = torch.tensor([5.0, 0.1, 3.0, 0.2, 4.0, 6.0, 7.0, 8.0])
    cbp.state["mean/0"] = torch.arange(8.0) * (1 - 0.99**6)  # bias-corrected mean = unit index
    cbp.state["utility/1"] = torch.tensor([0.0, 5.0, 6.0, 7.0, 8.0, 0.5, 9.0, 9.0])
    w_next, b_next = model.layers[1].weight.detach().clone(), model.layers[1].bias.detach().clone()
    w_in = model.layers[0].weight.detach().clone()
    assert cbp.replace(model, opt) == 4  # 0.25 x 8 eligible in each of the two hidden layers
    assert (model.layers[0].weight[[1, 3]] != w_in[[1, 3]]).all()
    assert torch.equal(model.layers[0].weight[[0, 2, 4, 5, 6, 7]], w_in[[0, 2, 4, 5, 6, 7]])
    assert (model.layers[1].weight[:, [1, 3]] == 0).all()
    assert (model.layers[2].weight[:, [0, 5]] == 0).all() and (model.layers[1].bias[[0, 5]] == 0).all()
    # The replaced units' mean contribution moves into the next layer's bias.
    kept = [1, 2, 3, 4, 6, 7]
    folded = b_next + w_next[:, [1, 3]] @ torch.tensor([1.0, 3.0])
    assert torch.allclose(model.layers[1].bias[kept], folded[kept], atol=1e-5)
    assert cbp.state["age/0"][[1, 3]].tolist() == [0, 0]
    # Young (just replaced) units stay ineligible for `maturity` steps even with the lowest utility.
    for _ in range(5):
        cbp.state["utility/0"][[1, 3]] = -1.0
        cbp.observe(model, model.hidden(torch.randn(16, 6)))
        cbp.state["pending/0"] = torch.tensor(0.9)
        cbp.replace(model, opt)
        assert cbp.state["age/0"][[1, 3]].min() >= 1


def test_full_and_partial_resets():
    model = _net("layer")
    opt = _adam_after_one_step(model)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    reset_layers(model, opt, 1)
    after = dict(model.named_parameters())
    assert not torch.equal(after["layers.2.weight"], before["layers.2.weight"])
    assert torch.equal(after["layers.1.weight"], before["layers.1.weight"])
    assert after["layers.2.weight"] not in opt.state and after["layers.1.weight"] in opt.state
    with torch.no_grad():
        model.norms[0].weight.fill_(3.0)
    reset_layers(model, opt, 3)
    assert all(not torch.equal(after[f"layers.{i}.weight"], before[f"layers.{i}.weight"]) for i in range(3))
    assert (model.norms[0].weight == 1).all() and len(opt.state) == 0


def test_learner_applies_switch_interventions_and_decoupled_decay():
    torch.manual_seed(0)
    iv = Interventions(weight_decay=0.1, snp_shrink=0.5, snp_noise=0.0, reset_layers=0)
    learner = PlasticLearner(lambda: MLP(6, 8, 3, 3), ClassificationReadout(3), iv, lr=1e-2)
    assert isinstance(learner.optimizer, torch.optim.AdamW)
    before = [p.detach().clone() for p in learner.model.parameters()]
    learner.start_task(0)
    assert all(torch.equal(p, b) for p, b in zip(learner.model.parameters(), before, strict=True))
    learner.start_task(1)
    assert all(torch.allclose(p, 0.5 * b) for p, b in zip(learner.model.parameters(), before, strict=True))
    loss, out = learner.step(torch.randn(16, 6), torch.randint(0, 3, (16,)), step=0)
    assert out.shape == (16, 3) and loss > 0


def test_l2_and_weight_decay_leave_biases_and_layernorm_alone():
    torch.manual_seed(0)
    learner = PlasticLearner(lambda: MLP(6, 8, 3, 3, norm="layer"), ClassificationReadout(3), Interventions(l2=0.5),
                             lr=1e-2)
    out = learner.model(torch.zeros(1, 6)).detach() * 0  # a zero-loss reference: only the penalty has gradient
    learner.loss(out, torch.zeros(1, dtype=torch.long)).backward()
    for name, p in learner.model.named_parameters():
        if name.startswith("layers.") and name.endswith("weight"):
            assert torch.allclose(p.grad, 0.5 * p.detach()), name
        else:
            assert p.grad is None or (p.grad == 0).all(), name
    decayed = PlasticLearner(lambda: MLP(6, 8, 3, 3, norm="layer"), ClassificationReadout(3),
                             Interventions(weight_decay=0.1), lr=1e-2).optimizer
    weights, rest = decayed.param_groups
    assert weights["weight_decay"] == 0.1 and len(weights["params"]) == 3
    assert rest["weight_decay"] == 0.0 and len(rest["params"]) == 3 + 4  # three biases, two LayerNorms
