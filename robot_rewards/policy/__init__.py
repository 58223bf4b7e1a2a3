"""Diffusion policy over action primitives: N candidate primitives per decision from a point
cloud and a language goal (DeformPAM-style; DDPM training, DDIM sampling; Chi et al.).

Modules: `schedule` (noise schedule, DDPM/DDIM), `denoiser` (residual FiLM MLP), `model`
(`DiffusionPolicy`), `checkpoint` (safetensors + JSON), `dataset` (episodes -> samples),
`train` (train-policy). The point/goal encoders and the action normaliser are in `nn/` (the
reward models share them); closed-loop evaluation is `eval.policy`. Nothing here is imported by this
package file, so `import robot_rewards.policy.config` stays free of torch.
"""
