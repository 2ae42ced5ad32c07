"""Registration of a ``holocron`` torch op, its fake kernel, its backward op and its autograd formula, written once.

Every op follows one pattern: the public wrapper's annotated signature is the op's schema (so the argument list is
spelled once, where ``torch.jit.script`` needs it), the eager kernel and a shape function take the same arguments,
and the backward is an op of its own, ``holocron::_<name>_backward``, so that tracers (torch.compile, AOT autograd)
see one opaque call. That op takes ``grad_output`` followed by the forward arguments but the optional tensors, and
returns the gradients of the required tensor arguments (contiguous), in order.

Where the schemas live depends on the native torch op library (:mod:`holocron.ops._native`), loaded here before
any op registers. When it is loaded, it has defined the forward ops' schemas and CPU kernels (so TorchScript
archives run wherever it is loaded, Python or not) and Python only adds what needs Python: the argument checks, the
pure-torch kernel for other dtypes and devices, the fake kernel and autograd. When it is not (not built, or
``HOLOCRON_PURE_TORCH=1``), Python defines every op with ``torch.library.custom_op`` and its pure-torch kernel. The
backward ops are Python's in both cases.
"""

import inspect
import typing
from collections.abc import Callable

import torch
from torch import Tensor

from holocron.contract import DOMAIN, OpContract
from holocron.ops import _native
from holocron.ops._doc import with_contract

__all__ = ["define_op"]

_REQUIRED, _OPTIONAL, _ATTRIBUTE = "tensor", "optional tensor", "attribute"

_native.load()


def _kinds(signature: Callable[..., Tensor]) -> list[str]:
    """Kind of each parameter of ``signature``: a required tensor, an optional tensor or an attribute."""
    hints = typing.get_type_hints(signature)
    kinds = []
    for name in inspect.signature(signature).parameters:
        hint = hints[name]
        kinds.append(_REQUIRED if hint is Tensor else _OPTIONAL if Tensor in typing.get_args(hint) else _ATTRIBUTE)
    return kinds


def _backward_schema(schema: str, kinds: list[str]) -> str:
    """Schema of the backward op, from the forward ``schema`` ``(args) -> Tensor`` and the kinds of its arguments."""
    arguments = schema[1 : schema.index(") -> ")].split(", ")
    kept = [arg for arg, kind in zip(arguments, kinds, strict=True) if kind != _OPTIONAL]
    grads = ", ".join("Tensor" for kind in kinds if kind == _REQUIRED)
    return f"(Tensor grad_output, {', '.join(kept)}) -> ({grads})"


def define_op(
    contract: OpContract,
    signature: Callable[..., Tensor],
    forward: Callable[..., Tensor],
    output_shape: Callable[..., tuple[int, ...]],
    backward: Callable[..., tuple[Tensor, ...]],
    optional_grad: Callable[[Tensor], Tensor] | None = None,
) -> None:
    """Register ``holocron::<contract.torch_name>`` and its backward op, and complete the wrapper's docstring.

    Args:
        contract: the op's contract (torch name, reference semantics for the docstring).
        signature: the public wrapper; its annotations give the op's schema.
        forward: pure-torch eager kernel, taking the arguments of ``signature`` (where the native library is
            loaded, the kernel of the dtypes and devices it lacks).
        output_shape: validates the arguments of ``signature`` and returns the output shape (the fake kernel's).
        backward: eager kernel of the backward op: ``grad_output`` then the arguments of ``signature`` without its
            optional tensors; returns the contiguous gradients of the required tensor arguments.
        optional_grad: gradient of an optional tensor argument (a bias), from ``grad_output``, when it is given.
    """
    kinds = _kinds(signature)
    schema = torch.library.infer_schema(signature, mutates_args=())
    name = f"{DOMAIN}::{contract.torch_name}"
    backward_name = f"{DOMAIN}::_{contract.torch_name}_backward"
    backward_op = torch.library.custom_op(
        backward_name, backward, mutates_args=(), schema=_backward_schema(schema, kinds)
    )

    def _fake(*args: object) -> Tensor:
        return args[0].new_empty(output_shape(*args))  # type: ignore[attr-defined]

    @backward_op.register_fake
    def _backward_fake(grad_output: Tensor, *args: object) -> tuple[Tensor, ...]:
        kept = [kind for kind in kinds if kind != _OPTIONAL]
        tensors = [arg for arg, kind in zip(args, kept, strict=True) if kind == _REQUIRED]
        return tuple(torch.empty_like(t, memory_format=torch.contiguous_format) for t in tensors)  # type: ignore[arg-type]

    def _setup_context(ctx, inputs: tuple, output: Tensor) -> None:
        ctx.save_for_backward(*(arg for arg, kind in zip(inputs, kinds, strict=True) if kind == _REQUIRED))
        ctx.attributes = [arg for arg, kind in zip(inputs, kinds, strict=True) if kind == _ATTRIBUTE]
        ctx.optional_given = [arg is not None for arg, kind in zip(inputs, kinds, strict=True) if kind == _OPTIONAL]

    def _backward(ctx, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        tensors, attributes = iter(ctx.saved_tensors), iter(ctx.attributes)
        args = [next(tensors) if kind == _REQUIRED else next(attributes) for kind in kinds if kind != _OPTIONAL]
        grads, given = iter(backward_op(grad_output, *args)), iter(ctx.optional_given)
        result: list[Tensor | None] = []
        for kind in kinds:
            if kind == _REQUIRED:
                result.append(next(grads))
            elif kind == _OPTIONAL and next(given) and optional_grad is not None:
                result.append(optional_grad(grad_output))
            else:
                result.append(None)
        return tuple(result)

    if _native.is_loaded():
        _extend_native_op(name, schema, forward, output_shape, _fake, _setup_context, _backward)
    else:
        op = torch.library.custom_op(name, forward, mutates_args=(), schema=schema)
        op.register_fake(_fake)
        op.register_autograd(_backward, setup_context=_setup_context)
    signature.__doc__ = with_contract(signature.__doc__, contract)


# The torch.library registrations made over the native library's ops, kept for the life of the process.
_NATIVE_EXTENSIONS = torch.library.Library(DOMAIN, "FRAGMENT")


def _native_computes(args: tuple) -> bool:
    """Whether the library's CPU kernel computes a call: CPU tensors of float32 or float16 (the caller checked that
    the tensors share dtype and device)."""
    first = next(arg for arg in args if isinstance(arg, Tensor))
    return first.device.type == "cpu" and first.dtype in (torch.float32, torch.float16)


def _extend_native_op(
    name: str,
    schema: str,
    forward: Callable[..., Tensor],
    output_shape: Callable[..., tuple[int, ...]],
    fake: Callable[..., Tensor],
    setup_context: Callable[..., None],
    backward: Callable[..., tuple[Tensor | None, ...]],
) -> None:
    """Complete an op whose schema and CPU kernel the native library registered: what needs Python.

    One autograd kernel does what happens above the backends: the argument checks of ``output_shape`` (Python's
    ``ValueError``/``TypeError``, as the pure-torch path raises them), the choice of kernel (the native one below
    autograd for CPU float32/float16, the pure-torch ``forward`` for the other dtypes and devices) and, when a
    gradient is wanted, the composite backward op through an ``autograd.Function``. The pure-torch ``forward`` is also
    the CompositeExplicitAutograd kernel (devices without a native kernel, calls made below autograd such as under
    ``torch.inference_mode``), and ``fake`` the fake kernel.

    Raises:
        RuntimeError: the library's schema differs from the one the Python wrapper's annotations give (a library
            built from other sources than this package): rebuild it or set ``HOLOCRON_PURE_TORCH=1``.
    """
    op_name = name.split("::", 1)[1]
    op = getattr(torch.ops.holocron, op_name).default
    native_schema = str(op._schema).removeprefix(name)
    if native_schema != schema:
        raise RuntimeError(
            f"{name}: the torch op library defines the schema {native_schema}, holocron.ops expects {schema}; "
            f"rebuild the library ({_native.torch_library_path()}) or set {_native.PURE_TORCH_ENV}=1"
        )

    def compute(*args: object) -> Tensor:
        if _native_computes(args):
            with torch._C._AutoDispatchBelowAutograd():
                return op(*args)
        return forward(*args)

    def native_forward(ctx, *args: object) -> Tensor:
        output = compute(*args)
        setup_context(ctx, args, output)
        return output

    def native_backward(ctx, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        return backward(ctx, grad_output)

    function: type[torch.autograd.Function] = type(
        f"{op_name}_native",
        (torch.autograd.Function,),
        {"forward": staticmethod(native_forward), "backward": staticmethod(native_backward)},
    )

    def autograd_kernel(*args: object) -> Tensor:
        output_shape(*args)
        if torch.is_grad_enabled() and any(isinstance(arg, Tensor) and arg.requires_grad for arg in args):
            return function.apply(*args)
        return compute(*args)

    _NATIVE_EXTENSIONS.impl(op_name, autograd_kernel, "Autograd")
    _NATIVE_EXTENSIONS.impl(op_name, forward, "CompositeExplicitAutograd")
    torch.library.register_fake(name, fake, lib=_NATIVE_EXTENSIONS)
