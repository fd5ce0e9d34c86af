"""Learning-rate schedules as plain multiplier functions of the optimizer step."""

import math
from collections.abc import Sequence
from typing import Literal

#: Names accepted by :func:`lr_multiplier` and :class:`~lit_models.ImageClassifier`.
Schedule = Literal["cosine", "step", "constant"]


def lr_multiplier(
    step: int,
    *,
    schedule: Schedule,
    steps_per_epoch: int,
    total_steps: int,
    warmup_epochs: float = 0.0,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
) -> float:
    r"""Factor applied to the base learning rate at optimizer step ``step`` (0-based).

    A linear warm-up from ``1 / warmup_steps`` to ``1`` over the first
    ``warmup_epochs`` epochs, then

    - ``"cosine"``: :math:`\tfrac12 (1 + \cos(\pi p))`, with ``p`` the fraction of the
      post-warm-up steps done, reaching 0 at ``total_steps``;
    - ``"step"``: ``gamma ** k``, ``k`` the number of ``milestones`` (epochs) reached;
    - ``"constant"``: ``1``.

    Epochs are counted in steps, so the schedule is smooth within an epoch and the same
    function serves per-step :class:`~torch.optim.lr_scheduler.LambdaLR` updates.

    Args:
        step (int): optimizer steps taken so far.
        schedule (str): ``"cosine"``, ``"step"`` or ``"constant"``.
        steps_per_epoch (int): optimizer steps in one epoch (>= 1).
        total_steps (int): optimizer steps of the whole run (>= 1).
        warmup_epochs (float): length of the linear warm-up, in epochs. Default: ``0.0``.
        milestones (Sequence[int]): epochs at which ``"step"`` multiplies by ``gamma``.
            Default: ``()``.
        gamma (float): decay factor of ``"step"``. Default: ``0.1``.

    Returns:
        float: the multiplier, in ``[0, 1]`` for ``gamma <= 1``.

    Example:
        >>> lr_multiplier(0, schedule="cosine", steps_per_epoch=10, total_steps=100)
        1.0
        >>> lr_multiplier(50, schedule="cosine", steps_per_epoch=10, total_steps=100)
        0.5
        >>> lr_multiplier(4, schedule="constant", steps_per_epoch=10, total_steps=100,
        ...               warmup_epochs=1.0)
        0.5
        >>> lr_multiplier(25, schedule="step", steps_per_epoch=10, total_steps=100,
        ...               milestones=(2,), gamma=0.1)
        0.1
    """
    if steps_per_epoch < 1 or total_steps < 1:
        raise ValueError(
            f"steps_per_epoch and total_steps must be >= 1, got {steps_per_epoch} and {total_steps}"
        )
    warmup_steps = warmup_epochs * steps_per_epoch
    if step < warmup_steps:
        # Capped: with a fractional warm-up the last warm-up step would otherwise overshoot 1.
        return min(1.0, (step + 1) / warmup_steps)
    if schedule == "cosine":
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    if schedule == "step":
        epoch = step / steps_per_epoch
        return gamma ** sum(epoch >= milestone for milestone in milestones)
    if schedule == "constant":
        return 1.0
    raise ValueError(f"schedule must be 'cosine', 'step' or 'constant', got {schedule!r}")
