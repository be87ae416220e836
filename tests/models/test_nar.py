"""The unrolled NAR: hint feeding, teacher forcing, output freezing, decay, embeddings."""

import copy

import numpy as np
import pytest
import torch

from repdyn.models.nar import NAR, NARBatch, nb_dims_of
from repdyn.tasks.clrs import SPECS, sample, to_feedback


def _batch(name="bfs", num=4, n=6, seed=0):
    feedback = to_feedback(sample(name, num, n, seed=seed))
    return feedback, NARBatch.from_feedback(feedback, SPECS[name])


def _model(feedback, name="bfs", **kwargs):
    torch.manual_seed(0)
    return NAR(SPECS[name], nb_dims_of(feedback), hidden=16, **kwargs)


def test_batch_conversion_keeps_pointers_as_indices():
    feedback, batch = _batch()
    assert batch.hints["pi_h"].dtype == torch.int64 and batch.outputs["pi"].dtype == torch.int64
    assert batch.hints["reach_h"].dtype == torch.float32
    assert batch.size == 4 and batch.nodes == 6
    np.testing.assert_array_equal(batch.lengths.numpy(), feedback.features.lengths)
    sub = batch.select(slice(1, 3))
    assert sub.size == 2 and torch.equal(sub.hints["pi_h"], batch.hints["pi_h"][:, 1:3])


def test_unroll_runs_one_step_per_hint_transition_and_returns_embeddings():
    feedback, batch = _batch()
    out = _model(feedback)(batch, return_embeddings=True)
    steps = int(batch.lengths.max()) - 1
    assert len(out.hints) == steps and len(out.embeddings) == steps
    node, edge = out.embeddings[-1]
    assert node.shape == (4, 6, 16) and edge.shape == (4, 6, 6, 16)
    assert out.outputs["pi"].shape == (4, 6, 6) and out.hints[0]["reach_h"].shape == (4, 6)


def test_each_instance_is_predicted_as_if_alone_so_outputs_freeze_at_its_length():
    feedback, batch = _batch(num=6, seed=3)
    lengths = batch.lengths
    assert lengths.min() < lengths.max()  # instances of different lengths share the batch
    model = _model(feedback)
    together = model(batch).outputs["pi"]
    for b in range(batch.size):
        alone = batch.select(slice(b, b + 1))
        t = int(alone.lengths[0])
        alone.hints = {k: v[:t] for k, v in alone.hints.items()}
        torch.testing.assert_close(model(alone).outputs["pi"][0], together[b], atol=1e-5, rtol=0)


def test_eval_feeds_soft_predictions_and_full_teacher_forcing_feeds_the_truth():
    feedback, batch = _batch()
    model = _model(feedback, hint_teacher_forcing=1.0)
    seen = []
    handle = model.encoders["pi_h"].register_forward_hook(lambda m, i, o: seen.append(i[0]))
    model(batch, train=True)
    truth = [torch.nn.functional.one_hot(batch.hints["pi_h"][i], 6).float()
             for i in range(len(seen))]
    assert all(torch.equal(s, t) for s, t in zip(seen, truth, strict=True))
    seen.clear()
    out = model(batch, train=False)
    handle.remove()
    assert torch.equal(seen[0], truth[0])  # step 0: the true first hint, always
    soft = torch.softmax(out.hints[0]["pi_h"], -1)
    torch.testing.assert_close(seen[1], soft)  # then the previous step's soft prediction


def test_partial_teacher_forcing_mixes_truth_and_prediction_per_instance():
    feedback, batch = _batch(num=8)
    model = _model(feedback, hint_teacher_forcing=0.5)
    seen = []
    model.encoders["pi_h"].register_forward_hook(lambda m, i, o: seen.append(i[0]))
    model(batch, train=True, generator=torch.Generator().manual_seed(0))
    truth = torch.nn.functional.one_hot(batch.hints["pi_h"][1], 6).float()
    forced = [torch.equal(seen[1][b], truth[b]) for b in range(8)]
    assert 0 < sum(forced) < 8


def test_soft_hints_carry_gradients_into_the_hint_decoders():
    feedback, batch = _batch()
    model = _model(feedback)
    out = model(batch, train=True)
    grads = torch.autograd.grad(out.outputs["pi"].sum(), model.decoders["pi_h"].layers[0].weight)
    assert grads[0].abs().sum() > 0
    forced = _model(feedback, hint_teacher_forcing=1.0)
    out = forced(batch, train=True)
    grads = torch.autograd.grad(out.outputs["pi"].sum(), forced.decoders["pi_h"].layers[0].weight,
                                allow_unused=True)
    assert grads[0] is None  # with the truth fed back, outputs do not depend on hint decoders


def test_latent_decay_scales_the_state_entering_every_processor_step():
    feedback, batch = _batch()
    model = _model(feedback, latent_decay=0.9)
    inputs, outputs = [], []

    def record(module, args, out):
        inputs.append(args[4])
        outputs.append(out[0])

    model.processor.register_forward_hook(record)
    model(batch)
    assert torch.equal(inputs[0], torch.zeros_like(inputs[0]))
    for before, after in zip(outputs[:-1], inputs[1:], strict=True):
        assert torch.equal(after, before * 0.9)


class _Rescaled(torch.nn.Module):
    """A processor whose states are another's times 3 plus a per-node offset."""

    returns_edges = False

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, node_fts, edge_fts, graph_fts, adj, hidden):
        state, _ = self.inner(node_fts, edge_fts, graph_fts, adj, hidden)
        return 3 * state + torch.arange(state.shape[1], dtype=state.dtype)[:, None], None


@pytest.mark.parametrize("readout_norm", [True, False])
def test_readout_norm_hides_state_scale_and_offset_from_the_decoders_only(readout_norm):
    feedback, batch = _batch()
    model = _model(feedback, processor="mpnn", readout_norm=readout_norm)
    encoded = model._encode_inputs(batch)
    hints = {k: v[0] for k, v in batch.hints.items()}
    hidden = torch.zeros(batch.size, batch.nodes, 16)
    plain = model.step(encoded, hints, hidden, train=False)
    model.processor = _Rescaled(model.processor)
    rescaled = model.step(encoded, hints, hidden, train=False)
    assert torch.allclose(rescaled[0], 3 * plain[0] + torch.arange(6.0)[:, None])  # the state passed on
    same = [torch.allclose(a, b, atol=1e-4) for a, b in zip(plain[2].values(), rescaled[2].values(), strict=True)]
    assert all(same) if readout_norm else not any(same)


def test_loss_and_a_few_adam_steps_lower_it():
    feedback, batch = _batch(num=16, n=8)
    model = _model(feedback)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(20):
        loss, parts = model.loss(model(batch, train=True), batch)
        assert set(parts) == {"pi", "reach_h", "pi_h"}
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


@pytest.mark.parametrize("name", ["insertion_sort", "floyd_warshall", "heapsort", "dfs"])
def test_every_probe_kind_unrolls_and_has_a_finite_loss(name):
    from repdyn.tasks.clrs import feedback as fb

    spec = fb.permutations_spec(SPECS[name])
    feedback = fb.permutations(to_feedback(sample(name, 2, 5, seed=0)))
    batch = NARBatch.from_feedback(feedback, spec)
    torch.manual_seed(0)
    model = NAR(spec, nb_dims_of(feedback), hidden=8)
    loss, parts = model.loss(model(batch, train=True, generator=torch.Generator()), batch)
    assert torch.isfinite(loss) and set(parts) == {k for k, v in spec.items() if v[0] != "input"}


def test_a_cpu_generator_drives_training_draws_on_a_device_and_gives_the_cpu_draws():
    """Teacher forcing and Gumbel-Sinkhorn noise draw from the generator where it lives: a CPU
    generator works for a model on a (pretend) GPU, whose random ops refuse a foreign generator
    as CUDA's do, and the run's losses are those of the same run on the CPU."""
    from repdyn.bench.fakegpu import FakeGPU
    from repdyn.tasks.clrs import feedback as fb

    spec = fb.permutations_spec(SPECS["insertion_sort"])  # a permutation pointer: Gumbel noise
    feedback = fb.permutations(to_feedback(sample("insertion_sort", 4, 6, seed=0)))
    batch_cpu = NARBatch.from_feedback(feedback, spec)
    torch.manual_seed(0)
    model = NAR(spec, nb_dims_of(feedback), hidden=16, hint_teacher_forcing=0.5)
    on_cpu = copy.deepcopy(model)
    loss_cpu, _ = on_cpu.loss(on_cpu(batch_cpu, train=True, generator=torch.Generator().manual_seed(3)), batch_cpu)
    with FakeGPU() as gpu:
        batch = NARBatch.from_feedback(feedback, spec, device=gpu.device)
        model.to(gpu.device)
        loss, _ = model.loss(model(batch, train=True, generator=torch.Generator().manual_seed(3)), batch)
        assert loss.device.type == gpu.device.type
        loss = loss.cpu()
    assert torch.allclose(loss, loss_cpu, rtol=1e-5, atol=1e-6)
