"""The one ``key=value`` grammar (run's and the behaviour trainer's ``--set``), config ranges, and run identity."""

import dataclasses
import json

import pytest

from baselines.saint import SAINTConfig
from spin_bench.agents.config import IQLConfig, TrainConfig
from spin_bench.agents.spin import SPINConfig
from spin_bench.overrides import expand_grid, parse_settings, read_settings_file, settings_from_mapping
from spin_bench.pipeline.behaviour.config import DecQNConfig, apply_overrides
from spin_bench.registry import make_config
from spin_bench.runner.spec import RunSpec


def test_values_are_parsed_as_the_fields_types():
    settings = parse_settings(
        SPINConfig,
        [
            "num_steps=1e6",
            "lr=3e-4",
            "beta=1",
            "bf16=false",
            "compile=yes",
            "critic_hidden=512,512",
            "asm_steps=none",
            "batch_size=1_024",
        ],
    )
    assert settings == {
        "num_steps": [1_000_000],
        "lr": [3e-4],
        "beta": [1.0],
        "bf16": [False],
        "compile": [True],
        "critic_hidden": [(512, 512)],
        "asm_steps": [None],
        "batch_size": [1024],
    }
    assert isinstance(settings["beta"][0], float) and isinstance(settings["num_steps"][0], int)


def test_a_comma_list_is_a_grid_and_a_tuple_grid_uses_slashes():
    settings = parse_settings(IQLConfig, ["beta=1,3,10", "critic_hidden=256,256/512,512", "expectile=0.7"])
    assert settings == {"beta": [1.0, 3.0, 10.0], "critic_hidden": [(256, 256), (512, 512)], "expectile": [0.7]}
    grid = expand_grid(settings)
    assert len(grid) == 6
    assert grid[0] == {"beta": 1.0, "critic_hidden": (256, 256), "expectile": 0.7}
    assert grid[-1] == {"beta": 10.0, "critic_hidden": (512, 512), "expectile": 0.7}
    assert expand_grid({}) == [{}]


def test_file_values_follow_the_same_rules():
    mapping = {"beta": [1, 3], "critic_hidden": [64, 64], "value_hidden": [[32], [64, 64]], "expectile": "0.6,0.9"}
    assert settings_from_mapping(IQLConfig, mapping) == {
        "beta": [1.0, 3.0],
        "critic_hidden": [(64, 64)],  # a list of numbers in a tuple field is one tuple
        "value_hidden": [(32,), (64, 64)],  # a list of lists is a grid
        "expectile": [0.6, 0.9],
    }


@pytest.mark.parametrize(
    "item, message",
    [
        ("nosuch=1", "IQLConfig has no field 'nosuch'; valid fields: num_steps, batch_size"),
        ("expectle=0.9", "IQLConfig has no field 'expectle' (did you mean expectile?)"),
        ("beta=abc", "beta=abc is not valid: beta takes a number"),
        ("num_steps=2.5", "num_steps=2.5 is not valid: num_steps takes an integer"),
        ("bf16=maybe", "bf16=maybe is not valid: bf16 takes true or false"),
        ("critic_hidden=256,a", "critic_hidden=256,a is not valid: critic_hidden takes integers joined by commas"),
        ("beta=1,,3", "beta=1,,3: empty value in the list"),
        ("beta=1,1", "beta=1,1: a value is repeated in the grid"),
        ("beta", "bad setting 'beta': write key=value"),
    ],
)
def test_bad_settings_name_the_field_and_what_is_allowed(item, message):
    with pytest.raises(ValueError) as err:
        parse_settings(IQLConfig, [item])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_field_set_twice_is_refused_where_grids_are_allowed_and_the_later_wins_elsewhere():
    with pytest.raises(ValueError, match="beta is set twice; give several values as one grid"):
        parse_settings(IQLConfig, ["beta=1", "beta=3"])
    # The behaviour trainer's commands are replayed with extra --set options: the later one wins.
    assert apply_overrides(DecQNConfig(), ["gamma=0.9", "gamma=0.95"]).gamma == 0.95


@pytest.mark.parametrize(
    "cls, changes, message",
    [
        (TrainConfig, {"num_steps": 0}, "num_steps=0 is out of range: num_steps must be >= 1"),
        (TrainConfig, {"lr": 0.0}, "lr=0.0 is out of range: lr must be > 0"),
        (IQLConfig, {"expectile": 2.0}, "expectile=2.0 is out of range: expectile must be in (0, 1)"),
        (IQLConfig, {"beta": -1.0}, "beta=-1.0 is out of range: beta must be > 0"),
        (IQLConfig, {"tau": 0.0}, "tau=0.0 is out of range: tau must be in (0, 1]"),
        (IQLConfig, {"critic_hidden": (256, 0)}, "critic_hidden=(256, 0) is out of range"),
        (SAINTConfig, {"d_model": 30}, "d_model=30 is out of range: d_model must be a multiple of num_heads=4"),
        (SAINTConfig, {"dropout": 1.0}, "dropout=1.0 is out of range: dropout must be in [0, 1)"),
        (SPINConfig, {"asm_steps": 0}, "asm_steps=0 is out of range: asm_steps must be >= 1, or none"),
        (SPINConfig, {"mask_prob": 1.5}, "mask_prob=1.5 is out of range: mask_prob must be in (0, 1]"),
        (SPINConfig, {"random_token_frac": 0.3}, "random_token_frac=0.3 is out of range"),
    ],
)
def test_configs_refuse_out_of_range_values(cls, changes, message):
    with pytest.raises(ValueError) as err:
        cls(**changes)
    assert message in str(err.value)
    dataclasses.replace(cls(), **{k: getattr(cls(), k) for k in changes})  # the defaults pass


def test_make_config_checks_types_and_names_the_agent():
    assert make_config("f-iql", beta=1) == make_config("f-iql", beta=1.0)  # one config, one identity
    with pytest.raises(ValueError, match=r"agent bc \(BCConfig\) has no field 'beta'"):
        make_config("bc", beta=1.0)
    with pytest.raises(ValueError, match="beta=abc is not valid"):
        make_config("f-iql", beta="abc")


def test_the_behaviour_trainer_uses_the_same_grammar():
    config = apply_overrides(DecQNConfig(), ["hidden=512,512", "learning_rate=1e-4", "layer_norm=all"])
    assert config.hidden == (512, 512) and config.learning_rate == 1e-4 and config.layer_norm == "all"
    with pytest.raises(ValueError, match="bad override 'learning_rate=1e-4,3e-4': learning_rate=1e-4,3e-4: one value"):
        apply_overrides(DecQNConfig(), ["learning_rate=1e-4,3e-4"])
    with pytest.raises(ValueError, match=r"bad override 'hiden=64': DecQNConfig has no field 'hiden' \(did you mean"):
        apply_overrides(DecQNConfig(), ["hiden=64"])
    with pytest.raises(ValueError, match="bad override 'hidden=64,x': hidden=64,x is not valid: hidden takes integers"):
        apply_overrides(DecQNConfig(), ["hidden=64,x"])


def test_settings_files_json_and_yaml(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"beta": [1, 10]}))
    (tmp_path / "b.yaml").write_text("beta: [1, 10]\ncritic_hidden: [64, 64]\n")
    assert read_settings_file(tmp_path / "a.json") == {"beta": [1, 10]}
    assert read_settings_file(tmp_path / "b.yaml") == {"beta": [1, 10], "critic_hidden": [64, 64]}
    (tmp_path / "bad.json").write_text("{beta: 1")
    with pytest.raises(ValueError, match="bad.json' is not valid JSON"):
        read_settings_file(tmp_path / "bad.json")
    (tmp_path / "list.yaml").write_text("- beta\n")
    with pytest.raises(ValueError, match="must hold a mapping of field: value, not a list"):
        read_settings_file(tmp_path / "list.yaml")


def _spec(seed=0, overrides=(), digest=None, preset="quick"):
    return RunSpec("f-iql", "cheetah-run", "medium", 3, seed, preset, overrides, digest)


def test_the_run_folder_is_named_by_the_resolved_config_and_the_data(tmp_path):
    base = _spec()
    assert base.folder(tmp_path).relative_to(tmp_path).parts[:4] == ("f-iql", "cheetah-run", "medium", "bins3")
    label = base.folder(tmp_path).parent.name
    assert label.startswith("quick-") and len(label) == len("quick-") + 8
    # Readable: the preset and the fields changed from it, then the hash.
    changed = _spec(overrides=(("num_steps", 300), ("beta", 1.0)))
    assert changed.label.startswith("quick-num_steps=300-beta=1-")
    assert changed.label == _spec(overrides=(("beta", 1), ("num_steps", 300))).label  # order and 1 vs 1.0
    # Setting a field to the preset's value is the same config, so the same run.
    assert _spec(overrides=(("num_steps", 5000),)).folder(tmp_path) == base.folder(tmp_path)
    # Seeds of one config sit side by side; another config or other data is another folder.
    assert _spec(seed=1).folder(tmp_path).parent == base.folder(tmp_path).parent
    assert _spec(overrides=(("beta", 10.0),)).folder(tmp_path).parent != base.folder(tmp_path).parent
    with_data = base.with_data_digest("ab" * 32)
    assert with_data.data_digest == "ab" * 32 and with_data.folder(tmp_path) != base.folder(tmp_path)
    assert with_data.folder(tmp_path) != base.with_data_digest("cd" * 32).folder(tmp_path)
    # Tuples and file-unsafe characters stay readable in the name.
    assert "critic_hidden=64x64" in _spec(overrides=(("critic_hidden", (64, 64)),)).label


def test_the_spec_records_its_identity():
    spec = _spec(overrides=(("critic_hidden", [64, 64]),), digest="ab" * 32)
    assert spec.resolved_config() == make_config("f-iql", "quick", critic_hidden=(64, 64))
    record = spec.to_dict()
    assert record["data_digest"] == "ab" * 32 and record["label"] == spec.label
    assert record["overrides"] == {"critic_hidden": [64, 64]}
    assert json.loads(json.dumps(record)) == record
    hash(spec)  # specs key dicts of outcomes


def test_a_long_label_stays_a_valid_file_name():
    many = tuple((f, v) for f, v in [("num_steps", 7), ("batch_size", 3), ("lr", 0.123456789), ("eval_every", 7)])
    many += (("critic_hidden", (1024,) * 12), ("value_hidden", (1024,) * 12), ("expectile", 0.55), ("beta", 7.5))
    label = _spec(overrides=many).label
    assert len(label) <= 160 and "more-" in label
