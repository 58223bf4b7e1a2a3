"""A client for any OpenAI-compatible chat-completions endpoint that takes images (vLLM, SGLang,
a hosted API): one user message with the prompt text and the images as base64 PNG data URLs.

Standard library only (urllib). What it guarantees:

- the API key comes from the environment variable `VLMConfig.api_key_env` names, read once when
  the client is built (missing: `VLMConfigError`, one line, before any work);
- each HTTP attempt has a timeout; a timeout, a refused or dropped connection, HTTP 429 or 5xx
  is retried `retries` times with exponential backoff (a 429's Retry-After is honoured, capped);
- HTTP 400/401/403/404 are configuration problems (wrong key, URL or model, a model without
  image input) and raise `VLMEndpointError` at once: every later request would fail the same way;
- a request still failing after its retries returns a `Reply` with status "error" (counted) or,
  with `on_error="stop"` or after `max_consecutive_errors` failures in a row, raises
  `VLMUnavailableError`;
- `max_requests` HTTP attempts at most (`VLMBudgetError` after that); cache hits are free;
- answers are cached by (model, prompt, image hashes, sampling settings) when `cache` is set;
- a 200 response that is not a chat completion returns status "bad_response" (counted, never a
  crash). What the answer text means is for the caller to parse (`parse.py`).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import math
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np

from robot_rewards.rewards.vlm.cache import AnswerCache
from robot_rewards.rewards.vlm.config import ON_ERROR, VLMConfig

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class VLMConfigError(ValueError):
    """A VLM setting that cannot work (no model, a bad URL, a missing API key variable, ...)."""


class VLMError(OSError):
    """The endpoint could not answer (subclasses say how)."""


class VLMEndpointError(VLMError):
    """The endpoint refused the request for a reason retrying cannot fix (HTTP 400/401/403/404)."""


class VLMUnavailableError(VLMError):
    """The endpoint kept failing (unreachable, timing out, 5xx) after the configured retries."""


class VLMBudgetError(VLMError):
    """The request budget (`max_requests`) is spent."""


@dataclass(frozen=True)
class Reply:
    """One answer: the text (None unless status is "ok"), status "ok", "error" (the request
    failed after its retries) or "bad_response" (HTTP 200 but not a chat completion), what went
    wrong, and whether it came from the cache."""

    text: str | None
    status: str
    error: str = ""
    cached: bool = False


# -- images ----------------------------------------------------------------------------------

def encode_png(image) -> bytes:
    """PNG bytes of an (H, W, 3) RGB uint8 image (bytes are taken as already encoded)."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"a VLM image must be (H, W, 3) uint8 RGB, got {arr.shape} {arr.dtype}")
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return buf.tobytes()


def image_digest(png: bytes) -> str:
    """sha256 hex digest of encoded image bytes (the cache key's image part)."""
    return hashlib.sha256(png).hexdigest()


def data_url(png: bytes) -> str:
    """A base64 PNG data URL, the form OpenAI-compatible servers take inline images in."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def decode_data_url(url: str) -> bytes:
    """The image bytes of a base64 data URL (ValueError if it is not one)."""
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:image/") or not head.endswith(";base64"):
        raise ValueError(f"not a base64 image data URL: {url[:40]!r}")
    return base64.b64decode(payload, validate=True)


def estimate_image_tokens(width: int, height: int, patch: int = 28) -> int:
    """Prompt tokens an image of width x height costs a Qwen2-VL-style model (one token per
    patch x patch pixels after rounding each side to a multiple of it). An estimate for
    planning: the endpoint's `usage` reports the real count (`VLMClient.stats`)."""
    return max(1, round(width / patch)) * max(1, round(height / patch))


# -- configuration ---------------------------------------------------------------------------

def check_config(cfg: VLMConfig) -> VLMConfig:
    """`cfg` if every field can work, else VLMConfigError naming the field."""
    if not isinstance(cfg, VLMConfig):
        raise VLMConfigError(f"expected a VLMConfig, got {type(cfg).__name__}")
    if not re.match(r"^https?://[^/\s]+", str(cfg.base_url)):
        raise VLMConfigError(f"vlm.base_url must be an http(s) URL such as http://localhost:8000/v1, got {cfg.base_url!r}")
    if not str(cfg.model).strip():
        raise VLMConfigError("vlm.model is empty: name the served model (what `vllm serve <model>` serves)")
    if cfg.api_key_env and not _ENV_NAME.match(cfg.api_key_env):
        raise VLMConfigError("vlm.api_key_env must be the NAME of an environment variable holding the key "
                             "(e.g. OPENAI_API_KEY), never the key itself")
    for name in ("timeout_s", "backoff_max_s"):
        v = getattr(cfg, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise VLMConfigError(f"vlm.{name} must be a number > 0, got {v!r}")
    if not (isinstance(cfg.backoff_s, (int, float)) and math.isfinite(cfg.backoff_s) and cfg.backoff_s >= 0):
        raise VLMConfigError(f"vlm.backoff_s must be a number >= 0, got {cfg.backoff_s!r}")
    for name in ("retries", "max_requests", "max_consecutive_errors", "max_tokens"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name == "max_tokens" else 0):
            raise VLMConfigError(f"vlm.{name} must be an integer >= {1 if name == 'max_tokens' else 0}, got {v!r}")
    if cfg.on_error not in ON_ERROR:
        raise VLMConfigError(f"vlm.on_error must be one of {list(ON_ERROR)}, got {cfg.on_error!r}")
    if not (math.isfinite(cfg.temperature) and cfg.temperature >= 0):
        raise VLMConfigError(f"vlm.temperature must be >= 0, got {cfg.temperature!r}")
    return cfg


def resolve_api_key(api_key_env: str, environ: Mapping[str, str] | None = None) -> str:
    """The API key from the variable `api_key_env` names ("" for a server without keys);
    VLMConfigError in one line if the variable is unset or empty."""
    if not api_key_env:
        return ""
    key = (os.environ if environ is None else environ).get(api_key_env, "")
    if not key.strip():
        raise VLMConfigError(f"the VLM API key variable {api_key_env} is not set: export {api_key_env}=<key>, "
                             f"or set vlm.api_key_env='' for a server that takes no key (vllm serve without --api-key)")
    return key.strip()


# -- the client ------------------------------------------------------------------------------

_COUNTS = ("questions", "requests", "retries", "cache_hits", "answered", "failed", "bad_responses",
           "timeouts", "connection_errors", "server_errors", "prompt_tokens", "completion_tokens")


class VLMClient:
    """Asks an OpenAI-compatible endpoint one question (text + images) at a time.

    environ: where the API key variable is looked up (default os.environ); sleep: the backoff's
    sleep (tests pass a recorder).
    """

    def __init__(self, config: VLMConfig, environ: Mapping[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.config = check_config(config)
        self._key = resolve_api_key(config.api_key_env, environ)
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.cache = AnswerCache(config.cache) if config.cache else None
        self._sleep = sleep
        self._counts = dict.fromkeys(_COUNTS, 0)
        self._consecutive = 0

    @property
    def model(self) -> str:
        return self.config.model

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> VLMClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stats(self) -> dict:
        """Counts since construction: questions, HTTP requests (attempts), retries, cache hits,
        answered, failed (after retries), bad responses, timeouts, connection and 5xx errors,
        and the prompt/completion tokens the endpoint reported in `usage`."""
        return dict(self._counts)

    def request_body(self, prompt: str, pngs: Sequence[bytes]) -> dict:
        """The chat-completions request for `prompt` and encoded images (no credentials)."""
        content: list[dict] = [{"type": "text", "text": prompt}]
        content += [{"type": "image_url", "image_url": {"url": data_url(p)}} for p in pngs]
        return {"model": self.config.model, "messages": [{"role": "user", "content": content}],
                "temperature": self.config.temperature, "max_tokens": self.config.max_tokens}

    def cache_key(self, prompt: str, pngs: Sequence[bytes]) -> str:
        """Key of a question: model, prompt, the images' hashes and the sampling settings."""
        c = self.config
        doc = {"model": c.model, "prompt": prompt, "images": [image_digest(p) for p in pngs],
               "temperature": c.temperature, "max_tokens": c.max_tokens}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def ask(self, prompt: str, images: Sequence) -> Reply:
        """Ask `prompt` about `images` ((H, W, 3) uint8 RGB arrays or PNG bytes); see the module
        docstring for what is retried, raised and counted."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("a VLM question needs a non-empty prompt")
        pngs = [encode_png(im) for im in images]
        self._counts["questions"] += 1
        key = self.cache_key(prompt, pngs) if self.cache is not None else ""
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self._counts["cache_hits"] += 1
                return Reply(hit, "ok", cached=True)
        body = json.dumps(self.request_body(prompt, pngs)).encode()
        raw, error = self._post_with_retries(body)
        if raw is None:
            return self._failed(error)
        self._consecutive = 0
        text, error = self._content(raw)
        if text is None:
            self._counts["bad_responses"] += 1
            return Reply(None, "bad_response", error)
        self._counts["answered"] += 1
        if self.cache is not None:
            self.cache.put(key, self.config.model, text)
        return Reply(text, "ok")

    # -- HTTP ------------------------------------------------------------------------------

    def _post_with_retries(self, body: bytes) -> tuple[bytes | None, str]:
        cfg = self.config
        error = ""
        for attempt in range(cfg.retries + 1):
            if attempt:
                self._counts["retries"] += 1
            if cfg.max_requests and self._counts["requests"] >= cfg.max_requests:
                raise VLMBudgetError(f"the VLM request budget is spent (vlm.max_requests={cfg.max_requests})")
            self._counts["requests"] += 1
            wait = None
            try:
                return self._post(body), ""
            except urllib.error.HTTPError as exc:
                detail = _server_message(exc)
                if exc.code in (401, 403):
                    raise VLMEndpointError(f"{self.url} refused the API key (HTTP {exc.code}"
                                           f"{': ' + detail if detail else ''}); check ${cfg.api_key_env or '<none>'}"
                                           ) from None
                if exc.code == 404:
                    raise VLMEndpointError(f"{self.url} answered HTTP 404{': ' + detail if detail else ''}: "
                                           f"check that vlm.base_url ends with the API version (/v1) and that "
                                           f"it serves model {cfg.model!r}") from None
                if exc.code != 429 and exc.code < 500:
                    raise VLMEndpointError(f"{self.url} rejected the request (HTTP {exc.code}"
                                           f"{': ' + detail if detail else ''})") from None
                self._counts["server_errors"] += 1
                error = f"HTTP {exc.code}{': ' + detail if detail else ''}"
                wait = _retry_after(exc)
            except TimeoutError:
                self._counts["timeouts"] += 1
                error = f"no answer within {cfg.timeout_s:g} s"
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError):
                    self._counts["timeouts"] += 1
                    error = f"no answer within {cfg.timeout_s:g} s"
                else:
                    self._counts["connection_errors"] += 1
                    error = f"cannot connect ({exc.reason})"
            except (ConnectionError, http.client.HTTPException) as exc:
                self._counts["connection_errors"] += 1
                error = f"connection failed ({type(exc).__name__}: {exc})"
            if attempt < cfg.retries:
                delay = min(cfg.backoff_max_s, cfg.backoff_s * 2 ** attempt)
                self._sleep(delay if wait is None else min(cfg.backoff_max_s, max(delay, wait)))
        return None, error

    def _post(self, body: bytes) -> bytes:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:
            return resp.read()

    def _failed(self, error: str) -> Reply:
        cfg = self.config
        self._counts["failed"] += 1
        self._consecutive += 1
        limit = cfg.max_consecutive_errors
        if cfg.on_error == "stop" or (limit and self._consecutive >= limit):
            raise VLMUnavailableError(f"{self.url} failed {self._consecutive} request(s) in a row after "
                                      f"{cfg.retries} retries each: {error}")
        return Reply(None, "error", error)

    def _content(self, raw: bytes) -> tuple[str | None, str]:
        """(answer text, "") of a chat-completions response, or (None, what is wrong)."""
        try:
            doc = json.loads(raw)
            message = doc["choices"][0]["message"]
            content = message["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return None, f"not a chat completion: {raw[:120]!r}"
        usage = doc.get("usage") if isinstance(doc, dict) else None
        if isinstance(usage, dict):
            for name in ("prompt_tokens", "completion_tokens"):
                if isinstance(usage.get(name), int):
                    self._counts[name] += usage[name]
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            return None, f"message content is {type(content).__name__}, not text"
        return content, ""


def _server_message(exc: urllib.error.HTTPError) -> str:
    """The error text a server sent with an HTTP error (OpenAI style {"error": {"message"}}), short."""
    try:
        raw = exc.read()
    except Exception:  # a body that cannot be read adds nothing to the message
        return ""
    try:
        doc = json.loads(raw)
        err = doc.get("error", doc) if isinstance(doc, dict) else doc
        text = err.get("message", "") if isinstance(err, dict) else str(err)
    except ValueError:
        text = raw.decode("utf-8", "replace")
    return " ".join(str(text).split())[:200]


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    value = exc.headers.get("Retry-After") if exc.headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None

