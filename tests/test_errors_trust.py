"""Issue 30, "Errors and trust": one-line errors for bad files, nothing stored changed, and a
robot that never trusts a model file's workspace beyond its own configured box."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robot_rewards.cli import main, one_line_error
from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import CameraFrame, Observation, Proprio
from robot_rewards.core.primitives import Workspace
from robot_rewards.data.episodes import Episode, EpisodeFormatError, EpisodeWriter
from robot_rewards.nn.artifacts import META_HASH, read_header
from robot_rewards.nn.normalizer import ActionNormalizer, NormalizerError
from robot_rewards.policy.checkpoint import CheckpointError, load_policy, save_policy
from robot_rewards.policy.config import PolicyConfig, policy_perception
from robot_rewards.policy.dataset import load_dataset
from robot_rewards.policy.model import DiffusionPolicy
from robot_rewards.preferences.arrays import ORPHAN_AGE_S, ORPHAN_MIN_AGE_S, remove_orphaned_temp_files
from robot_rewards.preferences.errors import CorruptStoreError
from robot_rewards.preferences.schema import SCHEMA_VERSION
from robot_rewards.preferences.store import PreferenceStore
from robot_rewards.robots.base import ActionResult, Offer, Robot
from robot_rewards.robots.workspace import WorkspaceError, jog_problem, narrowed

TASK = "place_block"


def stderr_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the CLI wrapper: store errors in one line ----------------------------------------------------

def newer_store(root: Path) -> Path:
    PreferenceStore(root).close()
    conn = sqlite3.connect(str(root / "prefs.sqlite"))
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    return root / "prefs.sqlite"


@pytest.mark.parametrize("kind", ["newer", "garbage", "empty"])
def test_store_errors_are_one_line_with_a_nonzero_exit(tmp_path, capsys, kind):
    root = tmp_path / "store"
    if kind == "newer":
        db = newer_store(root)
        expected = "SchemaVersionError: "
    else:
        root.mkdir()
        db = root / "prefs.sqlite"
        db.write_bytes(b"" if kind == "empty" else np.random.default_rng(1).bytes(8192))
        expected = "CorruptStoreError: "
    before = sorted(p.name for p in root.iterdir()), digest(db)
    with pytest.raises(SystemExit) as exc:
        main(["train-scorer", f"store={root}", f"output_dir={tmp_path / 'out'}"])
    assert exc.value.code == 1
    lines = stderr_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"robot-rewards train-scorer: {expected}{db}"), lines
    assert (sorted(p.name for p in root.iterdir()), digest(db)) == before  # nothing written


def test_one_line_error_joins_multi_line_messages():
    assert one_line_error(OSError("Can't read data\n  (filter returned failure)\n")) == \
        "OSError: Can't read data | (filter returned failure)"
    assert one_line_error(KeyError("task")) == "KeyError: 'task'"


# -- the store: an empty file is refused, orphaned temp files are cleaned -------------------------

@pytest.mark.parametrize("create", [False, True])
def test_zero_byte_store_is_refused_and_left_alone(tmp_path, create):
    root = tmp_path / "store"
    root.mkdir()
    (root / "prefs.sqlite").touch()
    with pytest.raises(CorruptStoreError, match=r"prefs.sqlite is empty \(0 bytes\), not a preference store"):
        PreferenceStore(root, create=create)
    assert [p.name for p in root.iterdir()] == ["prefs.sqlite"] and (root / "prefs.sqlite").stat().st_size == 0


_KILLED_WRITER = """
import os, signal, sys
from robot_rewards.core.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"PK" + b"x" * 100000)
        f.flush()
    os.kill(os.getpid(), signal.SIGKILL)  # killed while the query's arrays are written
"""


def test_orphaned_temp_files_of_a_killed_writer_are_cleaned_on_open(tmp_path):
    root = tmp_path / "store"
    with PreferenceStore(root) as s:
        sid = s.start_session("alice", TASK)
        rng = np.random.default_rng(0)
        cands = Candidates("pick_place", rng.uniform(0.3, 0.6, (3, 7)), np.arange(3), np.zeros(3, bool))
        qid = s.add_query(sid, TASK, "put the red block in the bowl", cands, rng.uniform(0.3, 0.6, (32, 3)))
        uid = s.queries()[0].uid
    arrays = root / "arrays"
    orphan_uid = "ab" * 16
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(arrays / f"{orphan_uid}.npz")])
    assert proc.returncode == -signal.SIGKILL
    orphans = [p for p in arrays.iterdir() if p.name.startswith(f".{orphan_uid}.npz.")]
    assert len(orphans) == 1 and not (arrays / f"{orphan_uid}.npz").exists()
    # Just killed: kept for a few seconds (a writer in another PID namespace looks dead too).
    PreferenceStore(root, create=False).close()
    assert orphans[0].exists()
    past = time.time() - ORPHAN_MIN_AGE_S - 1
    os.utime(orphans[0], (past, past))
    # Kept: a temp file whose writer is alive and recent (being written now), and other files.
    alive = arrays / f".{'cd' * 16}.npz.{os.getpid()}.0123abcd.tmp.npz"
    alive.write_bytes(b"in progress")
    others = [arrays / ".notes.tmp", arrays / f".{'ef' * 16}.npz.1.zz.tmp.npz", root / f".{'ab' * 16}.npz.99.01234567.tmp.npz"]
    for p in others:
        p.write_bytes(b"not ours")
    with PreferenceStore(root, create=False) as s:
        assert not orphans[0].exists()
        assert alive.exists() and all(p.exists() for p in others)
        _, a = s.load_query(qid)  # the stored query is untouched
        assert a.params.shape == (3, 7) and (arrays / f"{uid}.npz").exists()
    # An old temp file of a live pid (a reused pid, another machine) is an orphan too.
    old = time.time() - ORPHAN_AGE_S - 10
    os.utime(alive, (old, old))
    assert remove_orphaned_temp_files(arrays) == [alive]


# -- the normaliser says what differs ---------------------------------------------------------------

def test_normaliser_layout_error_says_what_differs():
    d = ActionNormalizer.fit("pick_place", np.random.default_rng(0).uniform(0.2, 0.6, (20, 7))).to_dict()
    with pytest.raises(NormalizerError, match=r"missing \['cos_k_yaw', 'sin_k_yaw'\]; unknown \['yaw'\]"):
        ActionNormalizer.from_dict({**d, "features": d["features"][:6] + ["yaw"]})
    swapped = d["features"][:6] + ["sin_k_yaw", "cos_k_yaw"]
    with pytest.raises(NormalizerError, match="another order or repeated: entry 6 is 'sin_k_yaw', expected 'cos_k_yaw'"):
        ActionNormalizer.from_dict({**d, "features": swapped})
    # The same names, but low/high of another length: say that, not two identical lists.
    with pytest.raises(NormalizerError, match=r"'low' has shape \(7,\), expected \(8,\)"):
        ActionNormalizer.from_dict({**d, "low": d["low"][:7]})
    with pytest.raises(NormalizerError, match=r"high <= low\) for \['pick_z'\]"):
        ActionNormalizer.from_dict({**d, "high": d["high"][:2] + [d["low"][2]] + d["high"][3:]})


# -- checkpoints: types, sizes and the safety-relevant fields -------------------------------------

def tiny_policy() -> DiffusionPolicy:
    cfg = PolicyConfig(point_channels=[8, 16], obs_dim=16, goal_dim=16, token_dim=8, width=32, blocks=1,
                       time_dim=8, attention_heads=1)
    norm = ActionNormalizer.fit("pick_place", np.random.default_rng(0).uniform(0.3, 0.6, (20, 7)))
    return DiffusionPolicy(cfg, "pick_place", norm, ["<pad>", "<unk>", "red", "block"])


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    return save_policy(tmp_path / "ck", tiny_policy(), None, TASK, policy_perception())


def edit(path: Path, *keys_value, drop_header: bool = False) -> None:
    """Set meta[k1][k2]... = value in a checkpoint JSON; drop_header: as written before the
    settings hash existed (the tensor file rewritten without it, its SHA-256 updated)."""
    meta = json.loads(path.read_text())
    *keys, value = keys_value
    node = meta
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    if drop_header:
        from safetensors.torch import load_file, save_file

        st = path.with_suffix(".safetensors")
        save_file(load_file(str(st)), str(st), metadata={"format": "robot_rewards.policy"})
        meta["weights_sha256"] = hashlib.sha256(st.read_bytes()).hexdigest()
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("keys_value, message", [
    (("policy", "obs_dim", "big"), r"'policy.obs_dim' must be int, got 'big' \(str\)"),
    (("policy", "width", [256]), r"'policy.width' must be int, got \[256\] \(list\)"),
    (("policy", "point_channels", 32), r"'policy.point_channels' must be a list of int, got 32"),
    (("policy", "use_rgb", "yes"), r"'policy.use_rgb' must be bool"),
    (("policy", "obs_dim", 10 ** 12), r"'policy.obs_dim' must be a size from 1 to 4096"),
    (("perception", "n_points", -5), r"'perception.n_points' must be a size from 1 to 1048576, got -5"),
    (("perception", "n_points", 0), r"'perception.n_points' must be a size from 1 to 1048576, got 0"),
    (("perception", "max_depth", "far"), r"'perception.max_depth' must be float, got 'far'"),
    (("task", ["place_block"]), r"'task' must be a string"),
    (("vocab", "red block"), r"'vocab' must be a list of words"),
])
def test_wrong_types_in_a_checkpoint_name_the_field(checkpoint, keys_value, message):
    edit(checkpoint, *keys_value)
    with pytest.raises(CheckpointError, match=message):
        load_policy(checkpoint)


def test_a_wrong_type_in_a_checkpoint_is_one_line_on_the_command_line(checkpoint, capsys):
    edit(checkpoint, "policy", "obs_dim", "big")
    with pytest.raises(SystemExit) as exc:
        main(["eval-policy", f"checkpoint={checkpoint}", "episodes=1", f"output_dir={checkpoint.parent / 'out'}"])
    assert exc.value.code == 1
    lines = stderr_lines(capsys)
    assert len(lines) == 1 and "'policy.obs_dim' must be int, got 'big' (str)" in lines[0], lines


def test_the_settings_hash_refuses_an_edited_workspace_or_normaliser(checkpoint):
    header = read_header(checkpoint.with_suffix(".safetensors"))
    assert {k for k in header if k.startswith(META_HASH)} == {META_HASH + "workspace", META_HASH + "normalizer"}
    text = checkpoint.read_text()
    edit(checkpoint, "workspace", "low", 1, -0.6)  # widened to y = -0.6 m
    with pytest.raises(CheckpointError, match=r"ck.json was edited after it was saved: 'workspace' differs"):
        load_policy(checkpoint)
    checkpoint.write_text(text)
    edit(checkpoint, "normalizer", "high", 0, 2.0)
    with pytest.raises(CheckpointError, match="'normalizer' differs"):
        load_policy(checkpoint)
    # Reformatting the JSON changes nothing that is checked.
    checkpoint.write_text(json.dumps(json.loads(text), indent=None))
    assert load_policy(checkpoint).task == TASK


@pytest.mark.parametrize("value, message", [
    ({"low": [0.25, -0.35], "high": [0.75, 0.35, 0.3]}, r"'workspace.low' must be 3 finite numbers"),
    ({"low": [0.25, "-0.35", 0.0], "high": [0.75, 0.35, 0.3]}, r"'workspace.low' must be 3 finite numbers"),
    ({"low": [0.25, -0.35, 0.0], "high": [0.75, 0.35, float("nan")]}, r"'workspace.high' must be 3 finite"),
    ({"low": [0.75, -0.35, 0.0], "high": [0.25, 0.35, 0.3]}, r"'workspace' is empty"),
    ([0.25, 0.75], r"'workspace' must be"),
])
def test_a_malformed_workspace_in_an_old_checkpoint_names_the_field(checkpoint, value, message):
    edit(checkpoint, "workspace", value, drop_header=True)
    with pytest.raises(CheckpointError, match=message):
        load_policy(checkpoint)


def test_an_old_checkpoint_without_the_settings_hash_still_loads(checkpoint):
    edit(checkpoint, "training", {}, drop_header=True)
    assert not any(k.startswith(META_HASH) for k in read_header(checkpoint.with_suffix(".safetensors")))
    assert load_policy(checkpoint).task == TASK


def test_the_shipped_checkpoints_load():
    from robot_rewards.core.paths import resolve
    from robot_rewards.rewards.keypoints.io import load_keypoint_model
    from robot_rewards.rewards.preference.io import load_scorer

    folder = resolve("checkpoints/policy_place_block.json").parent
    loaders = {"policy": load_policy, "scorer": load_scorer, "keypoints": load_keypoint_model}
    names = sorted(p.name for p in folder.glob("*.json") if p.name.split("_")[0] in loaders)
    assert len(names) >= 10
    for name in names:
        loaders[name.split("_")[0]](folder / name)


# -- a damaged episode file names the file -----------------------------------------------------------

def tiny_episode_file(path: Path) -> Path:
    cam = CameraModel("front", CameraIntrinsics(32, 24, 30.0, 30.0, 16.0, 12.0),
                      np.array([[1, 0, 0, 0.5], [0, -1, 0, 0], [0, 0, -1, 1.0], [0, 0, 0, 1.0]]))
    rng = np.random.default_rng(0)
    ep = Episode(seed=0, goal="put the red block in the bowl", primitive="pick_place")
    for _ in range(3):
        frame = CameraFrame(cam, rng.integers(0, 255, (24, 32, 3), dtype=np.uint8),
                            rng.uniform(0.9, 1.0, (24, 32)).astype(np.float32), None)
        ep.add_observation(Observation({"front": frame}, Proprio(np.zeros(7), 0.08), ep.goal))
    for _ in range(2):
        ep.actions.append(np.full(7, 0.4))
        ep.executed.append(True)
        ep.reasons.append("")
        ep.success.append(True)
        ep.quality.append(0.0)
    with EpisodeWriter(path, TASK, "pick_place", [cam]) as w:
        w.write(ep)
    return path


def test_a_bit_flipped_episode_file_is_one_error_naming_it(tmp_path):
    path = tiny_episode_file(tmp_path / "demos.h5")
    with h5py.File(path, "r") as f:
        info = f["episodes/000000/obs/front/rgb"].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    for i in range(info.byte_offset + 10, info.byte_offset + info.size - 10, 7):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EpisodeFormatError, match=rf"{path}: episode 000000 damaged, cannot be read"):
        load_dataset(path, policy_perception(), progress=False, cache=tmp_path / "cache.h5")


def test_a_truncated_episode_file_is_one_error_naming_it(tmp_path):
    path = tiny_episode_file(tmp_path / "demos.h5")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(EpisodeFormatError, match=rf"{path} is not a readable HDF5 file"):
        load_dataset(path, policy_perception(), progress=False)


# -- the workspace: the robot's configured box is the authority -----------------------------------

def test_a_checkpoint_box_may_narrow_the_configured_one_never_widen_it():
    configured = Workspace((0.25, -0.35, 0.0), (0.75, 0.35, 0.30))
    box, warning = narrowed(configured, Workspace((0.25, -0.6, 0.0), (0.9, 0.35, 0.30)), "ck.json")
    assert box == configured
    assert "ck.json's workspace" in warning and "reaches beyond the robot's configured workspace" in warning
    smaller = Workspace((0.3, -0.2, 0.0), (0.6, 0.2, 0.2))
    assert narrowed(configured, smaller) == (smaller, None)
    # Partly wider, partly narrower: the intersection.
    box, warning = narrowed(configured, Workspace((0.3, -0.5, 0.0), (0.6, 0.2, 0.5)))
    assert box == Workspace((0.3, -0.35, 0.0), (0.6, 0.2, 0.30)) and warning
    with pytest.raises(WorkspaceError, match="does not overlap the robot's configured workspace"):
        narrowed(configured, Workspace((1.0, 0.5, 0.0), (1.2, 0.7, 0.3)))


def test_jogs_stay_in_the_box_or_come_closer_to_it():
    ws = Workspace((0.25, -0.35, 0.0), (0.75, 0.35, 0.30))
    assert jog_problem(ws, [0.5, 0.0, 0.1], [0.5, 0.3, 0.1]) is None
    assert "outside the workspace" in jog_problem(ws, [0.5, 0.3, 0.1], [0.5, 0.4, 0.1])
    # From home above the box: down and sideways are fine, further out is not.
    assert jog_problem(ws, [0.5, 0.0, 0.5], [0.5, 0.0, 0.45]) is None
    assert jog_problem(ws, [0.5, 0.0, 0.5], [0.55, 0.05, 0.5]) is None
    assert "outside the workspace" in jog_problem(ws, [0.5, 0.0, 0.5], [0.5, 0.0, 0.55])
    assert "outside the workspace" in jog_problem(ws, [0.5, 0.3, 0.5], [0.5, 0.4, 0.5])


def test_the_sim_robot_jogs_only_inside_its_configured_box():
    from robot_rewards.sim.robot import SimRobot

    with SimRobot("place_block") as robot:
        robot.reset(0)
        arm = robot.env.world.arm
        assert robot.workspace == arm.description.workspace
        start = arm.ee_pose()[:3, 3].copy()
        y_edge = robot.workspace.low[1]
        refused = robot.jog([0.0, y_edge - 0.05 - start[1], 0.0])
        assert not refused.ok and "outside the workspace" in refused.message
        assert np.allclose(arm.ee_pose()[:3, 3], start, atol=1e-3)  # did not move
        assert robot.jog([0.0, 0.0, -0.05]).ok


class OfferingRobot(Robot):
    """A robot whose own policy offers the candidates (like the ROS policy node), seen by a camera
    1 m above (0.5, 0, 0) over a flat table at z = 0; it records what it executes."""

    name = "offering"

    def __init__(self, params):
        super().__init__()
        self.params = np.asarray(params, dtype=np.float64)
        self.executed: list = []
        T = np.eye(4)
        T[:3, :3] = np.diag([1.0, -1.0, -1.0])
        T[:3, 3] = [0.5, 0.0, 1.0]
        self.camera = CameraModel("top", CameraIntrinsics.from_fov(160, 120, 60.0), T)

    def observe(self) -> Observation:
        frame = CameraFrame(self.camera, np.full((120, 160, 3), 128, np.uint8), np.ones((120, 160), np.float32))
        pts = np.random.default_rng(0).uniform([0.3, -0.3, 0.0], [0.7, 0.3, 0.05], (64, 3)).astype(np.float32)
        self.last_observation = Observation({"top": frame}, Proprio(np.zeros(7), 0.08), "put the red block in the bowl",
                                            points=pts, colors=np.full((64, 3), 100, np.uint8))
        return self.last_observation

    def offer(self) -> Offer:
        n = len(self.params)
        return Offer(Candidates("pick_place", self.params, np.arange(n), np.zeros(n, bool)), None, 1, None, "test")

    def execute(self, primitive) -> ActionResult:
        self.executed.append(primitive)
        self.scene_version += 1
        return ActionResult(True, "done")


def test_the_console_never_executes_or_stores_a_demonstration_outside_the_configured_box(tmp_path):
    from robot_rewards.console.app import Console
    from robot_rewards.console.config import ConsoleConfig

    inside = [0.5, 0.0, 0.02, 0.6, 0.1, 0.03, 0.0]
    outside_y = [0.5, -0.45, 0.02, 0.6, 0.1, 0.03, 0.0]  # y = -0.45 m: beyond the configured -0.35
    robot = OfferingRobot([outside_y, inside])
    policy = tiny_policy()
    policy.workspace = Workspace((0.1, -0.6, 0.0), (0.9, 0.6, 0.3))  # an edited, widened checkpoint box
    (pick_u, pick_v), (place_u, place_v) = robot.camera.project(np.array([[0.5, -0.45, 0.0], [0.6, 0.1, 0.0]]))
    lines = ["x 1", f"d {pick_u:.1f} {pick_v:.1f} {place_u:.1f} {place_v:.1f} 0", "x 2", "q"]
    cfg = ConsoleConfig(mode="rank", n_candidates=2, queries=3, window="off", prefetch=False,
                        store=str(tmp_path / "store"), output_dir=str(tmp_path / "out"), labeller="tester")
    out = io.StringIO()
    with PreferenceStore(tmp_path / "store") as store:
        console = Console(cfg, policy, None, [robot], store, out, tmp_path / "out", None)
        try:
            assert console.workspace == robot.workspace and policy.workspace == robot.workspace
            console.run(io.StringIO("\n".join(lines) + "\n"))
        finally:
            console.close()
        text = out.getvalue()
        assert "warning: the policy checkpoint's workspace" in text
        assert "not executing candidate 1: " in text and "demonstration not stored: " in text, text
        assert [p.params.tolist() for p in robot.executed] == [inside]  # only candidate 2 ran
        assert store.demonstrations() == []


# -- property-based: the store import and the checkpoint loader raise only their own errors ---------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.integers(-3, 12)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)
FUZZ = settings(max_examples=50, deadline=3000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def export_folder(tmp_path_factory) -> Path:
    """A small real export: two queries, a ranking, a pair label and a demonstration."""
    root = tmp_path_factory.mktemp("export_src")
    rng = np.random.default_rng(3)
    with PreferenceStore(root / "store") as s:
        sid = s.start_session("alice", TASK)
        qids = []
        for _ in range(2):
            cands = Candidates("pick_place", rng.uniform(0.3, 0.6, (4, 7)), np.arange(4), np.zeros(4, bool))
            qids.append(s.add_query(sid, TASK, "put the red block in the bowl", cands, rng.uniform(0.3, 0.6, (16, 3))))
        s.add_ranking(qids[0], [2, 0], "alice")
        s.add_pair(qids[1], 0, 1, "tie", "alice")
        s.add_demonstration(qids[1], np.full(7, 0.4), "alice")
        return s.export(root / "export")


def _mutate_json_tree(node, path: list, value, delete: bool):
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value


def _paths(node, prefix=()) -> list[tuple]:
    """Every key path into a JSON tree (dict keys and list indices)."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for k, v in items:
        out.append((*prefix, k))
        out += _paths(v, (*prefix, k))
    return out


@given(data=st.data())
@FUZZ
def test_importing_a_damaged_export_raises_only_store_errors_and_changes_nothing(export_folder, data):
    import shutil
    import tempfile

    from robot_rewards.preferences.errors import PreferenceStoreError

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "export"
        shutil.copytree(export_folder, folder)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        target = data.draw(st.sampled_from(files))
        how = data.draw(st.sampled_from(["field", "field", "field", "truncate", "flip"]))
        raw = target.read_bytes()
        if how == "field" and target.suffix in (".json", ".jsonl"):
            lines = raw.decode().splitlines()
            docs = [json.loads(line) for line in lines] if target.suffix == ".jsonl" else [json.loads(raw)]
            k = data.draw(st.integers(0, max(len(docs) - 1, 0)))
            if docs:
                paths = _paths(docs[k])
                path = list(data.draw(st.sampled_from(paths))) if paths else [data.draw(st.text(max_size=5))]
                delete = data.draw(st.booleans()) and isinstance(docs[k], dict) and len(path) == 1
                _mutate_json_tree(docs[k], path, data.draw(JSON_VALUES), delete)
            text = "\n".join(json.dumps(d) for d in docs) if target.suffix == ".jsonl" else json.dumps(docs[0])
            target.write_text(text)
        elif how == "truncate" or not raw:
            target.write_bytes(raw[: data.draw(st.integers(0, max(len(raw) - 1, 0)))])
        else:
            b = bytearray(raw)
            b[data.draw(st.integers(0, len(b) - 1))] ^= 1 << data.draw(st.integers(0, 7))
            target.write_bytes(bytes(b))
        with PreferenceStore(Path(tmp) / "store") as store:
            try:
                store.import_(folder)
            except PreferenceStoreError:
                assert store.label_count() == 0 and store.queries() == [] and store.sessions() == []
                assert sorted(p.name for p in store.arrays_dir.glob("*")) == []


@pytest.fixture(scope="module")
def fuzz_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A new checkpoint (with the settings hash) and an old-style one (without)."""
    root = tmp_path_factory.mktemp("ck_src")
    new = save_policy(root / "new", tiny_policy(), None, TASK, policy_perception())
    old = save_policy(root / "old", tiny_policy(), None, TASK, policy_perception())
    edit(old, "training", {}, drop_header=True)
    return {"new": new, "old": old}


@given(data=st.data())
@FUZZ
def test_a_damaged_checkpoint_json_raises_only_checkpoint_errors(fuzz_checkpoints, data):
    import shutil
    import tempfile

    src = fuzz_checkpoints[data.draw(st.sampled_from(["old", "old", "new"]))]
    meta = json.loads(src.read_text())
    # Mostly the settings a loader reads (nested entries included), sometimes anything.
    paths = [p for p in _paths(meta) if p[0] in ("policy", "perception", "normalizer", "workspace", "task",
                                                   "primitive", "param_names", "vocab", "version")]
    path = list(data.draw(st.sampled_from(paths)))
    if data.draw(st.booleans()) and len(path) == 1 and path[0] != "version":
        del meta[path[0]]
    else:
        _mutate_json_tree(meta, path, data.draw(JSON_VALUES), False)
    with tempfile.TemporaryDirectory() as tmp:
        ck = Path(tmp) / "ck.json"
        shutil.copy(src.with_suffix(".safetensors"), ck.with_suffix(".safetensors"))
        ck.write_text(json.dumps(meta))
        try:
            load_policy(ck)
        except CheckpointError:
            pass
