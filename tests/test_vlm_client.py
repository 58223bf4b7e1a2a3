"""The VLM client against a local chat-completions server run inside the test suite.

The server (`rewards.vlm.standin.StandInVLM`) is a STAND-IN for a real model: it answers from
ground truth registered per image. The client is the one a user points at `vllm serve`.
Here: the request on the wire, strict parsing, the API key, timeouts, retries, unreachable
endpoints, the request budget and the cache. Synthetic images; no simulator.
"""

from __future__ import annotations

import json
import math
import socket
import time

import numpy as np
import pytest

from robot_rewards.rewards.vlm.client import (
    Reply,
    VLMBudgetError,
    VLMClient,
    VLMConfigError,
    VLMEndpointError,
    VLMUnavailableError,
    decode_data_url,
    encode_png,
    estimate_image_tokens,
    image_digest,
)
from robot_rewards.rewards.vlm.config import VLMConfig
from robot_rewards.rewards.vlm.parse import parse_index, parse_word
from robot_rewards.rewards.vlm.prompts import SUCCESS_WORDS, question_kind, success_prompt
from robot_rewards.rewards.vlm.standin import StandInVLM
from robot_rewards.rewards.vlm.verdict import word_verdict

GOAL = "put the red block in the green bowl"
MODEL = "stand-in-vlm"


def image(k: int) -> np.ndarray:
    """A small distinct RGB image per k."""
    img = np.zeros((48, 64, 3), np.uint8)
    img[4 + k % 30: 14 + k % 30, 5:20] = (200, 30 + k, 30)
    return img


def config(server: StandInVLM | None = None, url: str = "", **kw) -> VLMConfig:
    base = dict(base_url=url or server.url, model=MODEL, api_key_env="", timeout_s=5.0, backoff_s=0.0)
    return VLMConfig(**{**base, **kw})


class Sleeps(list):
    """Records the backoff waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_request_on_the_wire_and_answer():
    with StandInVLM(api_key="secret-123") as server:
        img = image(1)
        server.register_success(img, True)
        client = VLMClient(config(server, api_key_env="TEST_VLM_KEY"), environ={"TEST_VLM_KEY": "secret-123"})
        reply = client.ask(success_prompt(GOAL), [img])
        assert reply == Reply("YES", "ok")
        (body,) = server.requests
        assert body["model"] == MODEL and body["temperature"] == 0.0 and body["max_tokens"] == 16
        (msg,) = body["messages"]
        assert msg["role"] == "user"
        text, img_part = msg["content"]
        assert text == {"type": "text", "text": success_prompt(GOAL)}
        url = img_part["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        assert decode_data_url(url) == encode_png(img)  # the PNG of exactly this image
        s = client.stats()
        assert (s["questions"], s["requests"], s["answered"], s["retries"]) == (1, 1, 1, 0)
        assert s["prompt_tokens"] > estimate_image_tokens(64, 48)  # the image, as the server reported it
        assert s["completion_tokens"] == 1


def test_png_encoding_is_lossless_and_hash_stable():
    import cv2

    img = image(3)
    png = encode_png(img)
    back = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, img)
    assert image_digest(encode_png(img.copy())) == image_digest(png)
    assert image_digest(encode_png(image(4))) != image_digest(png)
    with pytest.raises(ValueError, match="uint8 RGB"):
        encode_png(img.astype(np.float32))


@pytest.mark.parametrize("text, expected", [
    ("A", 1.0), ("b", 0.0), (" TIE\n", 0.5), ("A.", 1.0), ("**B**", 0.0), ("`a`", 1.0), ('"B"', 0.0),
    ("A or B", None), ("The answer is A", None), ("AB", None), ("", None), (None, None), ("A. B.", None),
    ("Answer: A", None), ("1", None),
])
def test_pair_answers_are_parsed_strictly(text, expected):
    assert parse_word(text, {"A": 1.0, "B": 0.0, "TIE": 0.5}) == expected


@pytest.mark.parametrize("text, expected", [
    ("3", 2), ("#12", 11), ("12.", 11), ("none", -1), ("0", None), ("13", None), ("3, 4", None),
    ("point 3", None), ("three", None), ("", None),
])
def test_mark_numbers_are_parsed_strictly(text, expected):
    assert parse_index(text, 12) == expected


def test_prose_is_cant_tell_counted_never_an_exception():
    with StandInVLM(prose_rate=1.0) as server:
        img = image(2)
        server.register_success(img, True)
        client = VLMClient(config(server))
        verdicts = [word_verdict(client.ask(success_prompt(GOAL), [img]), SUCCESS_WORDS) for _ in range(3)]
    assert all(v.status == "malformed" and math.isnan(v.label) for v in verdicts)
    assert "probably done" in verdicts[0].text  # the prose is kept for the record
    assert client.stats()["answered"] == 3  # the server did answer; the answer just says nothing


def test_unsure_is_its_own_status():
    with StandInVLM(unsure_rate=1.0) as server:
        img = image(5)
        server.register_success(img, False)
        v = word_verdict(VLMClient(config(server)).ask(success_prompt(GOAL), [img]), SUCCESS_WORDS)
    assert v.status == "unsure" and math.isnan(v.label)


def test_a_response_that_is_not_a_chat_completion_is_counted():
    class Odd(StandInVLM):
        def respond(self, path, headers, body):
            self.requests.append(json.loads(body))
            return 200, {"result": "YES"}

    with Odd() as server:
        client = VLMClient(config(server))
        reply = client.ask(success_prompt(GOAL), [image(6)])
    assert reply.status == "bad_response" and reply.text is None and "not a chat completion" in reply.error
    v = word_verdict(reply, SUCCESS_WORDS)
    assert v.status == "malformed" and math.isnan(v.label)
    assert client.stats()["bad_responses"] == 1


def test_missing_api_key_variable_is_one_specific_line():
    with pytest.raises(VLMConfigError) as err:
        VLMClient(config(url="http://127.0.0.1:9/v1", api_key_env="MY_VLM_KEY"), environ={})
    msg = str(err.value)
    assert "\n" not in msg and "MY_VLM_KEY is not set" in msg and "export MY_VLM_KEY=" in msg
    # the key itself in the config is refused, and never echoed
    with pytest.raises(VLMConfigError, match="NAME of an environment variable") as err:
        VLMClient(config(url="http://127.0.0.1:9/v1", api_key_env="sk-abc123-secret"))
    assert "sk-abc123" not in str(err.value)


@pytest.mark.parametrize("field, value, match", [
    ("model", "", "vlm.model is empty"), ("base_url", "localhost:8000", "vlm.base_url must be an http"),
    ("timeout_s", 0.0, "vlm.timeout_s"), ("retries", -1, "vlm.retries"), ("on_error", "ignore", "vlm.on_error"),
])
def test_bad_settings_are_named(field, value, match):
    with pytest.raises(VLMConfigError, match=match):
        VLMClient(config(url="http://127.0.0.1:9/v1", **{field: value}))


def test_wrong_key_and_wrong_model_fail_at_once_without_retries():
    with StandInVLM(api_key="right") as server:
        server.register_success(image(7), True)
        client = VLMClient(config(server, api_key_env="K", retries=3), environ={"K": "wrong"})
        with pytest.raises(VLMEndpointError, match=r"refused the API key \(HTTP 401"):
            client.ask(success_prompt(GOAL), [image(7)])
        assert client.stats()["requests"] == 1
        other = VLMClient(config(server, model="other-model", api_key_env="K"), environ={"K": "right"})
        with pytest.raises(VLMEndpointError, match="HTTP 404.*does not exist.*'other-model'"):
            other.ask(success_prompt(GOAL), [image(7)])


def test_server_errors_are_retried_with_exponential_backoff():
    with StandInVLM(fail_first=2) as server:
        img = image(8)
        server.register_success(img, True)
        sleeps = Sleeps()
        client = VLMClient(config(server, retries=3, backoff_s=0.5, backoff_max_s=30.0), sleep=sleeps)
        assert client.ask(success_prompt(GOAL), [img]).text == "YES"
    s = client.stats()
    assert (s["requests"], s["retries"], s["server_errors"], s["failed"]) == (3, 2, 2, 0)
    assert sleeps == [0.5, 1.0]


def test_persistent_500s_give_cant_tell_then_stop_after_consecutive_failures():
    with StandInVLM(status=500) as server:
        sleeps = Sleeps()
        client = VLMClient(config(server, retries=2, backoff_s=0.25, backoff_max_s=0.6, max_consecutive_errors=2),
                           sleep=sleeps)
        first = client.ask(success_prompt(GOAL), [image(9)])
        assert first.status == "error" and "HTTP 500" in first.error
        assert math.isnan(word_verdict(first, SUCCESS_WORDS).label)
        assert sleeps == [0.25, 0.5]  # 2 retries, doubling
        with pytest.raises(VLMUnavailableError, match="failed 2 request.s. in a row after 2 retries each: HTTP 500"):
            client.ask(success_prompt(GOAL), [image(9)])
        assert client.stats()["requests"] == 6
    with StandInVLM(status=503) as server:  # on_error=stop: the first failure stops
        client = VLMClient(config(server, retries=1, on_error="stop"), sleep=Sleeps())
        with pytest.raises(VLMUnavailableError, match="HTTP 503"):
            client.ask(success_prompt(GOAL), [image(9)])


def test_a_slow_server_times_out_within_the_configured_time():
    with StandInVLM(delay_s=1.0) as server:
        img = image(10)
        server.register_success(img, True)
        client = VLMClient(config(server, timeout_s=0.2, retries=1, backoff_s=0.0))
        t0 = time.perf_counter()
        reply = client.ask(success_prompt(GOAL), [img])
        elapsed = time.perf_counter() - t0
    assert reply.status == "error" and "no answer within 0.2 s" in reply.error
    assert client.stats()["timeouts"] == 2 and elapsed < 1.0  # 2 attempts of 0.2 s, not the server's 1 s


def test_an_unreachable_endpoint_is_a_clear_error():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = VLMClient(config(url=f"http://127.0.0.1:{port}/v1", retries=1, on_error="stop"))
    with pytest.raises(VLMUnavailableError, match=rf"127.0.0.1:{port}/v1/chat/completions failed 1 request.*cannot connect"):
        client.ask(success_prompt(GOAL), [image(11)])
    assert client.stats()["connection_errors"] == 2


def test_budget_counts_requests_and_cache_hits_are_free(tmp_path):
    cache = tmp_path / "out" / "vlm_cache.sqlite"
    with StandInVLM() as server:
        imgs = [image(k) for k in range(3)]
        for k, img in enumerate(imgs):
            server.register_success(img, k % 2 == 0)
        client = VLMClient(config(server, max_requests=2, cache=str(cache)))
        assert [client.ask(success_prompt(GOAL), [im]).text for im in imgs[:2]] == ["YES", "NO"]
        again = client.ask(success_prompt(GOAL), [imgs[0]])
        assert again.cached and again.text == "YES"
        assert len(server.requests) == 2
        with pytest.raises(VLMBudgetError, match="vlm.max_requests=2"):
            client.ask(success_prompt(GOAL), [imgs[2]])
        client.close()
        # the cache is on disk: a new client (a re-run) asks nothing it already asked
        rerun = VLMClient(config(server, cache=str(cache)))
        assert rerun.ask(success_prompt(GOAL), [imgs[1]]) == Reply("NO", "ok", cached=True)
        # another prompt about the same image is another question
        assert not rerun.ask(success_prompt("stack the blocks"), [imgs[1]]).cached
        assert len(server.requests) == 3
        rerun.close()


def test_questions_are_told_apart_by_the_stand_in():
    from robot_rewards.rewards.vlm.prompts import keypoint_prompt, pair_prompt

    assert question_kind(pair_prompt(GOAL)) == "pair"
    assert question_kind(success_prompt(GOAL)) == "success"
    assert question_kind(keypoint_prompt(GOAL, 5, "object")) == "keypoint_object"
    assert question_kind(keypoint_prompt(GOAL, 5, "target")) == "keypoint_target"
    assert question_kind("What is in the image?") == ""
