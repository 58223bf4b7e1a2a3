"""Diffusion policy over action primitives: N candidate primitives per decision from a point
cloud and a language goal (DeformPAM-style; DDPM training, DDIM sampling; Chi et al.).

Modules: `schedule` (noise schedule, DDPM/DDIM), `normalizer` (parameters <-> [-1, 1] action
vector), `encoders` (goal-FiLM PointNet, goal text), `denoiser` (residual FiLM MLP), `model`
(`DiffusionPolicy`), `checkpoint` (safetensors + JSON), `dataset` (episodes -> samples),
`train` (train-policy), `evaluate` (closed-loop evaluation). Nothing here is imported by this
package file, so `import robot_rewards.policy.config` stays free of torch.
"""
