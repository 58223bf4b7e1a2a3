"""One decision as a matplotlib figure: the camera image beside a 3D view of the cloud with the
candidates (pick -> place arrows coloured by score), the chosen one and the rejected ones; the
same content as the Rerun recording, for docs and headless machines."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

from robot_rewards.viz.rerun_log import CHOSEN, REJECTED, candidate_segments, decision_scores, score_colours


def decision_figure(obs, decision, path: str | Path, title: str = "") -> Path:
    """Write the figure of `decision` (made at `obs`) to `path` (PNG)."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cam = next(iter(obs.frames.values())) if obs.frames else None
    fig = plt.figure(figsize=(12, 5))
    if cam is not None:
        ax_img = fig.add_subplot(1, 2, 1)
        ax_img.imshow(cam.rgb)
        ax_img.set_title(f"camera '{cam.camera.name}'")
        ax_img.axis("off")
    ax = fig.add_subplot(1, 2, 2, projection="3d")
    if obs.points is not None:
        cols = obs.colors / 255.0 if obs.colors is not None else "0.6"
        ax.scatter(*obs.points.T, c=cols, s=1, depthshade=False)
    cands = decision.candidates
    o, v = candidate_segments(cands.params, cands.name)
    scores = decision_scores(decision)
    colours = score_colours(scores, len(cands)) / 255.0
    for i in range(len(cands)):
        ax.quiver(*o[i], *v[i], color=colours[i], arrow_length_ratio=0.15, linewidth=1.5)
    for i, reason in decision.rejected:
        ax.quiver(*o[i], *v[i], color=np.array(REJECTED) / 255.0, arrow_length_ratio=0.15, linewidth=2.5,
                  linestyle="--")
        ax.text(*(o[i] + v[i]), f"{i}: {reason}"[:40], color=np.array(REJECTED) / 255.0, fontsize=7)
    if decision.chosen is not None:
        c = decision.chosen
        ax.quiver(*o[c], *v[c], color=np.array(CHOSEN) / 255.0, arrow_length_ratio=0.15, linewidth=4)
        ax.text(*(o[c] + v[c]), f"chosen {c}", color=np.array(CHOSEN) / 255.0, fontsize=9)
    if scores is not None:
        from matplotlib import cm, colors

        sm = cm.ScalarMappable(norm=colors.Normalize(np.nanmin(scores), np.nanmax(scores)), cmap="viridis")
        fig.colorbar(sm, ax=ax, shrink=0.6, label="candidate score")
    pts = np.concatenate([o, o + v] + ([obs.points] if obs.points is not None else []))
    span = np.ptp(pts, axis=0)
    # metres to scale in x and y; height stretched to a quarter of the width so lifts show
    ax.set_box_aspect((span[0], span[1], max(span[2], 0.25 * max(span[0], span[1]))))
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("z (m)")
    ax.set_title(title or f"decision {decision.decision}: {len(cands)} candidates (pick -> place)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
