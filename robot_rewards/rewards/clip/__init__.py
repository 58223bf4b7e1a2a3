"""CLIP state rewards (VLM-RM): model and preprocessing, prompts, the reward, a what-if action
scorer over predicted outcomes, domain-adaptation data, training and evaluation."""
