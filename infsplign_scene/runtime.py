"""Where sampling runs: the device, torch's CPU threads, and quiet model loading."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .errors import InfsplignError


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `count` for the block (None: unchanged), restored after."""
    previous = torch.get_num_threads()
    if count is not None and count != previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def check_device(device: str | torch.device) -> torch.device:
    """The device, if this torch build and machine can use it; else an `InfsplignError` saying why."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise InfsplignError(f"not a torch device: {device!r} ({error})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only torch build" if torch.version.cuda is None else "no CUDA device visible"
        raise InfsplignError(f"device {str(device)!r} asked for, but this is {build}; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InfsplignError(f"device {str(device)!r} asked for, but MPS is not available here")
    return device


@contextmanager
def quiet_loading() -> Iterator[None]:
    """No log lines or progress bars from diffusers and transformers while a model loads (their
    own settings are restored after): a load says nothing unless it fails."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    modules = (diffusers_logging, transformers_logging)
    saved = [(m.get_verbosity(), m.is_progress_bar_enabled()) for m in modules]
    for module in modules:
        module.set_verbosity_error()
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module, (verbosity, bars) in zip(modules, saved, strict=True):
            module.set_verbosity(verbosity)
            if bars:
                module.enable_progress_bar()
