"""Run identities and checkpoints stay what they were: where agents' code lives must not change a run's folder
(its label and the hash of its resolved config), a config's field order, or a checkpoint's state-dict keys.

The values below were computed by the code that produced the committed results; a changed value means the results
already on disk (and their resumable checkpoints) no longer belong to the runs that made them.
"""

import dataclasses
import hashlib

import pytest

from spin_bench.agents.presets import PRESETS
from spin_bench.registry import AGENT_NAMES, make_agent, make_config
from spin_bench.runner.spec import RunSpec

# Label (preset, changed fields, identity hash) of cheetah-run medium, 3 bins, on data of a fixed sha256: seed 0
# with the preset alone, and seed 1 with num_steps=300 and lr=1e-3 set.
LABELS = {
    ("spin", "paper"): ("paper-74dc867b", "paper-num_steps=300-lr=0.001-40fc6653"),
    ("spin", "lite"): ("lite-7a8ae688", "lite-num_steps=300-lr=0.001-79c28af8"),
    ("spin", "quick"): ("quick-bb126d1b", "quick-num_steps=300-lr=0.001-18a4d35c"),
    ("saint", "paper"): ("paper-ad4bcbcb", "paper-num_steps=300-lr=0.001-4ecd2a48"),
    ("saint", "lite"): ("lite-77875c6d", "lite-num_steps=300-lr=0.001-0a0b13cf"),
    ("saint", "quick"): ("quick-358982b4", "quick-num_steps=300-lr=0.001-82871ae8"),
    ("f-iql", "paper"): ("paper-9576e76b", "paper-num_steps=300-lr=0.001-e1a3c5f9"),
    ("f-iql", "lite"): ("lite-787d7655", "lite-num_steps=300-lr=0.001-be93eade"),
    ("f-iql", "quick"): ("quick-0bd0084d", "quick-num_steps=300-lr=0.001-8864e724"),
    ("ar-iql", "paper"): ("paper-6d7c0957", "paper-num_steps=300-lr=0.001-29dc5e84"),
    ("ar-iql", "lite"): ("lite-a07ef881", "lite-num_steps=300-lr=0.001-fc76c434"),
    ("ar-iql", "quick"): ("quick-87ecd819", "quick-num_steps=300-lr=0.001-e5394340"),
    ("bc", "paper"): ("paper-12de96fb", "paper-num_steps=300-lr=0.001-e5915151"),
    ("bc", "lite"): ("lite-9eb0c396", "lite-num_steps=300-lr=0.001-1ce7ed02"),
    ("bc", "quick"): ("quick-e69fb182", "quick-num_steps=300-lr=0.001-d5478977"),
}

_TRAIN = ("num_steps", "batch_size", "lr", "eval_every", "eval_episodes", "bf16", "compile")
_IQL = ("gamma", "tau", "expectile", "beta", "weight_clip", "num_critics", "critic_hidden", "value_hidden")
_TRANSFORMER = ("d_model", "num_heads", "num_blocks", "ffn_mult", "dropout", "head_hidden")
_ASM = (
    *("asm_epochs", "asm_steps", "asm_batch_size", "asm_lr", "asm_grad_clip"),
    *("mask_prob", "mask_token_frac", "random_token_frac"),
)
# Field order is what config.json, `spin-bench list presets` and a label's changed fields are written in.
CONFIG_FIELDS = {
    "spin": (*_TRAIN, *_IQL, *_TRANSFORMER, *_ASM),
    "saint": (*_TRAIN, *_IQL, *_TRANSFORMER),
    "f-iql": (*_TRAIN, *_IQL, "actor_hidden", "actor_dropout"),
    "ar-iql": (*_TRAIN, *_IQL, "state_embed", "action_embed", "lstm_hidden", "lstm_layers"),
    "bc": (*_TRAIN, "actor_hidden", "actor_dropout"),
}

# sha256[:16] of each network's state-dict keys in order (cheetah-run shapes, preset quick): checkpoints load.
_CRITIC, _VALUE = "310033f817449c70", "76aeb961f41eb394"
STATE_KEYS = {
    "spin": {"actor": "6a441d4afa01b7ef", "critic": _CRITIC, "critic_target": _CRITIC, "value": _VALUE},
    "saint": {"actor": "6a441d4afa01b7ef", "critic": _CRITIC, "critic_target": _CRITIC, "value": _VALUE},
    "f-iql": {"actor": "d8df86f3ccc97ead", "critic": _CRITIC, "critic_target": _CRITIC, "value": _VALUE},
    "ar-iql": {"actor": "7e7a835c27e2070f", "critic": _CRITIC, "critic_target": _CRITIC, "value": _VALUE},
    "bc": {"actor": "d8df86f3ccc97ead"},
}


def test_every_agent_and_preset_is_recorded():
    assert set(LABELS) == {(a, p) for a in AGENT_NAMES for p in PRESETS}
    assert tuple(CONFIG_FIELDS) == AGENT_NAMES


@pytest.mark.parametrize("agent, preset", list(LABELS))
def test_run_folders_keep_their_names_and_hashes(agent, preset):
    plain = RunSpec(agent, "cheetah-run", "medium", 3, 0, preset, data_digest="0" * 64)
    overridden = RunSpec(
        agent, "cheetah-run", "medium", 3, 1, preset, (("num_steps", 300), ("lr", 1e-3)), data_digest="ab" * 32
    )
    assert (plain.label, overridden.label) == LABELS[(agent, preset)]
    assert plain.folder("R").as_posix() == f"R/{agent}/cheetah-run/medium/bins3/{LABELS[(agent, preset)][0]}/seed0"


@pytest.mark.parametrize("agent", list(CONFIG_FIELDS))
def test_config_fields_keep_their_order(agent):
    assert tuple(f.name for f in dataclasses.fields(make_config(agent))) == CONFIG_FIELDS[agent]


@pytest.mark.parametrize("agent", list(STATE_KEYS))
def test_checkpoints_keep_their_state_dict_keys(agent):
    networks = make_agent(agent, 17, [3] * 6, preset="quick").state_dict()["networks"]
    digests = {name: hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16] for name, keys in networks.items()}
    assert digests == STATE_KEYS[agent]
