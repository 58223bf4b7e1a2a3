"""Structured configs of the VLM family (plain dataclasses, hydra-overridable): `VLMConfig`
(the endpoint and how to talk to it; `vlm.*` keys of every command that asks a VLM) and
`VLMLabelConfig` (`robot-rewards vlm-label`).

The API key is never a config value: `api_key_env` is the NAME of the environment variable that
holds it, read when the client is built."""

from __future__ import annotations

from dataclasses import dataclass, field

from robot_rewards.sim.config import SimConfig

_OUT = "outputs/{}/${{now:%Y-%m-%d_%H-%M-%S}}"

ON_ERROR = ("cant_tell", "stop")
PAIR_ORDERS = ("random", "as_is")


@dataclass
class VLMConfig:
    """An OpenAI-compatible chat-completions endpoint that takes images (vLLM, SGLang, a hosted API).

    base_url: up to and including the API version, e.g. http://localhost:8000/v1 (the client
    POSTs to `<base_url>/chat/completions`); model: the served model's name.
    """

    base_url: str = "http://localhost:8000/v1"
    model: str = ""
    # the NAME of the environment variable holding the API key; "" = the server takes no key
    # (a local `vllm serve` started without --api-key)
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0  # per HTTP attempt
    retries: int = 3  # further attempts after a timeout, a dropped connection, HTTP 429 or 5xx
    backoff_s: float = 1.0  # wait before retry k (k = 0, 1, ...): backoff_s * 2**k, at most backoff_max_s
    backoff_max_s: float = 30.0
    max_requests: int = 1000  # HTTP attempts this client may make (cache hits are free); 0 = no limit
    cache: str = ""  # SQLite file of answers by (model, prompt, image hashes); "" = no cache
    # a request that still fails after its retries: "cant_tell" (counted, the run goes on) or
    # "stop" (one-line error); either way max_consecutive_errors failures in a row stop the run
    on_error: str = "cant_tell"
    max_consecutive_errors: int = 5
    temperature: float = 0.0
    max_tokens: int = 16  # the answers are one word or one number


@dataclass
class VLMLabelConfig:
    """`robot-rewards vlm-label task=place_block labels=100 vlm.base_url=http://host:8000/v1
    vlm.model=Qwen/Qwen2.5-VL-7B-Instruct`: the policy plays episodes in sim; at each decision N
    candidates are sampled (and rolled out, so the store keeps their true values), pairs of them
    are drawn on the camera image and the VLM says which is better for the goal; its answers go
    into the preference store under labeller `vlm:<model>`, like a person's."""

    task: str = "place_block"
    policy: str = ""  # policy checkpoint; "" = the task's shipped one (checkpoints/policy_<task>.json)
    store: str = ""  # preference store; "" = <output_dir>/preferences
    labels: int = 100  # pairs to ask about (a request that fails after its retries stores nothing)
    n_candidates: int = 8
    pairs_per_query: int = 4
    label_decisions: int = 0  # label only the first this many decisions of each episode (0 = all)
    seed: int = 0  # first episode seed; also the seed of pair choice and A/B order
    labeller: str = ""  # "" = vlm:<model>
    # which candidate is shown as "A": "random" (seeded; washes out a model's position bias) or
    # "as_is" (the lower index)
    order: str = "random"
    render_scale: float = 1.0  # upscale of the camera image the candidates are drawn on
    quality_scale: float = 0.02  # metres of error worth one success in the stored true values
    torch_threads: int = 1
    vlm: VLMConfig = field(default_factory=VLMConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = _OUT.format("vlm-label")
