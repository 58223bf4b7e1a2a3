"""Keypoint rewards: analytic candidate scoring from keypoints (`reward`), keypoint sources,
the learned PointNet keypoint model (`net`, `io`) and its configs (`config`)."""
