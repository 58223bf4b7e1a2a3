"""DeformPAM's implicit reward: a Diffusion-DPO-tuned copy of the policy scored against the
frozen policy (`config` its configs, `dpo` trains it, `reward` scores and loads it)."""
