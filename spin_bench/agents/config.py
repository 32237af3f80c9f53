"""Frozen configs shared by the agents. Defaults are the paper's (SPIN, Landers et al., ICLR 2026, section 4).

Each agent's own config subclasses one of these; ``spin_bench.agents.presets`` holds the named presets.
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
class SAINTConfig(IQLConfig):
    """IQL with the SAINT actor: a state token and N slot tokens through pre-LN self-attention blocks."""

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


@dataclass(frozen=True)
class SPINConfig(SAINTConfig):
    """SPIN: pretrain an Action Structure Model (ASM) on the dataset's actions, then train the SAINT actor's
    slots and heads with IQL on top of the ASM's frozen state encoder and blocks.

    The ASM has the actor's shape (``d_model`` ... ``head_hidden``, ``dropout`` above) so that its trunk can be
    copied; the fields below configure its masked action modelling.
    """

    asm_epochs: float = 100.0
    """ASM pretraining length in epochs of ceil(|D| / asm_batch_size) steps (fractions allowed)."""
    asm_steps: int | None = None
    """ASM pretraining length in steps, overriding ``asm_epochs`` when set (budgets that ignore |D|)."""
    asm_batch_size: int = 1024
    """Transitions per ASM step."""
    asm_lr: float = 4e-4
    """Adam learning rate of the ASM (constant)."""
    asm_grad_clip: float = 1.0
    """Global gradient-norm clip of the ASM."""
    mask_prob: float = 0.15
    """Probability that a sub-action token is selected for prediction (at least one per batch)."""
    mask_token_frac: float = 0.8
    """Of the selected tokens, the fraction replaced by [MASK]."""
    random_token_frac: float = 0.1
    """Of the selected tokens, the fraction replaced by a uniform random bin (the rest stay unchanged)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.asm_epochs > 0, "asm_epochs", self.asm_epochs, "> 0")
        require(self.asm_steps is None or self.asm_steps >= 1, "asm_steps", self.asm_steps, ">= 1, or none")
        require(self.asm_batch_size >= 1, "asm_batch_size", self.asm_batch_size, ">= 1")
        require(self.asm_lr > 0, "asm_lr", self.asm_lr, "> 0")
        require(self.asm_grad_clip > 0, "asm_grad_clip", self.asm_grad_clip, "> 0")
        require(0 < self.mask_prob <= 1, "mask_prob", self.mask_prob, "in (0, 1]")
        require(0 <= self.mask_token_frac <= 1, "mask_token_frac", self.mask_token_frac, "in [0, 1]")
        require(0 <= self.random_token_frac <= 1, "random_token_frac", self.random_token_frac, "in [0, 1]")
        require(
            self.mask_token_frac + self.random_token_frac <= 1,
            "random_token_frac",
            self.random_token_frac,
            f"<= 1 - mask_token_frac = {1 - self.mask_token_frac:g}",
        )
