"""The learning-rate schedule (ferkit.schedule): the rate per epoch, the cycle ends, and how
a run's total of epochs is laid out into a first phase and warm restarts."""
import json
import math

import pytest

from ferkit import MODELS
from ferkit.recipes import DnnRecipe, SpecialistRecipe, Stage1Recipe
from ferkit.schedule import Schedule


def cosine(peak, within, length):
    """The rate the schedule has always given: a cosine from ``peak`` to 1% of it."""
    progress = within / max(length - 1, 1)
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def test_schedule_runs_a_first_cosine_then_warm_restarts():
    schedule = Schedule(first_epochs=4, lr=1e-3, cycles=2, cycle_epochs=3, cycle_lr=5e-4)
    rates = [schedule.learning_rate(e) for e in range(schedule.total)]
    assert schedule.total == 10
    assert rates[0] == pytest.approx(1e-3) and rates[3] == pytest.approx(1e-5)
    assert rates[4] == rates[7] == pytest.approx(5e-4) and rates[6] == pytest.approx(5e-6)
    assert all(a > b for a, b in zip(rates[:3], rates[1:4]))
    assert [e for e in range(10) if schedule.ends_cycle(e)] == [6, 9]
    assert schedule.position(5) == (1, 1, 3) and "cycle 2/2 epoch 1/3" in schedule.describe(7)


def test_the_default_total_reproduces_the_stage1_schedule_it_always_had():
    """120 epochs laid out: the first phase of 60 from 3e-4 and 10 warm restarts of 6 from
    1.5e-4 that the recipe ran when --epochs meant the first phase alone."""
    schedule = Schedule.of(Stage1Recipe())
    assert (schedule.first_epochs, schedule.cycles, schedule.cycle_epochs) == (60, 10, 6)
    assert schedule.total == 120 and schedule.cycles_left_out == 0
    expected = [cosine(3e-4, e, 60) for e in range(60)] + [
        cosine(1.5e-4, e % 6, 6) for e in range(60)]
    assert [schedule.learning_rate(e) for e in range(120)] == pytest.approx(expected, rel=1e-12)
    assert [e + 1 for e in range(120) if schedule.ends_cycle(e)] == list(range(66, 121, 6))
    assert schedule.learning_rate(59) == pytest.approx(3e-6)
    assert schedule.learning_rate(60) == pytest.approx(1.5e-4)


def test_each_trainer_s_default_layout():
    specialist, dnn = Schedule.of(SpecialistRecipe()), Schedule.of(DnnRecipe())
    assert (specialist.first_epochs, specialist.cycles, specialist.total) == (6, 4, 18)
    assert (dnn.first_epochs, dnn.cycles, dnn.total) == (40, 0, 40)
    scratch = Schedule.of(SpecialistRecipe.from_scratch())
    assert (scratch.first_epochs, scratch.lr, scratch.cycles) == (60, 3e-4, 4)


@pytest.mark.parametrize("epochs,first,cycles", [
    (2, 2, 0),     # a trial: no warm restart, the model is the best epoch
    (11, 11, 0),   # no room for a first phase of 6 and a warm restart of 6
    (12, 6, 1),    # the first phase keeps at least one warm restart's length
    (30, 6, 4),
    (120, 60, 10),
    (200, 140, 10),  # a longer run lengthens the first phase
])
def test_a_short_run_leaves_out_the_last_warm_restarts(epochs, first, cycles):
    schedule = Schedule.laid_out(epochs, 3e-4, 10, 6, 1.5e-4)
    assert (schedule.first_epochs, schedule.cycles, schedule.total) == (first, cycles, epochs)
    assert schedule.cycles_left_out == 10 - cycles


def test_what_a_short_run_leaves_out_is_one_line():
    trial = Schedule.laid_out(2, 3e-4, 10, 6, 1.5e-4)
    line = trial.left_out("ema")
    assert "\n" not in line and "10 warm restarts of 6 epochs" in line
    assert "Adam's moving average" in line and "best epoch" in line
    assert "mean of their ends" in trial.left_out("swa")
    assert "6 of the recipe's 10" in Schedule.laid_out(30, 3e-4, 10, 6, 1.5e-4).left_out("ema")
    assert Schedule.of(Stage1Recipe()).left_out("ema") is None
    assert trial.layout() == "2 epochs: a first phase of 2, no warm restarts"


def test_counts_of_one_are_singular():
    one = Schedule.laid_out(1, 3e-4, 1, 1, 1.5e-4)
    assert one.left_out("ema").startswith("left out: the recipe's 1 warm restart of 1 epoch ")
    assert "(no room in 1 epoch;" in one.left_out("ema")
    assert one.layout() == "1 epoch: a first phase of 1, no warm restarts"


def test_sidecars_record_the_total_and_the_layout_and_older_ones_still_read():
    schedule = Schedule.of(SpecialistRecipe())
    record = schedule.record()
    assert record["epochs"] == 18 and record["first_epochs"] == 6
    assert Schedule.recorded({"schedule": record}) == schedule
    # The form before the total, whose "epochs" was the first phase (the shipped models').
    older = {"epochs": 6, "lr": 1.5e-4, "cycles": 4, "cycle_epochs": 3, "cycle_lr": 1.5e-4}
    assert Schedule.recorded({"schedule": older}) == schedule
    for path in sorted(MODELS.glob("*.json")):
        shipped = json.loads(path.read_text())
        if "schedule" in shipped:
            assert Schedule.recorded(shipped).total == shipped["epochs_run"], path.name
        else:  # an average of trained models has no schedule of its own
            assert Schedule.recorded(shipped) is None and shipped["epochs_run"] == 0
