"""The trainers' recipes (ferkit.recipes): the defaults the scripts show are the
dataclasses', every value is checked when a recipe is made, and a bad option value fails
before TensorFlow loads."""
import dataclasses
import json
import subprocess
import sys

import pytest

from conftest import ROOT
from ferkit.app import cnn_train
from ferkit.app import cnn_train_mod
from ferkit.app import dnn_train
from ferkit.app import cli
from ferkit.errors import ParameterError
from ferkit.recipes import (DnnRecipe, SpecialistRecipe, Stage1Recipe, recipe_from_record,
                            recipe_record)


@pytest.mark.parametrize("script,recipe", [(cnn_train, Stage1Recipe()), (dnn_train, DnnRecipe()),
                                           (cnn_train_mod, SpecialistRecipe())])
def test_each_script_s_defaults_are_its_recipe_s(script, recipe):
    args = script.parse_args([])
    fields = {"specific": recipe.specific} if isinstance(recipe, SpecialistRecipe) else {}
    assert cli.training_recipe(type(recipe), args, **fields) == recipe


def test_the_specialist_from_scratch_takes_stage1_s_first_phase():
    args = cnn_train_mod.parse_args(["--init-from", "none"])
    recipe = cli.training_recipe(SpecialistRecipe, args, specific=(0, 2, 4, 6))
    assert recipe == SpecialistRecipe.from_scratch()
    assert (recipe.epochs, recipe.lr, recipe.init_from) == (72, 3e-4, None)


def test_options_change_the_recipe_and_the_help_says_what_epochs_is(capsys):
    args = cnn_train.parse_args(["--epochs", "30", "--cycles", "2", "--no-augment",
                                 "--no-bn-recalibration", "--average", "swa"])
    recipe = cli.training_recipe(Stage1Recipe, args)
    assert (recipe.epochs, recipe.cycles, recipe.augment, recipe.recalibrate_bn,
            recipe.average) == (30, 2, False, False, "swa")
    assert args.given == {"epochs", "cycles", "average"}
    with pytest.raises(SystemExit):
        cnn_train.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "epochs of the whole run, warm restarts included (default: 120)" in text
    assert "The defaults train 120 epochs: a first phase of 60, then 10 warm restarts of 6" in text
    assert "the last warm restarts are left out" in text


@pytest.mark.parametrize("field,value,message", [
    ("epochs", 0, "expected a positive integer, found 0"),
    ("cycles", -1, "expected 0 or more warm restarts, found -1"),
    ("cycle_epochs", 0, "expected a positive integer, found 0"),
    ("lr", 0.0, "expected a positive learning rate, found 0.0"),
    ("label_smoothing", 1.0, "expected a share from 0 up to (not including) 1, found 1.0"),
    ("ema_momentum", 1.0, "expected a momentum between 0 and 1, found 1.0"),
    ("val_split", 1.5, "expected a share between 0 and 1, found 1.5"),
    ("average", "mean", "expected one of swa, ema, found mean"),
    ("precision", "int8", "expected one of auto, float32, bfloat16, float16, found int8"),
    ("conv_dropout", 1.0, "expected a dropout rate from 0 up to 1, found 1.0"),
    ("specific", (4, 4), "expected at least two distinct classes 0-6"),
])
def test_a_bad_value_is_refused_naming_its_field(field, value, message):
    with pytest.raises(ParameterError) as caught:
        SpecialistRecipe(**{field: value})
    assert caught.value.parameter == field and message in str(caught.value)


def test_recipes_are_frozen_and_recorded_as_json():
    recipe = SpecialistRecipe(specific=(4, 2), epochs=9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.epochs = 10
    record = json.loads(json.dumps(recipe_record(recipe)))
    assert record["kind"] == "SpecialistRecipe" and record["specific"] == [4, 2]
    assert recipe_from_record(record) == recipe and recipe.classes == (4, 2)
    assert Stage1Recipe().classes == DnnRecipe().classes == tuple(range(7))
    assert DnnRecipe().build_options == {"dense_dropout": 0.3}


# Each trainer with a bad value, in one fresh Python: the one line, exit 2, and whether
# TensorFlow had been imported by then.
FAIL_FAST = r"""
import contextlib, io, json, sys
from ferkit.app import cli
report = {}
for module, argv in json.loads(sys.argv[1]):
    main = __import__(module).main
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.run(main, argv)
    report[module] = [code, err.getvalue(), "tensorflow" in sys.modules]
print(json.dumps(report))
"""


def test_a_bad_option_value_fails_before_tensorflow_loads(tmp_path):
    cases = [("cnn_train", ["--epochs", "0"]), ("dnn_train", ["--lr", "-1"]),
             ("cnn_train_mod", ["--label-smoothing", "2", "--init-from", "none"])]
    cases = [(module, [*argv, "--out", str(tmp_path / f"{module}.h5")]) for module, argv in cases]
    result = subprocess.run([sys.executable, "-c", FAIL_FAST, json.dumps(cases)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    report = json.loads(result.stdout)
    assert report == {
        "cnn_train": [2, "error: --epochs: expected a positive integer, found 0\n", False],
        "dnn_train": [2, "error: --lr: expected a positive learning rate, found -1.0\n", False],
        "cnn_train_mod": [2, "error: --label-smoothing: expected a share from 0 up to (not "
                             "including) 1, found 2.0\n", False]}
