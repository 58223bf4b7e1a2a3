"""Diffusion policy units: schedule, normaliser, sampling, checkpoints, input errors, samplers."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors import safe_open

from robot_rewards.core import Candidates, Observation, Primitive, Workspace
from robot_rewards.eval.policy import candidate_diversity
from robot_rewards.nn.encoders import UNK, build_vocab, tokenize
from robot_rewards.nn.normalizer import ActionNormalizer, NormalizerError
from robot_rewards.policy.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    load_policy,
    save_policy,
)
from robot_rewards.policy.config import PolicyConfig, keep_flat_targets, policy_perception
from robot_rewards.policy.denoiser import Denoiser
from robot_rewards.policy.model import DiffusionPolicy, PolicyBatch, PolicyInputError
from robot_rewards.policy.schedule import NoiseSchedule, ddim_timesteps, row_generators
from robot_rewards.robots.kinematics import wrap_gripper_yaw

GOAL = "put the red block in the green bowl"


def tiny_config(**kw) -> PolicyConfig:
    base = dict(point_channels=[16, 32], attention_heads=2, obs_dim=32, goal_dim=32, token_dim=8,
                max_goal_tokens=12, width=64, blocks=2, time_dim=16)
    base.update(kw)
    return PolicyConfig(**base)


def demo_actions(n=32, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pick = np.c_[rng.uniform(0.4, 0.6, (n, 2)), np.full(n, 0.02)]
    place = np.c_[rng.uniform(0.4, 0.6, (n, 2)), np.full(n, 0.034)]
    return np.c_[pick, place, rng.uniform(-np.pi, np.pi, n)]


def make_policy(seed=0, **kw) -> DiffusionPolicy:
    torch.manual_seed(seed)
    norm = ActionNormalizer.fit("pick_place", demo_actions())
    return DiffusionPolicy(tiny_config(**kw), "pick_place", norm, build_vocab([GOAL])).eval()


def make_obs(seed=0, n=256, goal=GOAL) -> Observation:
    rng = np.random.default_rng(seed)
    pts = rng.uniform([0.3, -0.3, 0.0], [0.7, 0.3, 0.05], (n, 3)).astype(np.float32)
    cols = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    return Observation(frames={}, proprio=None, goal=goal, points=pts, colors=cols)


# -- schedule -----------------------------------------------------------------------------------

def test_cosine_schedule_properties():
    s = NoiseSchedule(100, "squaredcos_cap_v2")
    ab = s.alphas_cumprod
    assert ab.shape == (100,)
    assert torch.all(ab[1:] < ab[:-1]), "alphas_cumprod must decrease strictly"
    assert 0.99 < ab[0] < 1.0 and ab[-1] < 1e-3
    assert torch.all(s.betas > 0) and torch.all(s.betas <= 0.999)
    # The Nichol & Dhariwal closed form for the first step.
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2
    assert s.betas[0].item() == pytest.approx(1 - f(0.01) / f(0.0), rel=1e-5)
    assert ddim_timesteps(100, 10) == [99, 89, 79, 69, 59, 49, 39, 29, 19, 9]
    assert ddim_timesteps(100, 100) == list(range(99, -1, -1))
    with pytest.raises(ValueError, match="beta schedule"):
        NoiseSchedule(100, "quadratic")


def test_add_noise_inverts_with_the_true_noise():
    s = NoiseSchedule(100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(64, 8, generator=g) * 2 - 1
    eps = torch.randn(64, 8, generator=g)
    t = torch.randint(0, 100, (64,), generator=g)
    xt = s.add_noise(x0, eps, t)
    assert torch.allclose(s.predict_x0(xt, eps, t), x0, atol=1e-3)
    assert torch.allclose(s.predict_eps(xt, x0, t), eps, atol=1e-4)
    # A perfect noise predictor makes DDIM land on x0 exactly (deterministic, eta=0).
    out = s.sample(lambda x, tt: s.predict_eps(x, x0, tt), row_generators(range(64)), 8, "cpu", "ddim", 10)
    assert torch.allclose(out, x0, atol=1e-4)


def test_sampling_loop_is_deterministic_per_row():
    s = NoiseSchedule(100)
    fn = lambda x, t: 0.1 * x
    a = s.sample(fn, row_generators([1, 2, 3]), 4, "cpu", "ddpm")
    b = s.sample(fn, row_generators([1, 2, 3]), 4, "cpu", "ddpm")
    c = s.sample(fn, row_generators([2]), 4, "cpu", "ddpm")
    assert torch.equal(a, b)
    assert torch.allclose(a[1], c[0])  # a row depends on its own seed only
    assert a.abs().max() <= 1.0 + 1e-6  # clipped x0 keeps samples in range


# -- normaliser ---------------------------------------------------------------------------------

def test_normalizer_round_trip_and_range():
    acts = demo_actions()
    acts[:, 6] = np.array([wrap_gripper_yaw(a) for a in acts[:, 6]])
    norm = ActionNormalizer.fit("pick_place", acts)
    x = norm.encode(acts)
    assert x.shape == (32, 8) and np.all(np.abs(x) <= 1.0)
    back = norm.decode(x)
    np.testing.assert_allclose(back[:, :6], acts[:, :6], atol=1e-12)
    d = np.abs(back[:, 6] - acts[:, 6])
    assert np.all(np.minimum(d, np.pi - d) < 1e-9)
    # JSON keeps the fitted numbers exactly.
    again = ActionNormalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert np.array_equal(again.low, norm.low) and np.array_equal(again.high, norm.high)
    assert np.array_equal(again.encode(acts), x)
    push = ActionNormalizer.fit("push", demo_actions()[:, :6])
    assert push.dim == 6
    np.testing.assert_allclose(push.decode(push.encode(demo_actions()[:, :6])), demo_actions()[:, :6], atol=1e-12)


def test_gripper_yaw_has_no_wrap_discontinuity():
    norm = ActionNormalizer.fit("pick_place", demo_actions())
    base = demo_actions()[:1].copy()
    near_plus, near_minus, turned = base.copy(), base.copy(), base.copy()
    near_plus[0, 6], near_minus[0, 6] = np.pi / 2 - 0.01, -np.pi / 2 + 0.01
    turned[0, 6] = np.pi / 2 - 0.01 + np.pi
    a, b, c = norm.encode(near_plus), norm.encode(near_minus), norm.encode(turned)
    assert np.linalg.norm(a - b) < 0.05  # 0.02 rad apart as grasps, so close as features
    np.testing.assert_allclose(a, c, atol=1e-12)  # a half turn is the same grasp
    for yaw in np.linspace(-3 * np.pi, 3 * np.pi, 37):
        p = base.copy()
        p[0, 6] = yaw
        out = norm.decode(norm.encode(p))[0, 6]
        assert -np.pi / 2 - 1e-12 <= out <= np.pi / 2 + 1e-12
        d = abs(out - wrap_gripper_yaw(yaw)) % np.pi
        assert min(d, np.pi - d) < 1e-9
    with pytest.raises(NormalizerError, match=r"\(N, 7\)"):
        norm.encode(np.zeros((2, 6)))
    with pytest.raises(NormalizerError, match="NaN"):
        norm.encode(np.full((1, 7), np.nan))


# -- goal vocabulary ----------------------------------------------------------------------------

def test_vocab_tokens_and_unknown_words():
    vocab = build_vocab([GOAL, "Put the BLUE block in the red bowl."])
    assert vocab[:2] == ["<pad>", UNK] and "blue" in vocab and "Put" not in vocab
    assert tokenize("Stack the blocks: red bottom!") == ["stack", "the", "blocks", "red", "bottom"]
    p = make_policy()
    ids = p.goal_inputs(["put the purple block in the green bowl"])
    assert ids.shape == (1, 12)
    assert ids[0, 2].item() == 1  # "purple" is unknown -> UNK
    assert ids[0, 8:].eq(0).all()  # padding


# -- sampling -----------------------------------------------------------------------------------

def test_sample_shape_and_determinism():
    p, obs = make_policy(), make_obs()
    a = p.sample(obs, 16, seed=3)
    b = p.sample(obs, 16, seed=3)
    c = p.sample(obs, 16, seed=4)
    assert isinstance(a, Candidates) and a.name == "pick_place"
    assert a.params.shape == (16, 7) and a.params.dtype == np.float64
    assert a.seeds.shape == (16,) and a.clipped.shape == (16,) and a.clipped.dtype == bool
    assert np.array_equal(a.params, b.params) and np.array_equal(a.seeds, b.seeds)
    assert not np.allclose(a.params, c.params)
    assert len(set(a.seeds.tolist())) == 16
    prims = a.primitives()
    assert len(prims) == 16 and all(isinstance(q, Primitive) for q in prims)
    # Candidate i re-sampled alone from its seed is the same candidate.
    one = p.sample(obs, 1, seeds=[a.seeds[5]])
    np.testing.assert_allclose(one.params[0], a.params[5], atol=1e-5)
    # The DDPM sampler works through the same entry point.
    d = p.sample(obs, 4, seed=3, sampler="ddpm")
    assert d.params.shape == (4, 7) and np.all(np.isfinite(d.params))


def test_all_candidates_in_one_batched_call_per_step():
    p, obs = make_policy(), make_obs()
    calls = {"denoiser": [], "encoder": []}
    h1 = p.denoiser.register_forward_hook(lambda m, i, o: calls["denoiser"].append(i[0].shape[0]))
    h2 = p.point_encoder.register_forward_hook(lambda m, i, o: calls["encoder"].append(i[0].shape[0]))
    try:
        p.sample(obs, 64, seed=0, steps=10)
    finally:
        h1.remove()
        h2.remove()
    assert calls["encoder"] == [1]  # the observation is encoded once
    assert calls["denoiser"] == [64] * 10  # one call per DDIM step, all 64 candidates in it


def test_out_of_workspace_candidates_are_clipped_and_flagged():
    acts = demo_actions()
    acts[:, 0] = np.linspace(0.05, 0.95, len(acts))  # demos reaching outside x in [0.25, 0.75]
    torch.manual_seed(0)
    p = DiffusionPolicy(tiny_config(), "pick_place", ActionNormalizer.fit("pick_place", acts),
                        build_vocab([GOAL])).eval()
    c = p.sample(make_obs(), 64, seed=0)
    ws = Workspace()
    assert c.clipped.any(), "an untrained model spreads over the whole normalised range"
    assert all(q.check(ws) is None for q in c.primitives())
    # Exactly the rows that left the box are flagged; the others pass through unchanged.
    inside = p.normalizer.encode(np.array([[0.5, 0.0, 0.02, 0.6, 0.1, 0.03, 0.3]]))
    outside = p.normalizer.encode(np.array([[0.1, 0.0, 0.02, 0.6, 0.1, 0.03, 0.3]]))
    d = p.to_candidates(torch.from_numpy(np.vstack([inside, outside])), [7, 8])
    assert d.clipped.tolist() == [False, True]
    np.testing.assert_allclose(d.params[0], [0.5, 0.0, 0.02, 0.6, 0.1, 0.03, 0.3], atol=1e-9)
    assert d.params[1, 0] == ws.low[0] and d.seeds.tolist() == [7, 8]


def test_bad_observations_are_refused():
    p = make_policy()
    obs = make_obs()
    with pytest.raises(PolicyInputError, match="no point cloud"):
        p.sample(Observation(frames={}, proprio=None, goal=GOAL), 4)
    few = make_obs(n=256)
    few.points = np.repeat(few.points[:10], 26, axis=0)[:256]
    with pytest.raises(PolicyInputError, match="10 distinct points, fewer than min_points=32"):
        p.sample(few, 4)
    bad = make_obs()
    bad.points[7] = np.nan
    bad.points[9, 2] = np.inf
    with pytest.raises(PolicyInputError, match="2 NaN/inf points"):
        p.sample(bad, 4)
    with pytest.raises(PolicyInputError, match=">= 1"):
        p.sample(obs, 0)
    nocol = make_obs()
    nocol.colors = None
    with pytest.raises(PolicyInputError, match="no colours"):
        p.sample(nocol, 2)
    with pytest.raises(PolicyInputError, match=r"\(P, 3\)"):
        p.sample(Observation(frames={}, proprio=None, goal=GOAL, points=np.zeros((50, 2), np.float32)), 2)


def test_clip_goal_encoder_names_the_missing_package():
    try:
        import open_clip  # noqa: F401
        pytest.skip("open_clip is installed here")
    except ImportError:
        pass
    with pytest.raises(ImportError, match="open_clip_torch"):
        make_policy(goal_encoder="clip")


# -- checkpoints --------------------------------------------------------------------------------

def _ema_of(p: DiffusionPolicy) -> dict:
    return {k: v + 0.01 if v.is_floating_point() else v for k, v in p.state_dict().items()}


def test_checkpoint_round_trip_uses_ema(tmp_path):
    p, obs = make_policy(), make_obs()
    ema = _ema_of(p)
    json_path = save_policy(tmp_path / "ck", p, ema, "place_block", policy_perception(), {"step": 7, "seed": 1})
    assert json_path.name == "ck.json" and (tmp_path / "ck.safetensors").is_file()
    meta = json.loads(json_path.read_text())
    assert meta["task"] == "place_block" and meta["primitive"] == "pick_place"
    assert meta["param_names"][-1] == "yaw" and meta["training"]["step"] == 7
    assert meta["vocab"] == p.vocab and meta["perception"]["n_points"] == 1024
    assert {"robot_rewards", "torch"} <= set(meta["versions"])
    for path in (tmp_path / "ck", tmp_path / "ck.json", tmp_path / "ck.safetensors"):
        ck = load_policy(path, task="place_block", primitive="pick_place")
        assert ck.task == "place_block" and ck.perception == policy_perception()
    loaded = ck.policy
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, ema[k]), f"{k} is not the EMA weight"
    # Same outputs as the original network carrying the EMA weights.
    p.load_state_dict(ema)
    a, b = p.sample(obs, 8, seed=2), loaded.sample(obs, 8, seed=2)
    np.testing.assert_array_equal(a.params, b.params)
    # Only the inference (EMA) weights are stored; the raw ones live in the train state.
    with safe_open(tmp_path / "ck.safetensors", "pt") as f:
        assert all(k.startswith("ema/") for k in f.keys())
    assert np.array_equal(loaded.normalizer.low, p.normalizer.low)


def test_checkpoint_errors(tmp_path):
    p = make_policy()
    save_policy(tmp_path / "ck", p, None, "place_block", policy_perception())
    with pytest.raises(CheckpointMismatchError, match="trained for task 'place_block', not 'push_block'"):
        load_policy(tmp_path / "ck", task="push_block")
    with pytest.raises(CheckpointMismatchError, match="predicts 'pick_place', not 'push'"):
        load_policy(tmp_path / "ck", primitive="push")
    # A checkpoint written with another parameter layout for the same primitive.
    meta = json.loads((tmp_path / "ck.json").read_text())
    meta["param_names"] = ["pick_x", "pick_y", "pick_z", "place_x", "place_y", "place_z"]
    (tmp_path / "other.json").write_text(json.dumps(meta))
    (tmp_path / "other.safetensors").write_bytes((tmp_path / "ck.safetensors").read_bytes())
    with pytest.raises(CheckpointMismatchError, match="layout"):
        load_policy(tmp_path / "other")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_policy(tmp_path / "missing")
    (tmp_path / "other.safetensors").unlink()
    meta["param_names"] = json.loads((tmp_path / "ck.json").read_text())["param_names"]
    (tmp_path / "other.json").write_text(json.dumps(meta))
    with pytest.raises(FileNotFoundError, match="weights missing"):
        load_policy(tmp_path / "other")
    # Truncated and bit-flipped weights, garbled JSON.
    data = (tmp_path / "ck.safetensors").read_bytes()
    (tmp_path / "ck.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_policy(tmp_path / "ck")
    flipped = bytearray(data)
    flipped[-100] ^= 0xFF
    (tmp_path / "ck.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_policy(tmp_path / "ck")
    (tmp_path / "ck.safetensors").write_bytes(data)
    text = (tmp_path / "ck.json").read_text()
    (tmp_path / "ck.json").write_text(text[: len(text) // 2])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_policy(tmp_path / "ck")
    (tmp_path / "ck.json").write_text(text)
    assert load_policy(tmp_path / "ck").task == "place_block"  # restored: loads again


# -- training signal ----------------------------------------------------------------------------

def test_loss_runs_encoder_once_per_observation_and_decreases():
    p = make_policy().train()
    rng = np.random.default_rng(0)
    B, P = 8, 128
    # Actions are a function of the cloud: pick = centroid of the red points.
    pts = rng.uniform([0.3, -0.3, 0.0], [0.7, 0.3, 0.05], (B, P, 3)).astype(np.float32)
    cols = np.zeros((B, P, 3), np.uint8)
    cols[:, :16, 0] = 255
    acts = demo_actions(B)
    acts[:, :2] = pts[:, :16, :2].mean(axis=1)
    batch = PolicyBatch(torch.from_numpy(pts), torch.from_numpy(cols), p.goal_inputs([GOAL] * B),
                        torch.from_numpy(p.normalizer.encode(acts).astype(np.float32)))
    seen = []
    h = p.point_encoder.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    p.loss(batch, torch.Generator().manual_seed(0), noise_draws=4)
    h.remove()
    assert seen == [B]
    opt = torch.optim.AdamW(p.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        loss = p.loss(batch, g, noise_draws=4)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])


def test_ddim_and_ddpm_agree_on_two_modes():
    """A tiny denoiser trained on a two-mode 2D distribution: both samplers find both modes
    with roughly balanced mass."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    modes = torch.tensor([[-0.6, 0.3], [0.6, -0.3]])
    net = Denoiser(2, 1, width=64, blocks=2, time_dim=16)
    s = NoiseSchedule(100)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    cond = torch.zeros(256, 1)
    for _ in range(400):
        x0 = modes[torch.randint(0, 2, (256,), generator=g)] + 0.03 * torch.randn(256, 2, generator=g)
        t = torch.randint(0, 100, (256,), generator=g)
        eps = torch.randn(256, 2, generator=g)
        loss = torch.nn.functional.mse_loss(net(s.add_noise(x0, eps, t), t, cond), eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    n = 400
    with torch.no_grad():
        fn = lambda x, t: net(x, t, torch.zeros(len(x), 1))
        out = {k: s.sample(fn, row_generators(range(n)), 2, "cpu", k, 10) for k in ("ddim", "ddpm")}
    for name, x in out.items():
        d = torch.cdist(x, modes)
        near = d.min(dim=1).values < 0.15
        frac = (d.argmin(dim=1) == 0).float().mean().item()
        assert near.float().mean() > 0.85, f"{name}: samples off the modes"
        assert 0.3 < frac < 0.7, f"{name}: mode mass {frac:.2f} / {1 - frac:.2f}"
    f_ddim = (torch.cdist(out["ddim"], modes).argmin(1) == 0).float().mean().item()
    f_ddpm = (torch.cdist(out["ddpm"], modes).argmin(1) == 0).float().mean().item()
    assert abs(f_ddim - f_ddpm) < 0.15


# -- candidates and diversity -------------------------------------------------------------------

def test_candidates_type_and_diversity():
    params = np.array([[0.5, 0.0, 0.02, 0.6, 0.1, 0.03, 0.0],
                       [0.505, 0.0, 0.02, 0.6, 0.1, 0.03, np.pi / 2],
                       [0.5, 0.2, 0.02, 0.6, 0.1, 0.03, np.pi - 0.05]])
    c = Candidates("pick_place", params, [1, 2, 3], [False, False, True])
    assert len(c) == 3 and c.primitive(1)["yaw"] == pytest.approx(np.pi / 2)
    assert c.subset(c.clipped).seeds.tolist() == [3]
    d = candidate_diversity(c)
    assert d["pick_modes"] == 2 and d["place_modes"] == 1 and d["yaw_modes"] == 2
    assert d["pick_spread_m"] == pytest.approx((0.005 + 0.2 + np.hypot(0.005, 0.2)) / 3)
    with pytest.raises(ValueError, match="3 candidates need 3 seeds"):
        Candidates("pick_place", params, [1, 2], [False] * 3)


# -- augmentation -------------------------------------------------------------------------------

def test_planar_augmentation_moves_cloud_and_action_together():
    from robot_rewards.core.primitives import PICK_PLACE
    from robot_rewards.policy.augment import PlanarAugmentation

    aug = PlanarAugmentation(max_rotation=math.pi, max_shift=0.05)
    gen = torch.Generator().manual_seed(0)
    theta, shift = aug.draw(16, gen)
    assert theta.abs().max() <= math.pi and shift.abs().max() <= 0.05 and theta.std() > 0.5
    block = torch.tensor([0.42, -0.13, 0.02], dtype=torch.float64)
    points = (block + torch.randn(16, 50, 3, generator=gen, dtype=torch.float64) * 0.01).float()
    params = torch.tensor([[*block.tolist(), 0.6, 0.2, 0.03, 0.3]] * 16, dtype=torch.float64)
    pts, out = aug.apply(points, params, PICK_PLACE, theta, shift)
    # Distances between the cloud and the pick/place points are unchanged; heights are untouched.
    for a, b in ((points, params), (pts, out)):
        d_pick = torch.linalg.norm(a.double() - b[:, None, 0:3], dim=-1)
        d_place = torch.linalg.norm(a.double() - b[:, None, 3:6], dim=-1)
        if a is points:
            ref_pick, ref_place = d_pick, d_place
    torch.testing.assert_close(d_pick, ref_pick, atol=1e-5, rtol=0)
    torch.testing.assert_close(d_place, ref_place, atol=1e-5, rtol=0)
    assert torch.equal(pts[..., 2], points[..., 2]) and torch.equal(out[:, [2, 5]], params[:, [2, 5]])
    # The fingers' closing direction (pi/2 - yaw) turns with the scene.
    closing = (math.pi / 2 - out[:, 6]) - (math.pi / 2 - params[:, 6])
    torch.testing.assert_close(torch.remainder(closing - theta + math.pi, 2 * math.pi) - math.pi,
                               torch.zeros(16, dtype=torch.float64), atol=1e-9, rtol=0)


def test_training_batches_turn_precomputed_neighbourhood_features_with_the_cloud():
    """The trainer computes neighbourhood features once on the whole clouds; after the planar
    augmentation they equal the features of the augmented cloud, and a point subset keeps each
    point's own features (not recomputed from the subset)."""
    from robot_rewards.nn.encoders import neighbourhood_features
    from robot_rewards.policy.augment import PlanarAugmentation
    from robot_rewards.policy.dataset import PolicyDataset
    from robot_rewards.policy.train import to_tensors

    p = make_policy(neighbourhood_radius=0.1)  # a few neighbours each in these sparse clouds
    obs = [make_obs(seed=k, n=200) for k in range(3)]
    ds = PolicyDataset("place_block", "pick_place", np.stack([o.points for o in obs]),
                       np.stack([o.colors for o in obs]), [GOAL] * 3, demo_actions(3), np.arange(3),
                       np.zeros(3, int), np.arange(3))
    data = to_tensors(ds, p, np.arange(3), "cpu", PlanarAugmentation(math.pi, 0.05))
    assert data.neighbourhood.shape == (3, 200, 4)
    idx = torch.tensor([2, 0, 1, 2])
    whole = data.batch(idx, torch.Generator().manual_seed(4))
    assert whole.neighbourhood[..., 3].mean() > 0.1
    torch.testing.assert_close(whole.neighbourhood, neighbourhood_features(whole.points, 0.1), atol=1e-4, rtol=0)
    sub = data.batch(idx, torch.Generator().manual_seed(4), points=50)
    assert sub.points.shape == (4, 50, 3) and sub.neighbourhood.shape == (4, 50, 4)
    # each kept point carries its whole-cloud feature (its length is one of the source cloud's)
    src = data.neighbourhood[idx]
    assert not torch.allclose(sub.neighbourhood, neighbourhood_features(sub.points, 0.1), atol=1e-3)
    lengths = set(np.round(src[..., 3].numpy().ravel(), 5))
    assert all(v in lengths for v in np.round(sub.neighbourhood[..., 3].numpy().ravel(), 5))
    # the features train: (the FiLM conditioning starts as the identity, so after one step)
    p.train()
    opt = torch.optim.SGD(p.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        p.loss(sub, torch.Generator().manual_seed(0)).backward()
        opt.step()
    assert p.point_encoder.layers[0].weight.grad[:, 6:].abs().sum() > 0


def test_flat_target_marks_stay_in_the_policy_cloud():
    """align_rope's 1 mm marks: gone at the default 4 mm table removal, kept after keep_flat_targets."""
    from robot_rewards.sim.env import TabletopEnv

    default = policy_perception()
    assert keep_flat_targets(default, "place_block") == default
    assert keep_flat_targets(replace(default, table="ransac"), "align_rope").table_threshold == default.table_threshold
    kept = keep_flat_targets(default, "align_rope")
    assert kept.table_threshold < 0.001 and replace(kept, table_threshold=default.table_threshold) == default

    def near_marks(perception) -> list[int]:
        with TabletopEnv("align_rope", perception=perception) as env:
            env.reset(7)
            pts = np.asarray(env.observe().points)
            marks = env.task.marks
        return [int((np.linalg.norm(pts[:, :2] - m, axis=1) < 0.015).sum()) for m in marks]

    assert near_marks(default) == [0, 0]
    assert min(near_marks(kept)) >= 10


def test_local_patches_read_the_cloud_around_each_candidate(tmp_path):
    """With local_k > 0 the denoiser sees the cloud around each candidate's pick and place: the
    prediction changes when only points near the candidate move, and not when far ones do."""
    p, obs = make_policy(local_k=8, local_radius=0.04, local_channels=[8, 16]), make_obs()
    rng = np.random.default_rng(1)  # a small object under the pick
    blob = (demo_actions(1, seed=5)[0, :3] + rng.normal(0, 0.01, (12, 3))).astype(np.float32)
    obs = replace(obs, points=np.r_[obs.points, blob], colors=np.r_[obs.colors, np.full((12, 3), 200, np.uint8)])
    assert p.denoiser.local_dim == 2 * 16
    pts = torch.as_tensor(obs.points)[None]
    cols = torch.as_tensor(obs.colors)[None]
    cond = p.encode(pts, cols, p.goal_inputs([GOAL]))
    assert cond.shape == (1, p.cond_dim + 6 * len(obs.points))
    x = torch.as_tensor(p.normalizer.encode(demo_actions(1, seed=5)), dtype=torch.float32)
    t = torch.tensor([3])
    pick = p.action_points(x)[0, 0]
    assert torch.allclose(pick, torch.as_tensor(demo_actions(1, seed=5)[0, :3], dtype=torch.float32), atol=1e-5)
    base = p.denoise(x, t, cond)

    def with_moved(mask):
        moved = pts.clone()
        moved[0, mask, 2] += 0.01
        # same global feature: only the carried cloud differs, so any change is the local patch's
        c = torch.cat([cond[:, :p.cond_dim], p.encode(moved, cols, p.goal_inputs([GOAL]))[:, p.cond_dim:]], 1)
        return p.denoise(x, t, c)

    dist = torch.linalg.norm(pts[0] - pick, dim=1)
    near, far = dist < 0.04, dist > 0.2
    assert near.sum() > 0 and far.sum() > 0
    assert not torch.allclose(with_moved(near), base)
    far_only = far & (torch.linalg.norm(pts[0] - p.action_points(x)[0, 1], dim=1) > 0.2)
    torch.testing.assert_close(with_moved(far_only), base)
    # Sampling stays deterministic, batched (one denoiser call per step) and survives a checkpoint.
    a, b = p.sample(obs, 6, seed=1), p.sample(obs, 6, seed=1)
    np.testing.assert_array_equal(a.params, b.params)
    one = p.sample(obs, 1, seeds=[a.seeds[2]])
    np.testing.assert_allclose(one.params[0], a.params[2], atol=1e-5)
    save_policy(tmp_path / "ck", p, p.state_dict(), "align_rope", policy_perception(), {"step": 1})
    loaded = load_policy(tmp_path / "ck").policy
    assert loaded.config.local_k == 8
    np.testing.assert_array_equal(loaded.sample(obs, 6, seed=1).params, a.params)
    # A batch trains through it.
    batch = PolicyBatch(pts.repeat(2, 1, 1), cols.repeat(2, 1, 1), p.goal_inputs([GOAL, GOAL]), x.repeat(2, 1))
    p.train()
    p.loss(batch, torch.Generator().manual_seed(0), noise_draws=3).backward()
    assert p.local.mlp[0].weight.grad is not None and p.local.mlp[0].weight.grad.abs().sum() > 0


def test_neighbourhood_features_mark_the_ends_of_a_line_and_turn_with_the_cloud():
    """Along a rope-like line of points the centroid offset is ~0 inside and ~half the radius at
    the two ends, pointing inward; rotating the cloud rotates the offsets, lengths unchanged."""
    from robot_rewards.nn.encoders import neighbourhood_features

    s = torch.linspace(0, 0.4, 81)  # 5 mm apart
    line = torch.stack([0.4 + s, 0.1 + 0.5 * s, torch.full_like(s, 0.01)], dim=-1)[None]
    f = neighbourhood_features(line, 0.03)
    assert f.shape == (1, 81, 4)
    length = f[0, :, 3]
    assert length[10:-10].abs().max() < 1e-4
    assert 0.4 < length[0] < 0.6 and 0.4 < length[-1] < 0.6
    direction = (line[0, -1] - line[0, 0]) / torch.linalg.norm(line[0, -1] - line[0, 0])
    assert f[0, 0, :3] @ direction > 0.4 and f[0, -1, :3] @ direction < -0.4  # inward at both ends
    c, s_ = math.cos(0.7), math.sin(0.7)
    rot = torch.tensor([[c, -s_, 0.0], [s_, c, 0.0], [0.0, 0.0, 1.0]])
    turned = neighbourhood_features(line @ rot.T, 0.03)
    torch.testing.assert_close(turned[..., :3], f[..., :3] @ rot.T, atol=1e-5, rtol=0)
    torch.testing.assert_close(turned[..., 3], f[..., 3], atol=1e-5, rtol=0)


def test_policy_with_neighbourhood_features_sees_the_cloud_shape_and_round_trips(tmp_path):
    """neighbourhood_radius > 0 widens the per-point input by 4 features; a change of the local
    shape (a point moved within the radius of others) changes the encoding through them, and
    sampling survives a checkpoint; the scorer's warm start copies the setting."""
    p, obs = make_policy(neighbourhood_radius=0.03), make_obs()
    assert p.point_encoder.layers[0].in_features == 6 + 4
    assert make_policy().point_encoder.layers[0].in_features == 6
    a = p.sample(obs, 4, seed=3)
    save_policy(tmp_path / "ck", p, p.state_dict(), "align_rope", policy_perception(), {"step": 1})
    loaded = load_policy(tmp_path / "ck").policy
    assert loaded.config.neighbourhood_radius == 0.03
    np.testing.assert_array_equal(loaded.sample(obs, 4, seed=3).params, a.params)
    # The features feed the encoder: zeroing their input weights changes the observation feature.
    pts, cols = torch.as_tensor(obs.points)[None], torch.as_tensor(obs.colors)[None]
    base = p.encode(pts, cols, p.goal_inputs([GOAL]))
    with torch.no_grad():
        p.point_encoder.layers[0].weight[:, 6:] = 0
    assert not torch.allclose(p.encode(pts, cols, p.goal_inputs([GOAL])), base)
    from robot_rewards.rewards.preference.config import ScorerConfig
    from robot_rewards.rewards.preference.scorer import policy_encoder_init

    init = policy_encoder_init(str(tmp_path / "ck"), "pick_place", ScorerConfig())
    assert init["config"].neighbourhood_radius == 0.03


def test_picks_near_targets_counts_candidates_within_3cm_of_a_target():
    from robot_rewards.eval.policy import picks_near_targets

    acts = demo_actions(4)
    acts[:, :3] = [[0.50, 0.00, 0.02], [0.52, 0.02, 0.02], [0.60, 0.10, 0.02], [0.40, -0.10, 0.05]]
    cands = Candidates("pick_place", acts, np.arange(4), np.zeros(4, bool))
    targets = np.array([[0.50, 0.00, 0.0], [0.40, -0.12, 0.01]])  # heights do not count
    assert picks_near_targets(cands, targets) == pytest.approx(0.75)
    assert picks_near_targets(cands, None) is None
    push = Candidates("push", np.zeros((2, 6)), np.arange(2), np.zeros(2, bool))
    assert picks_near_targets(push, targets) is None
