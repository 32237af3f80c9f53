"""Hyperparameters of the online DecQN behaviour agent."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from spin_bench.overrides import apply_settings

OBSERVATION_TRANSFORMS = ("none", "symlog")
"""What the network may do to an observation before its first layer."""
LAYER_NORMS = ("first", "all")
"""Which hidden layers of the torso are followed by a LayerNorm."""
TARGET_CLIPS = ("none", "bound")
"""What bounds the TD targets: nothing, or the returns that rewards in [0, 1] allow."""
MATMUL_PRECISIONS = ("highest", "high", "medium")
"""torch.set_float32_matmul_precision's levels, for the learner's float32 matrix products."""


def check_choice(key: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else a ValueError naming the key, the value and the choices."""
    if value not in allowed:
        raise ValueError(f"{key}={value!r} is not one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class DecQNConfig:
    """DecQN (Seyde et al., 2023): decoupled per-dimension utilities, Q = mean over dimensions."""

    hidden: tuple[int, ...] = (256, 256)
    """Widths of the MLP torso."""
    layer_norm: str = "first"
    """``first``: a LayerNorm after the first hidden layer only; ``all``: after every hidden layer, which bounds
    |Q| by the head's weights on any input, so rare states cannot carry runaway values."""
    observation_transform: str = "none"
    """``none`` or ``symlog`` (sign(x) log(1 + |x|)) on observations before the torso."""
    matmul_precision: str = "highest"
    """The learner's float32 matmul precision (``torch.set_float32_matmul_precision``). ``highest``: true float32.
    ``medium``: bfloat16 inputs with float32 accumulation where the hardware has it (AMX or AVX512-BF16 CPUs,
    through oneDNN; CUDA), which makes the learner faster and changes its rounding. Rollouts, evaluations,
    snapshots and dataset builds stay float32."""
    utility_basis: int = 0
    """0: one free utility per (dimension, bin). K >= 2: each dimension's utilities over its bins are a polynomial
    of degree K - 1 in the bin's action value (K Legendre coefficients per dimension from the head), so the max
    over many bins is a max over K coefficients' noise, not over every bin's. With free utilities, dog-trot's
    critic overestimated 26-96x at 30 bins. Needs the same bins, more than K, in every dimension; snapshots fold
    it into an ordinary linear head, so they load and roll out like any other."""
    learning_rate: float = 3e-4
    """Adam step size."""
    batch_size: int = 256
    """Transitions per gradient step."""
    action_repeat: int = 1
    """Environment steps each chosen action is held for. With k > 1 the agent decides every k env steps: one
    stored transition is one decision, its reward the sum of the k env rewards (fewer at an episode's end), its
    next observation the one after them; ``n_step`` and ``gamma`` count decisions, ``replay_size`` and
    ``batch_size`` count transitions. ``--env-steps``, ``updates_per_step``, ``learning_starts``,
    ``epsilon_decay_steps``, ``chunk_steps`` and ``eval_interval`` stay in env steps. Evaluations hold actions the
    same way."""
    gamma: float = 0.99
    """Discount factor."""
    n_step: int = 3
    """Length of the n-step return; shorter at the ends of episodes."""
    tau: float = 0.005
    """Polyak rate of the target network, applied after every update."""
    huber_delta: float = 1.0
    """Huber loss threshold on the TD error."""
    target_clip: str = "none"
    """``none``, or ``bound``: clip each TD target to [0, 1 / (1 - gamma)], the returns DM Control's rewards in [0, 1]
    allow, so an overestimated bootstrap value cannot feed on itself (dog-trot at 10 bins passed 600 by 125k env
    steps without it)."""
    grad_clip: float = 40.0
    """Max global gradient norm."""
    replay_size: int = 1_000_000
    """Capacity of the replay buffer (transitions)."""
    priority_exponent: float = 0.0
    """Prioritized replay's alpha, in [0, 1]: transitions are drawn in proportion to (|TD error| + 1e-6) ** alpha.
    0 draws uniformly. DecQN's own agent used 0.6, which replays the rare transitions it cannot yet predict (a
    humanoid lifting its head) far more often than their share of the replay."""
    importance_exponent: float = 0.2
    """Prioritized replay's beta, in [0, 1]: each drawn transition's loss is weighted by (size * P(i)) ** -beta,
    divided by the batch's largest weight (DecQN's 0.2). Unused when ``priority_exponent`` is 0."""
    learning_starts: int = 10_000
    """Environment steps of uniform random actions before learning starts."""
    updates_per_step: float = 0.5
    """Gradient updates per environment step (the replay ratio)."""
    warm_start_refill: int = 100_000
    """After a warm start (``behaviour train --init-from``): transitions the expert collects into the empty replay
    before learning resumes (``learning_starts`` of a run from scratch). With 10k, a replay of one near-greedy
    policy made the learner forget: dog-trot's expert fell from 184 to 81 within 50k env steps."""
    warm_start_lr_warmup: int = 10_000
    """After a warm start: updates over which the step size ramps linearly up to ``learning_rate``. Fresh Adam
    moments make the first steps about ``learning_rate`` on every weight, a shock to a trained network."""
    epsilon_start: float = 1.0
    """Per-dimension exploration probability at the start of learning."""
    epsilon_end: float = 0.05
    """Per-dimension exploration probability after the decay."""
    epsilon_decay_steps: int = 100_000
    """Environment steps over which epsilon decays linearly (counted from ``learning_starts``)."""
    chunk_steps: int = 500
    """Environment steps each worker collects between weight refreshes."""
    eval_interval: int = 25_000
    """Environment steps between evaluations (each one also writes a snapshot and a checkpoint)."""
    eval_episodes: int = 10
    """Episodes per evaluation, seeded 1_000_000 + k so every evaluation sees the same starts."""
    eval_epsilon: float = 0.0
    """Per-dimension epsilon during evaluation (0 = greedy)."""

    def __post_init__(self) -> None:
        check_choice("layer_norm", self.layer_norm, LAYER_NORMS)
        check_choice("observation_transform", self.observation_transform, OBSERVATION_TRANSFORMS)
        check_choice("matmul_precision", self.matmul_precision, MATMUL_PRECISIONS)
        check_choice("target_clip", self.target_clip, TARGET_CLIPS)
        for key in ("priority_exponent", "importance_exponent"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{key}={getattr(self, key)} must be in [0, 1]")
        if self.action_repeat < 1:
            raise ValueError(f"action_repeat={self.action_repeat} must be >= 1 (env steps each action is held for)")
        if self.utility_basis < 0 or self.utility_basis == 1:
            raise ValueError(f"utility_basis={self.utility_basis} must be 0 (free utilities) or >= 2")

    def epsilon(self, env_steps: int) -> float:
        """Exploration probability after ``env_steps`` environment steps."""
        if env_steps < self.learning_starts:
            return 1.0
        progress = min(1.0, (env_steps - self.learning_starts) / max(1, self.epsilon_decay_steps))
        return self.epsilon_start + progress * (self.epsilon_end - self.epsilon_start)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> DecQNConfig:
        return cls(**{k: tuple(v) if k == "hidden" else v for k, v in data.items()})


def apply_overrides(config: DecQNConfig, overrides: list[str]) -> DecQNConfig:
    """Apply ``key=value`` strings (``hidden=512,512``, ``learning_rate=1e-4``) to a config: the ``--set`` grammar
    of ``spin_bench.overrides``, one value per key."""
    return apply_settings(config, overrides, item_prefix="bad override")
