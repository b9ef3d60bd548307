"""Where sampling runs: the device, torch's CPU threads, and quiet model loading."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import ClassVar

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


class ThreadSharing:
    """Runs one piece of work in a second thread while the caller goes on, torch's CPU threads shared
    out between the two; on exit (also on error) the work is waited for and the count restored.

    Two batch-1 passes side by side keep the cores busier than one after the other: a small pass
    splits too little work to use every thread well (docs/performance.md)."""

    _worker: ClassVar[ThreadPoolExecutor | None] = None  # one lasting thread: its kernel caches outlive a step

    def __enter__(self) -> ThreadSharing:
        self.threads = torch.get_num_threads()
        self.pending: Future | None = None
        return self

    def possible(self, device: torch.device) -> bool:
        return device.type == "cpu" and self.threads >= 2

    def start(self, work: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        """Start `work` in the second thread; returns the function that waits for its result (or error)."""
        worker_threads = self.threads // 2

        def run() -> torch.Tensor:
            if torch.get_num_threads() != worker_threads:  # per thread; setting it also empties oneDNN's cache
                torch.set_num_threads(worker_threads)
            return work()

        if ThreadSharing._worker is None:
            ThreadSharing._worker = ThreadPoolExecutor(1, thread_name_prefix="infsplign-unconditional")
        torch.set_num_threads(self.threads - worker_threads)
        self.pending = ThreadSharing._worker.submit(run)
        return self._result

    def _settle(self) -> Future:
        """Wait for the work and give the caller every thread again; returns the finished future."""
        finished, self.pending = self.pending, None
        wait([finished])
        torch.set_num_threads(self.threads)
        return finished

    def _result(self) -> torch.Tensor:
        return self._settle().result()

    def __exit__(self, *exc_info) -> None:
        if self.pending is not None:  # the caller failed first: the work finishes before threads are restored
            self._settle()
