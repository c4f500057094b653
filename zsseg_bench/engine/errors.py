"""Why a run stopped early: a NaN/inf loss, a stop request (a signal), out of memory."""

from __future__ import annotations

from collections.abc import Sequence

from zsseg_bench.utils.errors import UserError

#: Config keys that lower memory use, suggested when the GPU runs out of memory.
MEMORY_KEYS = {
    "training": ("SOLVER.IMS_PER_BATCH (raise SOLVER.ACCUMULATION_STEPS to keep the effective "
                 "batch)", "INPUT.CROP.SIZE", "SOLVER.AMP.ENABLED True"),
    "evaluation": ("TEST.IMS_PER_BATCH", "INPUT.TEST_SCALE", "TEST.MODE slide with a smaller "
                   "TEST.SLIDE.CROP", "SOLVER.AMP.ENABLED True"),
}


class NonFiniteLossError(UserError):
    """A loss term (or the gradient norm) became NaN or infinite: the run stops, nothing more is
    saved, so the last checkpoint on disk is the last good one.

    Attributes:
        iteration: the 0-based iteration where it happened.
        terms: ``(name, value)`` of each non-finite term.
    """

    def __init__(self, iteration: int, terms: Sequence[tuple[str, float]],
                 last_checkpoint: str | None = None):
        self.iteration = iteration
        self.terms = list(terms)
        self.last_checkpoint = last_checkpoint
        super().__init__(self._message())

    def _message(self) -> str:
        what = ", ".join(f"{name} = {value}" for name, value in self.terms)
        where = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint
                 else "no checkpoint was written before it")
        return (f"training diverged at iteration {self.iteration}: {what}; {where}. Lower "
                "SOLVER.BASE_LR, raise SOLVER.WARMUP_ITERS or enable SOLVER.CLIP_GRADIENTS, "
                "then train again (or --resume from the last checkpoint)")

    def with_checkpoint(self, last_checkpoint: str | None) -> NonFiniteLossError:
        """A copy whose message names the last checkpoint on disk."""
        return NonFiniteLossError(self.iteration, self.terms, last_checkpoint)


class TrainingStopped(Exception):  # noqa: N818  (not an error: a requested stop)
    """A stop was requested (a signal) and honoured after ``iteration`` (0-based) completed.

    Attributes:
        iteration: the last completed iteration (0-based).
        checkpoint: the checkpoint holding it (None: none written).
        signum: the signal that asked to stop (None: no signal, e.g. in tests).
        during: what was interrupted: ``"training"``, ``"evaluation"`` (a periodic one, run
            again on ``--resume``) or ``"final evaluation"`` (training complete; ``--resume``
            evaluates).
    """

    def __init__(self, iteration: int, checkpoint: str | None = None, *,
                 signum: int | None = None, during: str = "training"):
        self.iteration = iteration
        self.checkpoint = checkpoint
        self.signum = signum
        self.during = during
        super().__init__(f"stopped after iteration {iteration} ({during})"
                         + (f"; checkpoint {checkpoint}" if checkpoint else ""))


def out_of_memory_error(iteration: int | None, phase: str) -> UserError:
    """The message for ``torch.OutOfMemoryError`` in ``phase`` ("training"/"evaluation")."""
    at = f" at iteration {iteration}" if iteration is not None else ""
    return UserError(f"out of GPU memory during {phase}{at}; lower "
                     + ", ".join(MEMORY_KEYS[phase])
                     + " (KEY VALUE overrides on the command line)")
