"""Frozen configs shared by the agents. Defaults are the paper's (SPIN, ICLR 2026, section 4 of REFERENCE.md).

Each agent's own config subclasses one of these; ``spin_bench.agents.presets`` holds the named presets.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    """bf16 autocast for forward passes on CUDA (ignored on CPU, which always runs float32)."""
    compile: bool = False
    """``torch.compile`` the loss computation on CUDA (ignored on CPU)."""


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
