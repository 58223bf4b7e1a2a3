"""Primitive parameters <-> the normalised action vector the diffusion model works in.

Two steps:

1. *Features*: points stay xyz; each gripper angle a becomes (cos 2a, sin 2a). A parallel
   gripper is the same at a and a + pi (`wrap_gripper_yaw`), so demonstrations at yaw 1.55 and
   -1.55 rad are almost the same grasp: in raw yaw they sit at opposite ends of the range (a
   wrap discontinuity that a diffusion model would learn as two far-apart modes, and average
   into a wrong yaw), while on the doubled-angle circle they are neighbours. Decoding with
   atan2(s, c) / 2 gives the yaw in (-pi/2, pi/2].
2. *Scaling*: every feature maps affinely to [-1, 1] using the min/max of the training actions,
   widened by a margin (so the demonstrations do not sit exactly on the sampler's clip
   boundary). The cos/sin features already live in [-1, 1] and are left as they are, which
   keeps the circle round. Dimensions that barely vary (a pick height that is always 2 cm)
   get a minimum range, so noise in them is not blown up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rewards.core.primitives import PRIMITIVE_SPECS, PrimitiveSpec

# Angles whose actuator is symmetric under a half turn (a parallel gripper's yaw).
HALF_TURN_ANGLES = {("pick_place", "yaw")}


class NormalizerError(ValueError):
    """Actions that cannot be fitted/encoded (wrong layout, non-finite values, empty)."""


def feature_names(spec: PrimitiveSpec) -> list[str]:
    """Names of the feature vector's entries for a primitive layout."""
    out = []
    for name in spec.param_names:
        if name in spec.angles:
            out += [f"cos_k_{name}", f"sin_k_{name}"]
        else:
            out.append(name)
    return out


def _angle_factor(spec: PrimitiveSpec, name: str) -> float:
    return 2.0 if (spec.name, name) in HALF_TURN_ANGLES else 1.0


@dataclass
class ActionNormalizer:
    """Maps (N, D) primitive parameters to (N, F) features in [-1, 1] and back."""

    primitive: str
    low: np.ndarray  # (F,) feature value mapped to -1
    high: np.ndarray  # (F,) feature value mapped to +1

    @property
    def spec(self) -> PrimitiveSpec:
        return PRIMITIVE_SPECS[self.primitive]

    @property
    def dim(self) -> int:
        """Size of the normalised action vector the model predicts."""
        return len(self.low)

    # -- fitting -----------------------------------------------------------------------------
    @classmethod
    def fit(cls, primitive: str, params: np.ndarray, margin: float = 0.1,
            min_range: float = 0.02) -> ActionNormalizer:
        """Fit on training parameters (N, D): range widened by `margin` x range on each side,
        at least `min_range` wide (metres for points)."""
        if primitive not in PRIMITIVE_SPECS:
            raise NormalizerError(f"unknown primitive '{primitive}'")
        spec = PRIMITIVE_SPECS[primitive]
        feats = _features(spec, params)
        if len(feats) == 0:
            raise NormalizerError("cannot fit a normaliser on zero actions")
        lo, hi = feats.min(axis=0), feats.max(axis=0)
        centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2 * (1 + 2 * margin), min_range / 2)
        low, high = centre - half, centre + half
        for k, name in enumerate(feature_names(spec)):
            if name.startswith(("cos_k_", "sin_k_")):
                low[k], high[k] = -1.0, 1.0
        return cls(primitive, low, high)

    # -- mapping -----------------------------------------------------------------------------
    def encode(self, params: np.ndarray) -> np.ndarray:
        """(N, D) parameters -> (N, F) normalised features (float64)."""
        f = _features(self.spec, params)
        return 2.0 * (f - self.low) / (self.high - self.low) - 1.0

    def decode(self, x: np.ndarray) -> np.ndarray:
        """(N, F) normalised features -> (N, D) parameters (float64); gripper yaws in (-pi/2, pi/2]."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.dim)
        f = (x + 1.0) / 2.0 * (self.high - self.low) + self.low
        spec, out, k = self.spec, [], 0
        for name in spec.param_names:
            if name in spec.angles:
                out.append(np.arctan2(f[:, k + 1], f[:, k]) / _angle_factor(spec, name))
                k += 2
            else:
                out.append(f[:, k])
                k += 1
        return np.stack(out, axis=1)

    # -- storage -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-safe form (floats round-trip exactly through JSON)."""
        return {"primitive": self.primitive, "features": feature_names(self.spec),
                "low": [float(v) for v in self.low], "high": [float(v) for v in self.high]}

    @classmethod
    def from_dict(cls, d: dict) -> ActionNormalizer:
        """The normaliser of `to_dict`'s form, checked (NormalizerError saying what is wrong)."""
        if not isinstance(d, dict):
            raise NormalizerError(f"malformed normaliser entry: expected an object, got {type(d).__name__}")
        try:
            out = cls(str(d["primitive"]), np.asarray(d["low"], dtype=np.float64),
                      np.asarray(d["high"], dtype=np.float64))
        except KeyError as exc:
            raise NormalizerError(f"malformed normaliser entry: no {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise NormalizerError(f"malformed normaliser entry: low/high must be lists of numbers ({exc})") from exc
        if out.primitive not in PRIMITIVE_SPECS:
            raise NormalizerError(f"normaliser for unknown primitive '{out.primitive}'")
        problem = layout_difference(out.primitive, d.get("features"), out.low.shape, out.high.shape)
        if problem:
            raise NormalizerError(f"normaliser layout does not match the {out.primitive} features: {problem}")
        if not (np.all(np.isfinite(out.low)) and np.all(np.isfinite(out.high))):
            raise NormalizerError("normaliser low/high contain NaN or inf")
        bad = [n for n, lo, hi in zip(feature_names(out.spec), out.low, out.high) if not hi > lo]
        if bad:
            raise NormalizerError(f"normaliser has an empty range (high <= low) for {bad}")
        return out


def layout_difference(primitive: str, features, low_shape: tuple, high_shape: tuple) -> str | None:
    """What differs between a stored normaliser's layout and this code's `primitive` features
    (None when nothing does): the feature names missing, extra or out of order, or the length of
    low/high. `features` None (not stored) means the expected names."""
    names = feature_names(PRIMITIVE_SPECS[primitive])
    if features is not None:
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            return f"'features' must be a list of names, got {features!r}"
        if features != names:
            missing = [n for n in names if n not in features]
            extra = [f for f in features if f not in names]
            if missing or extra:
                parts = ([f"missing {missing}"] if missing else []) + ([f"unknown {extra}"] if extra else [])
                return f"{'; '.join(parts)} (expected {names})"
            k = next(i for i, (a, b) in enumerate(zip(features, names)) if a != b) if len(features) == len(names) \
                else min(len(features), len(names))
            return (f"features in another order or repeated: entry {k} is "
                    f"{features[k] if k < len(features) else 'absent'!r}, expected {names[k]!r} (expected {names})")
    for what, shape in (("low", low_shape), ("high", high_shape)):
        if shape != (len(names),):
            return (f"'{what}' has shape {shape}, expected ({len(names)},) for the features {names}")
    return None


def _features(spec: PrimitiveSpec, params) -> np.ndarray:
    p = np.asarray(params, dtype=np.float64)
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2 or p.shape[1] != spec.dim:
        raise NormalizerError(f"{spec.name} actions must be (N, {spec.dim}) {spec.param_names}, got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise NormalizerError("actions contain NaN or inf")
    cols = []
    for j, name in enumerate(spec.param_names):
        if name in spec.angles:
            k = _angle_factor(spec, name)
            cols += [np.cos(k * p[:, j]), np.sin(k * p[:, j])]
        else:
            cols.append(p[:, j])
    return np.stack(cols, axis=1)
