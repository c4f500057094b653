"""Named stages of a forward pass, timed by the speed harness without methods importing it.

A method marks the stages of its inference with :func:`stage`::

    from zsseg_bench.modeling.stage_timer import stage

    def forward(self, images, vocab, clip, targets=None):
        with stage("clip_encoder"):
            feats = clip.encode_dense(images, deep_prompts=self.prompts())
        with stage("decoder"):
            logits = self.decoder(feats, vocab.embeddings)
        ...

Outside a speed run :func:`stage` does nothing (one global lookup), so it costs nothing in
training or evaluation; when the PyTorch profiler is on, each stage is also a
``record_function`` range named ``stage/<name>`` so it shows in traces. The speed harness
(``zsseg_bench.speed``) activates a :class:`StageTimer`; each stage then synchronises the
device on entry and exit and adds its wall time to the timer.

Stage names are short snake_case words (``clip_encoder``, ``decoder``, ``post_process``,
``proposal_network``, ``crop_preparation``, ``clip_crops``, ``fusion``); a stage entered
several times per forward (slide windows, crops in a loop) accumulates. Stages may nest: the
inner one is recorded as ``outer/inner`` and its time is also part of ``outer``. Time outside
every top-level stage is reported by the harness as ``other``.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator

import torch

_ACTIVE: StageTimer | None = None


class StageTimer:
    """Accumulates the wall time of :func:`stage` blocks while active (a context manager).

    Args:
        device: the device to synchronise at stage boundaries (``"cuda"``, ``"cuda:1"``, cpu).
    """

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.totals_s: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[str] = []
        self._previous: StageTimer | None = None

    def synchronize(self) -> None:
        """Waits for the device's queued work (a no-op on CPU)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self) -> StageTimer:
        global _ACTIVE
        self._previous, _ACTIVE = _ACTIVE, self
        return self

    def __exit__(self, *exc: object) -> None:
        global _ACTIVE
        _ACTIVE = self._previous
        self._previous = None

    @contextlib.contextmanager
    def _time(self, name: str) -> Iterator[None]:
        full = "/".join([*self._stack, name])
        self._stack.append(name)
        self.synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.synchronize()
            self.totals_s[full] += time.perf_counter() - start
            self.calls[full] += 1
            self._stack.pop()

    def top_level_s(self) -> float:
        """Seconds spent inside top-level stages (nested ones are part of their parent)."""
        return sum(t for name, t in self.totals_s.items() if "/" not in name)


@contextlib.contextmanager
def _profiled(name: str) -> Iterator[None]:
    with torch.profiler.record_function(f"stage/{name}"):
        yield


def stage(name: str) -> contextlib.AbstractContextManager[None]:
    """A named stage of inference; timed only while a :class:`StageTimer` is active.

    Args:
        name: the stage's name (snake_case, no ``/``), e.g. ``"clip_encoder"``.

    Returns:
        A context manager; a no-op unless a timer is active or the profiler is on.
    """
    timer = _ACTIVE
    if timer is not None:
        return timer._time(name)
    if torch.compiler.is_compiling():  # inside torch.compile: no timing, no graph break
        return contextlib.nullcontext()
    if torch.autograd._profiler_enabled():
        return _profiled(name)
    return contextlib.nullcontext()


def active_timer() -> StageTimer | None:
    """The active timer, or None outside a speed run."""
    return _ACTIVE
