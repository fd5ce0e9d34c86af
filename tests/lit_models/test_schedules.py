"""The learning-rate multiplier: warm-up, cosine, step and constant."""

import math

import pytest

from lit_models.schedules import lr_multiplier

EPOCH = 10  # steps per epoch
TOTAL = 100


def multipliers(schedule: str, **kwargs) -> list[float]:
    return [
        lr_multiplier(step, schedule=schedule, steps_per_epoch=EPOCH, total_steps=TOTAL, **kwargs)
        for step in range(TOTAL)
    ]


def test_warmup_is_linear_then_hands_over():
    values = multipliers("constant", warmup_epochs=2.0)
    assert values[:20] == pytest.approx([(s + 1) / 20 for s in range(20)])
    assert values[20:] == [1.0] * 80


def test_cosine_decays_from_one_to_zero_after_warmup():
    values = multipliers("cosine", warmup_epochs=1.0)
    assert values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0)
    assert values[55] == pytest.approx(0.5)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert lr_multiplier(TOTAL, schedule="cosine", steps_per_epoch=EPOCH, total_steps=TOTAL) == pytest.approx(0.0)


def test_cosine_without_warmup_matches_formula():
    values = multipliers("cosine")
    assert values == pytest.approx([0.5 * (1 + math.cos(math.pi * s / TOTAL)) for s in range(TOTAL)])


def test_step_decays_at_milestone_epochs():
    values = multipliers("step", milestones=(3, 7), gamma=0.5)
    assert values[29] == 1.0 and values[30] == 0.5
    assert values[69] == 0.5 and values[70] == 0.25


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedule": "linear"}, "schedule must be 'cosine', 'step' or 'constant', got 'linear'"),
        ({"schedule": "cosine", "steps_per_epoch": 0}, "must be >= 1, got 0 and 100"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    kwargs = {"steps_per_epoch": EPOCH, "total_steps": TOTAL, **kwargs}
    with pytest.raises(ValueError, match=message):
        lr_multiplier(0, **kwargs)


@pytest.mark.parametrize(("warmup_epochs", "steps_per_epoch"), [(0.3, 4), (0.25, 10), (0.1, 5)])
def test_fractional_warmup_never_exceeds_the_base_rate(warmup_epochs: float, steps_per_epoch: int) -> None:
    values = [
        lr_multiplier(step, schedule="constant", steps_per_epoch=steps_per_epoch, total_steps=100, warmup_epochs=warmup_epochs)
        for step in range(steps_per_epoch)
    ]
    assert max(values) == 1.0
    assert values == sorted(values)
