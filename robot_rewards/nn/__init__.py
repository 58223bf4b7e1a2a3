"""Network blocks and tensor I/O shared by the policy and the reward models.

`encoders` (goal-FiLM PointNet, goal text), `normalizer` (primitive parameters <-> [-1, 1]),
`artifacts` (safetensors + JSON checkpoints with SHA-256), `timing` (device timing helpers).
Nothing is imported here, so importing the package stays free of torch.
"""
