"""Frozen configs shared by the agents. Defaults are the paper's (SPIN, Landers et al., ICLR 2026, section 4).

Each agent's own config (``SPINConfig`` in ``spin_bench.agents.spin``, the baselines' in ``baselines/``) subclasses
one of these; ``spin_bench.agents.presets`` holds the named presets.
"""

from __future__ import annotations

from dataclasses import dataclass


def require(ok: bool, name: str, value: object, allowed: str) -> None:
    """A one-line ValueError naming the field, its value and what is allowed, unless ``ok``."""
    if not ok:
        raise ValueError(f"{name}={value!r} is out of range: {name} must be {allowed}")


def _positive_widths(name: str, widths: tuple[int, ...]) -> None:
    require(all(w >= 1 for w in widths), name, widths, "widths >= 1 (e.g. 256,256)")


@dataclass(frozen=True)
class TrainConfig:
    """The training budget and device options every agent shares."""

    num_steps: int = 1_000_000
    """Gradient steps of the (stage-2) offline training."""
    batch_size: int = 256
    """Transitions per gradient step."""
    lr: float = 3e-4
    """Adam learning rate of every network trained by ``update`` (constant)."""
    eval_every: int = 5_000
    """Gradient steps between evaluations."""
    eval_episodes: int = 10
    """Episodes per evaluation; episode k is reset with seed + 100 + k."""
    bf16: bool = True
    """On CUDA, bf16 autocast of the transformer forward passes only: the SAINT/SPIN actor (trunk and heads) and
    SPIN's ASM. Critics, values, TD targets, advantages, AWR weights, log-probabilities and every loss are float32
    always. Ignored on CPU and by the MLP and LSTM actors (F-IQL, BC, AR-IQL), which run float32 throughout;
    ``agent.precision`` says what a run used."""
    compile: bool = False
    """``torch.compile`` the loss computation (and SPIN's ASM forward pass) on first use, which takes tens of seconds
    on CPU. On CPU the compiled run draws the same dropout masks as the eager one and equals it within float32
    rounding; on CUDA inductor's own RNG draws them, a different random stream."""

    def __post_init__(self) -> None:
        for name in ("num_steps", "batch_size", "eval_every", "eval_episodes"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(self.lr > 0, "lr", self.lr, "> 0")


@dataclass(frozen=True)
class IQLConfig(TrainConfig):
    """Implicit Q-learning with a factorized critic Q(s, a) = sum_i U_i(s, a_i)."""

    gamma: float = 0.99
    """Discount; only true terminations stop the bootstrap."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    expectile: float = 0.8
    """Expectile of the value loss (0.5 is the mean; higher approaches the max over dataset actions)."""
    beta: float = 3.0
    """Inverse temperature of the AWR weights exp(beta * (Q - V))."""
    weight_clip: float = 100.0
    """Upper clip of the AWR weights."""
    num_critics: int = 2
    """Critics in the ensemble; targets use the min of their target copies."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of each critic MLP."""
    value_hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of the value MLP."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 <= self.gamma <= 1, "gamma", self.gamma, "in [0, 1]")
        require(0 < self.tau <= 1, "tau", self.tau, "in (0, 1]")
        require(0 < self.expectile < 1, "expectile", self.expectile, "in (0, 1)")
        require(self.beta > 0, "beta", self.beta, "> 0")
        require(self.weight_clip > 0, "weight_clip", self.weight_clip, "> 0")
        require(self.num_critics >= 1, "num_critics", self.num_critics, ">= 1")
        _positive_widths("critic_hidden", self.critic_hidden)
        _positive_widths("value_hidden", self.value_hidden)


@dataclass(frozen=True)
class TransformerActorConfig(IQLConfig):
    """IQL with the SAINT actor: a state token and N slot tokens through pre-LN self-attention blocks (SPIN's
    stage-2 actor, and SAINT's). SPIN's Action Structure Model has the same shape."""

    d_model: int = 256
    """Token width."""
    num_heads: int = 4
    """Attention heads per block."""
    num_blocks: int = 3
    """Pre-LayerNorm self-attention blocks."""
    ffn_mult: int = 2
    """FFN hidden width = ffn_mult * d_model."""
    dropout: float = 0.1
    """Dropout in the blocks (attention weights, residual branches) and in the per-dimension heads."""
    head_hidden: int = 128
    """Hidden width of each per-dimension head Linear(d, h) -> GELU -> Dropout -> Linear(h, m_i)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("d_model", "num_heads", "num_blocks", "ffn_mult", "head_hidden"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        # Attention splits the token width evenly between the heads.
        require(
            self.d_model % self.num_heads == 0, "d_model", self.d_model, f"a multiple of num_heads={self.num_heads}"
        )
        require(0 <= self.dropout < 1, "dropout", self.dropout, "in [0, 1)")
