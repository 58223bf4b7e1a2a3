"""DeformPAM's implicit reward: a Diffusion-DPO-tuned copy of the policy scored against the
frozen policy (`dpo` trains it, `reward` scores and loads it)."""
