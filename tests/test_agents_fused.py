"""The agents' faster pieces equal the computations they replace, and the agents start from the same weights."""

import copy

import pytest
import torch
import torch.nn.functional as F

from spin_bench.agents.base import adam
from spin_bench.agents.layers import short_log_softmax, short_softmax
from spin_bench.agents.spin import masked_modelling_loss
from spin_bench.agents.transformer import SelfAttention, attention_with_dropout
from spin_bench.registry import make_agent

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Sum and sum of squares of each network's initial parameters (seed 0, cheetah-run shapes, preset quick), as the
# agents built them before their updates were sped up: a seeded agent must start from the same weights.
INITIAL_WEIGHTS = {
    "spin": {"actor": (266.387287, 1109.468982), "critic": (12.457313, 366.100012), "value": (-3.84772, 176.845007)},
    "saint": {"actor": (266.387287, 1109.468982), "critic": (12.457313, 366.100012), "value": (-3.84772, 176.845007)},
    "f-iql": {"actor": (-4.639078, 180.606084), "critic": (14.779058, 365.841805), "value": (-16.252018, 178.081347)},
    "ar-iql": {"actor": (-11.021994, 912.250287), "critic": (32.175672, 364.614513), "value": (20.022057, 177.067845)},
    "bc": {"actor": (-4.639078, 180.606084)},
}


def logits_with_padding(shape=(64, 5, 4), seed=0) -> torch.Tensor:
    """Large logits (a shift-free formula overflows on them) with -inf on some padded bins."""
    g = torch.Generator().manual_seed(seed)
    x = 300 * torch.randn(shape, generator=g)
    x[:, 1, 3] = float("-inf")
    return x.requires_grad_(True)


@pytest.mark.parametrize("ours, reference", [(short_log_softmax, F.log_softmax), (short_softmax, F.softmax)])
def test_short_softmax_equals_torchs_with_its_gradient(ours, reference):
    x = logits_with_padding()
    y = copy.deepcopy(x)
    out, expected = ours(x), reference(y, dim=-1)
    torch.testing.assert_close(out, expected)
    weights = torch.randn(out.shape).masked_fill(torch.isinf(out), 0.0)  # no gradient through -inf entries
    (out.masked_fill(torch.isinf(out), 0.0) * weights).sum().backward()
    (expected.masked_fill(torch.isinf(expected), 0.0) * weights).sum().backward()
    torch.testing.assert_close(x.grad, y.grad)


def test_masked_modelling_loss_is_the_cross_entropy_over_selected_tokens():
    logits = logits_with_padding((32, 6, 4), seed=1)
    actions = torch.randint(0, 3, (32, 6))
    selected = torch.rand(32, 6) < 0.3
    ce = F.cross_entropy(logits.flatten(0, 1), actions.flatten(), reduction="none").view_as(actions)
    torch.testing.assert_close(masked_modelling_loss(logits, actions, selected), (ce * selected).sum() / selected.sum())


@pytest.mark.parametrize("tokens, head_dim", [(7, 16), (39, 64)])
def test_attention_with_dropout_equals_sdpa_with_the_same_dropout_mask(tokens, head_dim):
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(8, 4, tokens, head_dim, generator=g, requires_grad=True) for _ in range(3))
    q2, k2, v2 = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
    torch.manual_seed(3)
    out = attention_with_dropout(q, k, v, 0.3)
    torch.manual_seed(3)
    expected = F.scaled_dot_product_attention(q2, k2, v2, dropout_p=0.3)
    torch.testing.assert_close(out, expected)
    grad = torch.randn(out.shape, generator=g)
    out.backward(grad)
    expected.backward(grad)
    for ours, theirs in ((q, q2), (k, k2), (v, v2)):
        torch.testing.assert_close(ours.grad, theirs.grad)
    torch.manual_seed(3)  # and both leave torch's global RNG at the same place

    attention_with_dropout(q, k, v, 0.3)
    after_ours = torch.get_rng_state()
    torch.manual_seed(3)
    F.scaled_dot_product_attention(q2, k2, v2, dropout_p=0.3)
    assert torch.equal(after_ours, torch.get_rng_state())


def test_self_attention_trains_with_the_written_out_attention_and_evaluates_with_sdpa():
    attention = SelfAttention(32, 4, dropout=0.2)
    x = torch.randn(16, 7, 32)
    torch.manual_seed(4)
    trained = attention(x)
    q, k, v = attention.qkv(x).view(16, 7, 3, 4, -1).permute(2, 0, 3, 1, 4)
    torch.manual_seed(4)
    y = F.scaled_dot_product_attention(q, k, v, dropout_p=0.2)
    torch.testing.assert_close(trained, attention.out(y.transpose(1, 2).reshape(16, 7, 32)))
    attention.eval()
    y = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(attention(x), attention.out(y.transpose(1, 2).reshape(16, 7, 32)))


def test_fused_adam_takes_the_per_tensor_adam_steps():
    g = torch.Generator().manual_seed(5)
    params = [torch.nn.Parameter(torch.randn(shape, generator=g)) for shape in [(2, 16, 8), (8,), (3, 1, 4)]]
    reference = [torch.nn.Parameter(p.detach().clone()) for p in params]
    groups = [{"params": params[:2]}, {"params": params[2:]}]
    fused = adam(groups, 3e-4, torch.device("cpu"))
    plain = torch.optim.Adam([{"params": reference[:2]}, {"params": reference[2:]}], lr=3e-4, foreach=False)
    assert fused.defaults["fused"]
    assert make_agent("bc", 3, [3, 2]).optimizer.defaults["fused"]  # what the agents train with on CPU
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=g) for p in params]
        for p, r, grad in zip(params, reference, grads, strict=True):
            p.grad, r.grad = grad.clone(), grad.clone()
        fused.step()
        plain.step()
    for p, r in zip(params, reference, strict=True):
        torch.testing.assert_close(p, r, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(INITIAL_WEIGHTS))
def test_a_seeded_agent_starts_from_the_same_weights(name):
    agent = make_agent(name, 17, [3] * 6, "quick", "cpu", 0)
    networks = agent._networks()
    for net, (total, squares) in INITIAL_WEIGHTS[name].items():
        flat = torch.cat([p.detach().flatten() for p in networks[net].parameters()]).double()
        assert flat.sum().item() == pytest.approx(total, abs=1e-4)
        assert flat.square().sum().item() == pytest.approx(squares, rel=1e-7)
