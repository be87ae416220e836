"""The empirical neural tangent kernel on a small batch, and its rank and condition number.

Theta[(i, k), (j, l)] = <d f_k(x_i) / d theta, d f_l(x_j) / d theta> over all parameters. Lyle et
al. 2024 (plasticity.md §3, mechanism 4) compute it on 64 examples and see it collapse toward
"diagonal + low rank" as plasticity is lost. `mode="full"` returns the `[n*K, n*K]` kernel (row
i*K + k), `mode="trace"` the `[n, n]` kernel summed over the K outputs.

Two ways to compute it, which agree (tests check both against an explicit Jacobian):
- `jacobian_ntk`: per-sample Jacobians with `torch.func`, for any model whose samples do not
  interact (no batch norm); costs O(n K P) memory for P parameters.
- `factorised_ntk`: for models whose parameters all sit in `nn.Linear` and `nn.LayerNorm`
  layers (the MLPs of the plasticity study). A Linear layer's per-sample weight gradient is the
  outer product of its backpropagated vector and its input, so its kernel is
  (A A^T + 1) * (G_k G_l^T) elementwise; a LayerNorm's is (G_k * xhat)(G_l * xhat)^T + G_k G_l^T.
  It needs K backward passes and no P-sized matrix, hundreds of times cheaper at P ~ 1e5.
`empirical_ntk` picks the factorised form when it applies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap

Mode = Literal["full", "trace"]
OutputFn = Callable[[Tensor], Tensor]


def _identity(out: Tensor) -> Tensor:
    return out


def _check_mode(mode: str) -> None:
    if mode not in ("full", "trace"):
        raise ValueError(f"mode must be 'full' or 'trace', got {mode!r}")


def jacobian_ntk(model: nn.Module, x: Tensor, *, mode: Mode = "trace", output_fn: OutputFn = _identity) -> Tensor:
    """eNTK from per-sample Jacobians (`torch.func`), one parameter tensor at a time."""
    _check_mode(mode)
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = dict(model.named_buffers())
    n = x.shape[0]
    kernel = None
    for name, param in params.items():
        def f(p: Tensor, xi: Tensor, name: str = name) -> Tensor:
            out = functional_call(model, ({**params, name: p}, buffers), (xi.unsqueeze(0),))
            return output_fn(out).reshape(-1)

        jac = vmap(jacrev(f), in_dims=(None, 0))(param, x)  # [n, K, *shape]
        k = jac.shape[1]
        flat = jac.reshape(n * k, -1) if mode == "full" else jac.reshape(n, -1)
        part = flat @ flat.T
        kernel = part if kernel is None else kernel + part
    return kernel


def supports_factorised(model: nn.Module) -> bool:
    """Whether every trainable parameter belongs to an `nn.Linear` or `nn.LayerNorm` (the fast path)."""
    covered = {id(p) for m in model.modules() if isinstance(m, (nn.Linear, nn.LayerNorm)) for p in m.parameters()}
    return all(id(p) in covered for p in model.parameters() if p.requires_grad)


def factorised_ntk(model: nn.Module, x: Tensor, *, mode: Mode = "trace", output_fn: OutputFn = _identity) -> Tensor:
    """eNTK of an MLP-like model from per-layer inputs and backpropagated vectors (see module docstring)."""
    _check_mode(mode)
    if not supports_factorised(model):
        raise ValueError("factorised_ntk needs every trainable parameter in an nn.Linear or nn.LayerNorm layer")
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.LayerNorm))
              and any(p.requires_grad for p in m.parameters())]
    inputs: dict[nn.Module, Tensor] = {}
    outputs: dict[nn.Module, Tensor] = {}

    def record(module: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        if module in inputs:
            raise ValueError("factorised_ntk needs every layer to run once per forward pass (no weight sharing)")
        if args[0].ndim != 2:
            raise ValueError(f"factorised_ntk needs [n, features] inputs to every layer, got {tuple(args[0].shape)}")
        inputs[module], outputs[module] = args[0].detach(), out

    handles = [m.register_forward_hook(record) for m in layers]
    try:
        with torch.enable_grad():
            f = output_fn(model(x)).reshape(x.shape[0], -1)
            outs = [outputs[m] for m in layers]
            # G[m][k]: d f_k(x_i) / d (output of layer m), per sample i (samples do not interact).
            per_output = [torch.autograd.grad(f[:, k].sum(), outs, retain_graph=True, allow_unused=True)
                          for k in range(f.shape[1])]
    finally:
        for h in handles:
            h.remove()
    n, num_out = f.shape
    # Products of backpropagated vectors: every pair of outputs (full) or matching outputs (trace).
    pairs = "kid,ljd->ikjl" if mode == "full" else "kid,kjd->ij"
    weigh = (lambda gram: gram[:, None, :, None]) if mode == "full" else (lambda gram: gram)
    kernel = torch.zeros((n, num_out, n, num_out) if mode == "full" else (n, n), dtype=f.dtype, device=f.device)
    for index, layer in enumerate(layers):
        grads = torch.stack([torch.zeros_like(outs[index]) if g[index] is None else g[index] for g in per_output])
        block = torch.einsum(pairs, grads, grads)
        a = inputs[layer]
        if isinstance(layer, nn.Linear):
            if layer.weight.requires_grad:
                kernel += block * weigh(a @ a.T)
        elif layer.weight is not None and layer.weight.requires_grad:
            scaled = grads * F.layer_norm(a, layer.normalized_shape, eps=layer.eps)
            kernel += torch.einsum(pairs, scaled, scaled)
        if layer.bias is not None and layer.bias.requires_grad:
            kernel += block
    return kernel.reshape(n * num_out, n * num_out) if mode == "full" else kernel


def empirical_ntk(model: nn.Module, x: Tensor, *, mode: Mode = "trace", output_fn: OutputFn = _identity) -> Tensor:
    """The eNTK on batch `x`: `factorised_ntk` when the model allows it, else `jacobian_ntk`."""
    if supports_factorised(model):
        return factorised_ntk(model, x, mode=mode, output_fn=output_fn)
    return jacobian_ntk(model, x, mode=mode, output_fn=output_fn)


def ntk_stats(kernel: Tensor) -> dict[str, float]:
    """Rank, condition number and top eigenvalue of a (symmetric PSD) kernel matrix.

    rank: eigenvalues above lambda_max * size * eps of the kernel's dtype (matrix_rank's rule);
    condition: lambda_max / lambda_min with lambda_min floored at lambda_max * eps, so a singular
    kernel reports 1/eps rather than infinity.
    """
    eps = torch.finfo(kernel.dtype).eps
    eig = torch.linalg.eigvalsh(kernel.double()).flip(0).clamp_min(0.0)
    top = float(eig[0])
    if top <= 0:
        return {"rank": 0.0, "condition": float("inf"), "max_eig": 0.0}
    rank = float((eig > top * kernel.shape[0] * eps).sum())
    condition = top / max(float(eig[-1]), top * eps)
    return {"rank": rank, "condition": condition, "max_eig": top}
