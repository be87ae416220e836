"""Encoders, decoders, losses and postprocessing equal dm-clrs 2.0.3's on the same weights and
arrays (fixture written by dm-clrs itself: tests/fixtures/nar/make_nar_fixtures.py)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from repdyn.models.nar_codec import (
    ProbeDecoder,
    ProbeEncoder,
    encode_probes,
    log_sinkhorn,
    postprocess,
)
from repdyn.models.nar_losses import hint_loss, output_loss
from repdyn.tasks.clrs.specs import Type

DATA = np.load(Path(__file__).parents[1] / "fixtures" / "nar" / "clrs_model.npz")
H = 8


def _t(key: str) -> torch.Tensor:
    return torch.from_numpy(DATA[key])


def _load(layer, prefix: str) -> None:
    with torch.no_grad():
        layer.weight.copy_(_t(f"{prefix}/w").T)
        layer.bias.copy_(_t(f"{prefix}/b"))


def test_encoders_place_every_probe_as_dm_clrs_does():
    names = sorted({k.split("/")[2] for k in DATA.files if k.startswith("encoder/data/")})
    encoders, probes = {}, {}
    for name in names:
        stage, loc, t = (str(x) for x in DATA[f"encoder/spec/{name}"])
        soft = t == "soft_pointer"
        enc = ProbeEncoder(stage, loc, Type.POINTER if soft else t, H, nb_dims=3)
        _load(enc.first, f"encoder/param/{name}_enc_linear")
        if enc.second is not None:
            _load(enc.second, f"encoder/param/{name}_enc_linear_1")
        encoders[name] = enc
        data = _t(f"encoder/data/{name}")
        probes[name] = data.float() if soft or t != Type.POINTER else data.long()
    order = ["pos", "s", "A", "adj", "pi", "P", "g", "gs", "c", "d_h", "soft_h"]  # fixture order
    b, n = probes["pos"].shape
    start = (torch.zeros(b, n, H), torch.zeros(b, n, n, H), torch.zeros(b, H),
             torch.eye(n).expand(b, n, n))
    got = encode_probes(encoders, {k: probes[k] for k in order}, *start)
    for key, value in zip(("node", "edge", "graph", "adj"), got, strict=True):
        torch.testing.assert_close(value, _t(f"encoder/{key}").float(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", sorted({k.split("/")[1] for k in DATA.files
                                         if k.startswith("decoder/") and k.endswith("/logits")}))
def test_decoders_equal_dm_clrs(case):
    loc, t = case.split("_", 1)
    dec = ProbeDecoder(loc, t, H, edge_width=2 * H, nb_dims=3)
    for i, layer in enumerate(dec.layers):
        _load(layer, f"decoder/{case}/param/x_dec_linear" + (f"_{i}" if i else ""))
    logits = dec(_t("decoder/h_t"), _t("decoder/e_t"), _t("decoder/graph"))
    if t == Type.PERMUTATION_POINTER:  # evaluation mode: log-Sinkhorn without noise
        logits = log_sinkhorn(logits, 10)
    torch.testing.assert_close(logits, _t(f"decoder/{case}/logits"), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("type_", [Type.SCALAR, Type.MASK, Type.MASK_ONE, Type.CATEGORICAL,
                                   Type.POINTER, Type.PERMUTATION_POINTER])
def test_output_losses_equal_dm_clrs(type_):
    pred, truth = _t(f"loss/output/{type_}/pred"), _t(f"loss/output/{type_}/truth")
    value = output_loss(type_, pred, truth)
    assert value.item() == pytest.approx(float(DATA[f"loss/output/{type_}/value"]), rel=1e-5)


@pytest.mark.parametrize("type_", [Type.SCALAR, Type.MASK, Type.MASK_ONE, Type.CATEGORICAL,
                                   Type.POINTER])
def test_hint_losses_equal_dm_clrs(type_):
    preds, truth = _t(f"loss/hint/{type_}/preds"), _t(f"loss/hint/{type_}/truth")
    value = hint_loss(type_, list(preds), truth, _t("loss/hint/lengths"))
    assert value.item() == pytest.approx(float(DATA[f"loss/hint/{type_}/value"]), rel=1e-5)


@pytest.mark.parametrize("type_", [Type.MASK, Type.MASK_ONE, Type.CATEGORICAL, Type.POINTER,
                                   Type.PERMUTATION_POINTER])
def test_postprocessing_equals_dm_clrs(type_):
    logits = _t(f"post/{type_}/logits")
    hard = postprocess(type_, logits, hard=True)
    torch.testing.assert_close(hard.to(torch.float64), _t(f"post/{type_}/hard").to(torch.float64))
    soft = postprocess(type_, logits, hard=False)
    torch.testing.assert_close(soft, _t(f"post/{type_}/soft").float(), atol=1e-5, rtol=1e-4)
