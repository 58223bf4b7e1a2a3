"""Structured (dataclass) configs for every command; hydra reads and overrides them."""
