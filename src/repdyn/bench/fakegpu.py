"""A pretend GPU for CPU-only machines: tensors on `fakegpu:0` whose arithmetic runs on CPU kernels.

Within `with FakeGPU() as gpu:`, a tensor created on or moved to `gpu.device` is a `FakeGPUTensor`
wrapping a CPU tensor, and every aten op is checked the way CUDA checks it: an op that mixes a
device tensor with a CPU tensor of one or more dimensions raises (CPU scalars, and CPU index
tensors in advanced indexing, pass as on CUDA), and so does a random op whose generator is on the
other device; `torch.Generator(device=gpu.device)` gives a CPU generator that reports the device.
Host-device traffic is recorded: `gpu.sync_log` lists every time the host waits for the device
(reads: `.item()`, copies to the CPU; waits: blocking copies to the device, ops whose output shape
depends on values), `gpu.uploads` counts copies to the device and `gpu.matmuls` the matrix
products on the device and on plain CPU tensors. Tests use it to show, without a GPU, that a study's tensors
end up on `ctx.device` and that its training loop does not wait on the device every step.

A wrapper cannot report `cuda` on a CPU-only build (autograd asks the CUDA runtime for a stream),
so the device is PyTorch's PrivateUse1 backend renamed `fakegpu`, registered when this module is
imported, for the rest of the process; import it before the process's first backward pass (test
modules do, at collection). Code that branches on `device.type == "cuda"` takes its non-CUDA branch here.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

NAME = "fakegpu"
aten = torch.ops.aten

_TRANSFERS = {aten._to_copy.default, aten.copy_.default}
_INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}
# The host reads a device value: a Python number or bool.
_READS = {aten._local_scalar_dense.default, aten.equal.default}
# The host waits for these on CUDA to learn their output's shape, which depends on values.
_SHAPED = {aten.nonzero.default, aten.masked_select.default, aten._unique2.default, aten.unique_dim.default,
           aten.unique_consecutive.default, aten.bincount.default, aten.repeat_interleave.Tensor}
_MATMULS = {aten.mm.default, aten.bmm.default, aten.addmm.default, aten.baddbmm.default, aten.addbmm.default,
            aten.convolution.default, aten._scaled_dot_product_flash_attention_for_cpu.default}
_REAL_GENERATOR = torch.Generator


class Sync(NamedTuple):
    """One time the host waited for the device: a `read` of a device value (`.item()`, a copy to the
    CPU) or a `wait` that reads nothing (a blocking upload, an op whose output shape needs values)."""

    kind: str
    op: str


class _Backend:
    """The device module PyTorch asks a PrivateUse1 backend for (`torch.fakegpu`)."""

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def current_device(self) -> int:
        return 0

    def device_count(self) -> int:
        return 1

    def _is_in_bad_fork(self) -> bool:
        return False

    def manual_seed_all(self, seed: int) -> None:
        """Nothing to seed: random ops on the device draw from CPU generators."""

    def get_amp_supported_dtype(self) -> list[torch.dtype]:
        return [torch.bfloat16]


def _register() -> torch.device:
    """Register `fakegpu` as PyTorch's PrivateUse1 backend (once per process; it cannot be undone)."""
    name = torch._C._get_privateuse1_backend_name()
    if name == "privateuseone":
        from torch.utils.backend_registration import _setup_privateuseone_for_python_backend

        _setup_privateuseone_for_python_backend(NAME, backend_module=_Backend())
    elif name != NAME:
        raise RuntimeError(f"FakeGPU needs PyTorch's PrivateUse1 backend, already taken by {name!r}")
    return torch.device(NAME, 0)


# At import: autograd sizes its per-device queues at the process's first backward pass.
DEVICE = _register()


class FakeGPUTensor(Tensor):
    """A CPU tensor (`elem`) that reports device fakegpu:0; usable only inside `FakeGPU`."""

    elem: Tensor

    @staticmethod
    def __new__(cls, elem: Tensor) -> FakeGPUTensor:
        out = Tensor._make_wrapper_subclass(
            cls, elem.shape, strides=elem.stride(), storage_offset=elem.storage_offset(), dtype=elem.dtype,
            layout=elem.layout, device=DEVICE, requires_grad=False,
        )
        out.elem = elem
        return out

    def __repr__(self) -> str:  # type: ignore[override]
        return f"FakeGPUTensor({self.elem!r})"

    def __tensor_flatten__(self) -> tuple[list[str], None]:
        """Marks a traceable wrapper subclass, so `Module.to` swaps parameters instead of setting `.data`."""
        return ["elem"], None

    @staticmethod
    def __tensor_unflatten__(inner: dict[str, Tensor], meta: None, size: Any, stride: Any) -> FakeGPUTensor:
        """Inverse of `__tensor_flatten__`."""
        return FakeGPUTensor(inner["elem"])

    def untyped_storage(self) -> torch.UntypedStorage:  # type: ignore[override]
        """The wrapped tensor's storage (checkpoints use its address to find shared tensors)."""
        return self.elem.untyped_storage()

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        raise RuntimeError(f"{func}: a {NAME} tensor was used after its FakeGPU() block ended")


class FakeGPUGenerator(_REAL_GENERATOR):
    """A CPU generator that reports fakegpu:0; `torch.Generator(device="fakegpu")` inside `FakeGPU`."""

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return DEVICE


class _GeneratorFactory(type):
    """Metaclass of the stand-in for `torch.Generator`: device requests give a `FakeGPUGenerator`,
    and `isinstance(g, torch.Generator)` still holds for every generator."""

    def __call__(cls, device: str | torch.device = "cpu") -> torch.Generator:
        if torch.device(device).type == NAME:
            return FakeGPUGenerator()
        return _REAL_GENERATOR(device)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, _REAL_GENERATOR)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _REAL_GENERATOR)


class _Generator(metaclass=_GeneratorFactory):
    """Stands in for `torch.Generator` inside `FakeGPU`."""


def _on_device(where: Any) -> bool:
    return where is not None and torch.device(where).type == NAME


class _PythonLevel(TorchFunctionMode):
    """What only the Python API shows: which generator an op got, `tolist()` / `numpy()`, and
    `one_hot`, whose CUDA kernel checks no class on the host while its fallback for other devices does.

    Below the Python API a generator is a new object that no longer tells whether it was a
    `FakeGPUGenerator`, and `tolist()` of a wrapper tensor is not supported at all.
    """

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is Tensor.tolist and isinstance(args[0], FakeGPUTensor):
            return args[0].cpu().tolist()
        if func is Tensor.numpy and isinstance(args[0], FakeGPUTensor):
            raise TypeError(f"can't convert {NAME}:0 device type tensor to numpy; use Tensor.cpu() first")
        if func is torch.nn.functional.one_hot and isinstance(args[0], FakeGPUTensor):
            classes = args[1] if len(args) > 1 else kwargs.get("num_classes", -1)
            if classes >= 0:  # as CUDA: a scatter, no read of the class values
                x = args[0]
                return torch.zeros(*x.shape, classes, dtype=torch.long, device=x.device).scatter_(-1, x[..., None], 1)
        generator = kwargs.get("generator")  # keyword-only in every random op
        if generator is not None:
            tensors = [x for x in args if isinstance(x, Tensor)]
            where = torch.device(kwargs.get("device") or (tensors[0].device if tensors else "cpu"))
            if isinstance(generator, FakeGPUGenerator) != (where.type == NAME):
                found = NAME if isinstance(generator, FakeGPUGenerator) else "cpu"
                name = getattr(func, "__name__", func)
                raise RuntimeError(f"{name}: expected a '{where.type}' device type for generator but found '{found}'")
        return func(*args, **kwargs)


class FakeGPU(TorchDispatchMode):
    """Run the block as if on a GPU: device tensors are checked CPU tensors; counts syncs and uploads."""

    def __init__(self) -> None:
        super().__init__()
        self.device = DEVICE
        self.sync_log: list[Sync] = []
        self.uploads = 0
        self.matmuls: Counter[str] = Counter()
        self._patches = contextlib.ExitStack()

    def __enter__(self) -> FakeGPU:
        self._patches.callback(setattr, torch, "Generator", _REAL_GENERATOR)
        torch.Generator = _Generator  # type: ignore[misc]
        self._patches.enter_context(_PythonLevel())
        # torch.tensor(data, device=...) fills a CPU tensor, then moves it through this mode (as FakeTensorMode)
        self._patches.callback(torch._C._set_only_lift_cpu_tensors, torch._C._only_lift_cpu_tensors())
        torch._C._set_only_lift_cpu_tensors(True)
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        self._patches.close()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        target = kwargs.get("device")
        if not _on_device(target) and not _any_fake(args) and not _any_fake(kwargs.values()):
            if func in _MATMULS:  # a CPU op: the common case, kept short
                self.matmuls["cpu"] += 1
            return func(*args, **kwargs)
        flat, _ = tree_flatten((args, kwargs))
        fakes = [x for x in flat if isinstance(x, FakeGPUTensor)]
        on_device = _on_device(target) if target is not None else bool(fakes)
        self._check(func, args, kwargs, flat, on_device)
        self._count(func, args, kwargs, fakes, on_device)
        unwrapped_args, unwrapped_kwargs = tree_map(_unwrap, (args, kwargs))
        if _on_device(target):
            unwrapped_kwargs["device"] = torch.device("cpu")
        out = func(*unwrapped_args, **unwrapped_kwargs)
        if not on_device:
            return out
        mutated = [x for x in flat if isinstance(x, Tensor)] if func._schema.is_mutable else []
        originals = {id(_unwrap(x)): x for x in mutated}  # an in-place op returns the tensor it was given
        return tree_map(lambda t: _wrap(t, originals), out)

    def _check(self, func: Any, args: tuple, kwargs: dict, flat: list, on_device: bool) -> None:
        """Raise where CUDA would: a CPU tensor of one or more dimensions in a device op."""
        if not on_device or func in _TRANSFERS or "device" in kwargs:
            return
        indices = {id(t) for t in tree_flatten(args[1])[0]} if func in _INDEXING and len(args) > 1 else set()
        for x in flat:
            if type(x) is Tensor and x.dim() > 0 and id(x) not in indices:
                raise RuntimeError(
                    f"{func}: expected all tensors to be on the same device, but found at least two devices, "
                    f"{NAME}:0 and cpu (a CPU tensor of shape {tuple(x.shape)})"
                )

    def _count(self, func: Any, args: tuple, kwargs: dict, fakes: list, on_device: bool) -> None:
        """Record syncs (reads of device values, and waits), uploads and where matrix products ran."""
        name = str(func)
        if fakes and (func in _READS or (func is aten._to_copy.default and not on_device)):
            self._sync(Sync("read", name))
        elif func is aten.copy_.default and type(args[0]) is Tensor and isinstance(args[1], FakeGPUTensor):
            self._sync(Sync("read", name))
        elif fakes and func in _SHAPED:
            self._sync(Sync("wait", name))
        elif fakes and func in _INDEXING:
            indices = [i for i in tree_flatten(args[1:2])[0] if isinstance(i, Tensor)]
            if any(i.dtype in (torch.bool, torch.uint8) for i in indices):
                self._sync(Sync("wait", f"{name} with a boolean mask"))
            elif any(type(i) is Tensor for i in indices):
                self._upload(f"{name} with CPU indices", blocking=True)
        to_copy = func is aten._to_copy.default and type(args[0]) is Tensor and on_device
        copy = func is aten.copy_.default and isinstance(args[0], FakeGPUTensor) and type(args[1]) is Tensor
        if to_copy or copy:
            self._upload(name, blocking=not (kwargs.get("non_blocking") or (len(args) > 2 and args[2])))
        if func in _MATMULS:
            self.matmuls["device" if on_device else "cpu"] += 1

    def _upload(self, what: str, blocking: bool) -> None:
        """A copy to the device; CUDA makes the host wait for the device's queue before a blocking one."""
        self.uploads += 1
        if blocking:
            self._sync(Sync("wait", f"{what} (blocking upload)"))

    def _sync(self, sync: Sync) -> None:
        self.sync_log.append(sync)


def _any_fake(values: Any) -> bool:
    """Whether a device tensor is among `values` or the lists in them (the nesting aten ops use)."""
    return any(
        isinstance(v, FakeGPUTensor) or (isinstance(v, (list, tuple)) and any(isinstance(x, FakeGPUTensor) for x in v))
        for v in values
    )


def _unwrap(x: Any) -> Any:
    return x.elem if isinstance(x, FakeGPUTensor) else x


def _wrap(x: Any, originals: dict[int, Tensor]) -> Any:
    """A kernel's CPU output as a device tensor, or the argument it is (the result of an in-place op)."""
    if type(x) is not Tensor:
        return x
    return originals[id(x)] if id(x) in originals else FakeGPUTensor(x)
