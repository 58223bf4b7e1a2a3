"""Reward models: state rewards and action scorers over N candidate primitives.

`base` (`ScoreSet`, the `ActionScorer` / `StateReward` interfaces, input checks and errors),
`aggregate` (best-of-N over ensemble members: mean, WCO, UWO), `registry` (load any scorer
checkpoint by its format), `host` (`RewardHost`, a thread-safe micro-batching server), `config`
(the host's and the reward bench's configs), `synthetic` (planted scenes for tests and benches),
and one sub-package per reward family, each with its config, model, checkpoint I/O and training:

- `preference/`: the Bradley-Terry preference-trained ensemble scorer;
- `implicit/`: DeformPAM's implicit reward (a DPO-tuned policy against the frozen policy);
- `keypoints/`: keypoint rewards and keypoint sources (sim ground truth, clicks, a learned PointNet);
- `clip/`: CLIP state rewards (VLM-RM) and their domain adaptation.
- `vlm/`: a vision-language model over an OpenAI-compatible endpoint (pair labels, success,
  keypoint picks).

This file imports nothing, so `robot_rewards.rewards.base` and `.aggregate` stay free of torch.
"""
