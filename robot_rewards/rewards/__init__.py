"""Reward models: state rewards and action scorers over N candidate primitives.

Modules (import what you need; this file imports nothing heavy, so `robot_rewards.rewards.base`
and `.aggregate` stay free of torch):

- `base`: `ScoreSet`, the `ActionScorer` / `StateReward` interfaces, input checks and errors.
- `aggregate`: best-of-N aggregation over ensemble members (mean, WCO, UWO) and argmax.
- `preference` (+ `preference_net`, `preference_io`): the Bradley-Terry preference-trained
  ensemble scorer, its training, calibration metrics and checkpoints.
- `implicit` (+ `dpo`): DeformPAM's implicit reward, a Diffusion-DPO-tuned copy of the policy
  against the frozen policy, averaged over fixed noise draws; `loading.load_action_scorer`
  loads either kind of scorer checkpoint by its format.
- `keypoints` (+ `keypoint_net`): keypoint rewards, analytic candidate scoring and keypoint
  sources (sim ground truth, human clicks, a learned PointNet; a VLM source plugs into
  `KeypointSource` later).
- `host`: `RewardHost`, a thread-safe micro-batching server of loaded scorers.
- `config`: the structured configs of the above.

A CLIP/VLM state reward will implement `base.StateReward` (and may wrap into an ActionScorer
by scoring predicted outcomes); nothing else has to change for it.
"""
