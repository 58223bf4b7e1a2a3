"""nn.training: the optimiser settings, schedule and step every training loop shares."""

from __future__ import annotations

import math

import pytest
import torch

from robot_rewards.nn.training import OptimConfig, lr_at, make_optimizer, optimizer_step, set_lr


def test_cosine_schedule_with_warmup_by_hand():
    cfg = OptimConfig(lr=1e-3, warmup_steps=4, schedule="cosine")
    assert [lr_at(s, cfg, 20) for s in range(4)] == [1e-3 * (s + 1) / 4 for s in range(4)]
    assert lr_at(4, cfg, 20) == pytest.approx(1e-3)  # warm-up ends at the full rate
    mid = 4 + (20 - 4) // 2
    assert lr_at(mid, cfg, 20) == pytest.approx(0.5e-3)
    assert lr_at(20, cfg, 20) == pytest.approx(0.0, abs=1e-12) and lr_at(99, cfg, 20) == pytest.approx(0.0, abs=1e-12)
    want = 1e-3 * 0.5 * (1 + math.cos(math.pi * (7 - 4) / 16))
    assert lr_at(7, cfg, 20) == want  # the exact float of the formula the loops used before


def test_constant_schedule_and_validation():
    cfg = OptimConfig(lr=2e-4)
    assert {lr_at(s, cfg, 10) for s in range(10)} == {2e-4}
    assert lr_at(0, OptimConfig(lr=2e-4, warmup_steps=2), 10) == 1e-4
    with pytest.raises(ValueError, match="schedule must be one of constant, cosine"):
        OptimConfig(schedule="linear")
    with pytest.raises(ValueError, match=">= 0"):
        OptimConfig(grad_clip=-1.0)


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def test_optimizer_step_equals_the_hand_written_update():
    x, y = torch.randn(16, 3, generator=torch.Generator().manual_seed(1)), torch.ones(16, 1)
    cfg = OptimConfig(lr=1e-2, weight_decay=1e-3, warmup_steps=2, schedule="cosine", grad_clip=0.05)
    a, b = _model(), _model()
    opt_a = make_optimizer(a.parameters(), cfg)
    opt_b = torch.optim.AdamW(b.parameters(), lr=1e-2, weight_decay=1e-3)
    for step in range(5):
        set_lr(opt_a, lr_at(step, cfg, 5))
        optimizer_step(opt_a, ((a(x) - y) ** 2).mean(), a.parameters(), cfg)
        for g in opt_b.param_groups:
            g["lr"] = lr_at(step, cfg, 5)
        loss = ((b(x) - y) ** 2).mean()
        opt_b.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(b.parameters(), 0.05)
        opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert opt_a.state_dict()["param_groups"] == opt_b.state_dict()["param_groups"]


def test_no_clipping_when_grad_clip_is_zero_and_param_groups_keep_their_decay():
    m = _model()
    groups = [{"params": [m[0].weight], "weight_decay": 0.5}, {"params": [m[0].bias, *m[2].parameters()], "weight_decay": 0.0}]
    opt = make_optimizer(groups, OptimConfig(lr=1.0, weight_decay=0.1))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.5, 0.0]
    before = m[2].bias.detach().clone()
    loss = (1e3 * m(torch.ones(1, 3))).sum()  # a huge gradient, not clipped
    optimizer_step(opt, loss, m.parameters(), OptimConfig(lr=1.0))
    assert float((m[2].bias.detach() - before).abs()) == pytest.approx(1.0, rel=1e-3)  # Adam's first step moves by lr
