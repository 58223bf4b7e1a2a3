"""A STAND-IN for a real vision-language model, for tests and the plumbing benchmark: an
OpenAI-compatible chat-completions server (standard library, 127.0.0.1, a free port) that
answers from ground truth the caller registers per image, NOT from looking at the image.

It speaks the API a client meets at a real server (vLLM's `/v1/chat/completions`): the model
name must match (404 otherwise), an API key is checked when one is set (401), images come as
base64 data URLs, answers are `choices[0].message.content` with a `usage` block. What it knows:
for each image (by hash) the truth of the question the prompt asks (`prompts.question_kind`):
the two candidates' values (pair), success (yes/no), the right mark (keypoints).

Knobs for the bad cases: `error_rate` (a decided answer is wrong with this probability, like
the scripted `mistake` teacher), `prose_rate` / `unsure_rate` (answers in a sentence / UNSURE),
`delay_s` (slow: the answer comes late), `fail_first` (HTTP 500 for the first requests) and
`status` (every request fails with it). An image without registered truth is HTTP 400, or is
answered with `fallback` when that is set (a fixed answer, for plumbing checks of a command).
"""

from __future__ import annotations

import json
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from robot_rewards.rewards.vlm.client import decode_data_url, encode_png, estimate_image_tokens, image_digest
from robot_rewards.rewards.vlm.prompts import question_kind

PROSE = {"pair": "Looking at the image, I would say the arrow labelled A seems slightly better.",
         "success": "The block appears to be close to the bowl, so it is probably done.",
         "keypoint_object": "The object is near point 3, I think.",
         "keypoint_target": "It should go roughly where point 5 is."}


class StandInVLM:
    """See the module docstring. Use as a context manager; `url` is the base_url to configure."""

    def __init__(self, model: str = "stand-in-vlm", api_key: str = "", error_rate: float = 0.0,
                 prose_rate: float = 0.0, unsure_rate: float = 0.0, delay_s: float = 0.0, fail_first: int = 0,
                 status: int = 0, fallback: str = "", seed: int = 0):
        if not 0.0 <= error_rate <= 1.0 or not 0.0 <= prose_rate <= 1.0 or not 0.0 <= unsure_rate <= 1.0:
            raise ValueError("error_rate, prose_rate and unsure_rate must be in [0, 1]")
        self.model, self.api_key = model, api_key
        self.error_rate, self.prose_rate, self.unsure_rate = error_rate, prose_rate, unsure_rate
        self.delay_s, self.fail_first, self.status = delay_s, int(fail_first), int(status)
        self.fallback = fallback
        self.rng = np.random.default_rng([int(seed), 5051])
        self.truth: dict[str, dict] = {}
        self.requests: list[dict] = []  # every request body received (images as given)
        self.answers: list[str] = []  # every answer sent
        self.wrong = 0  # answers made wrong on purpose (error_rate)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- ground truth ----------------------------------------------------------------------

    def _entry(self, image) -> dict:
        return self.truth.setdefault(image_digest(encode_png(image)), {})

    def register_pair(self, image, value_a: float, value_b: float) -> None:
        """The image shows candidate A with true value `value_a` and B with `value_b`."""
        self._entry(image)["pair"] = (float(value_a), float(value_b))

    def register_success(self, image, success: bool) -> None:
        """The image shows the task done (True) or not."""
        self._entry(image)["success"] = bool(success)

    def register_marks(self, image, object_index: int, target_index: int, count: int) -> None:
        """Among `count` marks, 0-based `object_index` is on the object, `target_index` at its target."""
        self._entry(image).update(keypoint_object=(int(object_index), count), keypoint_target=(int(target_index), count))

    # -- answers ---------------------------------------------------------------------------

    def answer(self, kind: str, truth) -> str:
        """The answer to a question of `kind` given its truth (with the configured noise)."""
        with self._lock:
            u_prose, u_unsure, u_err, u_pick = self.rng.random(4)
        if u_prose < self.prose_rate:
            return PROSE[kind]
        if u_unsure < self.unsure_rate:
            return "UNSURE"
        wrong = u_err < self.error_rate
        if kind == "pair":
            va, vb = truth
            if va == vb:
                return "TIE"
            better_a = (va > vb) != wrong
            self.wrong += int(wrong)
            return "A" if better_a else "B"
        if kind == "success":
            self.wrong += int(wrong)
            return "YES" if truth != wrong else "NO"
        index, count = truth
        if wrong and count > 1:
            self.wrong += 1
            index = (index + 1 + int(u_pick * (count - 1))) % count  # any other mark
        return str(index + 1)

    # -- the server ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in server is not running (use it as a context manager)")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> StandInVLM:
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandInVLM:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def respond(self, path: str, headers, body: bytes) -> tuple[int, dict]:
        """(HTTP status, JSON document) for one request, as a chat-completions server would."""
        with self._lock:
            n = len(self.requests)
            try:
                doc = json.loads(body)
            except ValueError:
                return 400, _error("the request body is not JSON")
            self.requests.append(doc)
        if self.status:
            return self.status, _error(f"stand-in configured to fail with HTTP {self.status}")
        if n < self.fail_first:
            return 500, _error("stand-in: temporary failure")
        if path.rstrip("/") != "/v1/chat/completions":
            return 404, _error(f"no route {path}")
        if self.api_key and headers.get("Authorization", "") != f"Bearer {self.api_key}":
            return 401, _error("invalid API key")
        if doc.get("model") != self.model:
            return 404, _error(f"The model `{doc.get('model')}` does not exist.")
        try:
            (message,) = doc["messages"]
            parts = message["content"]
            prompt = "".join(p["text"] for p in parts if p.get("type") == "text")
            pngs = [decode_data_url(p["image_url"]["url"]) for p in parts if p.get("type") == "image_url"]
        except (KeyError, TypeError, ValueError) as exc:
            return 400, _error(f"malformed messages: {exc}")
        kind = question_kind(prompt)
        if not kind or len(pngs) != 1:
            return 400, _error("the stand-in answers the VLM family's questions about one image")
        truth = self.truth.get(image_digest(pngs[0]), {}).get(kind)
        if truth is None and not self.fallback:
            return 400, _error(f"stand-in has no ground truth for this image ({kind})")
        text = self.fallback if truth is None else self.answer(kind, truth)
        with self._lock:
            self.answers.append(text)
        w, h = struct.unpack(">II", pngs[0][16:24])  # the PNG header's IHDR size
        usage = {"prompt_tokens": estimate_image_tokens(w, h) + len(prompt.split()) * 4 // 3,
                 "completion_tokens": 1}
        usage["total_tokens"] = usage["prompt_tokens"] + 1
        return 200, {"id": f"chatcmpl-standin-{n}", "object": "chat.completion", "created": int(time.time()),
                     "model": self.model, "usage": usage,
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": text}}]}


def _error(message: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error"}}


class _Handler(BaseHTTPRequestHandler):
    standin: StandInVLM
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        if self.standin.delay_s:
            time.sleep(self.standin.delay_s)
        status, doc = self.standin.respond(self.path, self.headers, body)
        data = json.dumps(doc).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nothing to answer

    def log_message(self, format, *args) -> None:
        pass  # quiet: tests and benchmarks print their own figures
