"""The console's input state machine, without any I/O: feed it a line (or a window key), get
back events for the app to carry out and a message/prompt to show.

Rank mode follows DeformPAM: the labeller picks the best remaining candidate again and again
until the rest are indistinguishable ("=" or Enter), so every pick beats every unpicked
candidate and picks are ordered among themselves. Pairwise mode asks A or B, tie, or can't
tell. Teleop commands (execute, home, jog, demonstrate) are parsed here too, so all input
validation lives in one place. Candidates are numbered from 1 on screen, from 0 in events.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Union

RANK, PAIRWISE = "rank", "pairwise"
PAIR_KEYS = {"a": "a", "b": "b", "t": "tie", "?": "cant_tell"}
TELEOP = ("x", "h", "j", "d")


# -- events: what the app must do -------------------------------------------------------------
@dataclass(frozen=True)
class RankAnswer:
    """`order`: candidate indices best first; each beats every candidate not in it; the rest
    are indistinguishable (an empty order: all candidates are equally good)."""

    order: tuple[int, ...]
    rest_equal: bool = True


@dataclass(frozen=True)
class PairAnswer:
    a: int
    b: int
    answer: str  # "a", "b", "tie" or "cant_tell"


@dataclass(frozen=True)
class Skip:
    """No answer for this query; show the next one."""


@dataclass(frozen=True)
class Quit:
    """End the session (answers are already stored)."""


@dataclass(frozen=True)
class UndoStored:
    """Undo the last stored answer (nothing is in progress on this query)."""


@dataclass(frozen=True)
class Execute:
    """Execute candidate `index` (None: the app picks the demonstration or the top-scored one);
    `reason` says how it was chosen."""

    index: int | None
    reason: str


@dataclass(frozen=True)
class Home:
    """Move the arm to its home configuration."""


@dataclass(frozen=True)
class Jog:
    """Move the end effector by `delta_m` (base frame, metres)."""

    delta_m: tuple[float, float, float]


@dataclass(frozen=True)
class Demonstrate:
    """A pick -> place demonstrated by camera pixels; None = use the last two window clicks."""

    pick_uv: tuple[float, float] | None
    place_uv: tuple[float, float] | None
    yaw: float = 0.0  # radians


Event = Union[RankAnswer, PairAnswer, Skip, Quit, UndoStored, Execute, Home, Jog, Demonstrate]
ANSWERS = (RankAnswer, PairAnswer, Skip, Quit)  # events that end the current query


@dataclass
class Step:
    """Result of one input: events to carry out (in order) and a message (error or feedback)."""

    events: list[Event] = field(default_factory=list)
    message: str = ""
    error: bool = False


class InputError(ValueError):
    """An input the session rejects; the message says what was wrong and what would work."""


class RankingSession:
    """Per-query input state: feed lines with `feed`, start each query with `new_query`."""

    def __init__(self, mode: str = RANK, jog_max_cm: float = 10.0):
        if mode not in (RANK, PAIRWISE):
            raise ValueError(f"mode must be '{RANK}' or '{PAIRWISE}', got '{mode}'")
        self.mode = mode
        self.jog_max_cm = float(jog_max_cm)
        self.n = 0
        self.pair: tuple[int, int] | None = None
        self.image_size: tuple[int, int] | None = None
        self.picks: list[int] = []
        self.done = True

    def new_query(self, n: int, pair: tuple[int, int] | None = None,
                  image_size: tuple[int, int] | None = None) -> None:
        """Start a query of `n` candidates (pairwise: the two compared); image_size (w, h)
        bounds demonstration pixels."""
        if n < 1:
            raise ValueError(f"a query needs candidates, got n={n}")
        if self.mode == PAIRWISE:
            if pair is None or len(set(pair)) != 2 or not all(0 <= i < n for i in pair):
                raise ValueError(f"pairwise queries need two different candidates in 0-{n - 1}, got {pair}")
            pair = (int(pair[0]), int(pair[1]))
        self.n, self.pair, self.image_size = int(n), pair, image_size
        self.picks = []
        self.done = False

    def reopen(self) -> None:
        """Take input for the same query again, from scratch (its answer could not be stored)."""
        if self.n:
            self.picks = []
            self.done = False

    @property
    def chosen(self) -> int | None:
        """The candidate the labeller has chosen so far (rank mode: the first pick)."""
        return self.picks[0] if self.picks else None

    # -- input ----------------------------------------------------------------------------
    def feed(self, line: str) -> Step:
        """Handle one input line (one key, several rank keys, or one teleop command).

        A line is applied as a whole or not at all: on an invalid key nothing changes and the
        message says why.
        """
        if self.done:
            return Step(message="no query on screen (waiting for the next one)", error=True)
        tokens = line.strip().split()
        try:
            if tokens and tokens[0].lower() in TELEOP:
                return Step([self._teleop(tokens)])
            if tokens and tokens[0].lower() in ("help", "?" if self.mode == RANK else "help"):
                return Step(message=self.help())
            if self.mode == RANK:
                return self._rank(tokens)
            return self._pairwise(tokens)
        except InputError as exc:
            return Step(message=str(exc), error=True)

    def _rank(self, tokens: list[str]) -> Step:
        if not tokens:
            if not self.picks:
                raise InputError(f"pick the best candidate first ({self._range()}), "
                                 "'=' if all are equally good, or 's' to skip")
            tokens = ["="]
        keys: list[str] = []
        for t in tokens:
            # With at most 9 candidates a run of digits is a run of picks ("315=").
            keys.extend(t if self.n <= 9 and re.fullmatch(r"[1-9]+=?", t) else [t])
        picks = list(self.picks)
        events: list[Event] = []
        notes: list[str] = []
        for k, key in enumerate(keys):
            if events:
                raise InputError(f"nothing may follow the answer ('{' '.join(keys[k:])}' after it)")
            key = key.lower()
            if key.isdigit():
                i = int(key)
                if not 1 <= i <= self.n:
                    raise InputError(f"candidate {i} does not exist ({self._range()})")
                if i - 1 in picks:
                    raise InputError(f"candidate {i} is already ranked #{picks.index(i - 1) + 1}")
                picks.append(i - 1)
                if len(picks) == self.n - 1:  # the last one is necessarily the worst
                    picks.extend(set(range(self.n)) - set(picks))
                    events.append(RankAnswer(tuple(picks)))
            elif key == "=":
                events.append(RankAnswer(tuple(picks)))
            elif key == "u":
                if picks:
                    notes.append(f"undid pick of {picks.pop() + 1}")
                elif k == 0:
                    events.append(UndoStored())
                else:
                    raise InputError("'u' here would undo a stored answer: type it on its own")
            elif key == "s":
                events.append(Skip())
            elif key == "q":
                events.append(Quit())
            else:
                raise InputError(f"unknown key '{key}': {self._keys_hint()}")
        self.picks = picks
        self._end_if_answered(events)
        return Step(events, "; ".join(notes))

    def _pairwise(self, tokens: list[str]) -> Step:
        if len(tokens) != 1:
            raise InputError("answer with one key: " + self._keys_hint())
        key = tokens[0].lower()
        if key in PAIR_KEYS:
            events: list[Event] = [PairAnswer(self.pair[0], self.pair[1], PAIR_KEYS[key])]
        elif key == "u":
            events = [UndoStored()]
        elif key == "s":
            events = [Skip()]
        elif key == "q":
            events = [Quit()]
        else:
            raise InputError(f"unknown key '{key}': {self._keys_hint()}")
        self._end_if_answered(events)
        return Step(events)

    def _end_if_answered(self, events: list[Event]) -> None:
        if any(isinstance(e, ANSWERS) for e in events):
            self.done = True

    def _teleop(self, tokens: list[str]) -> Event:
        cmd, args = tokens[0].lower(), tokens[1:]
        if cmd == "x":
            if len(args) > 1:
                raise InputError("execute takes at most one candidate: 'x' or 'x 3'")
            if args:
                i = self._int(args[0], "candidate")
                if not 1 <= i <= self.n:
                    raise InputError(f"candidate {i} does not exist ({self._range()})")
                return Execute(i - 1, "given")
            if self.chosen is not None:
                return Execute(self.chosen, "first pick")
            return Execute(None, "top")
        if cmd == "h":
            if args:
                raise InputError("home takes no arguments: 'h'")
            return Home()
        if cmd == "j":
            if len(args) != 3:
                raise InputError("jog takes three numbers in cm: 'j <dx> <dy> <dz>', e.g. 'j 0 0 5'")
            delta = [self._float(a, "jog distance") for a in args]
            worst = max(abs(d) for d in delta)
            if worst > self.jog_max_cm:
                raise InputError(f"jog of {worst:g} cm exceeds the {self.jog_max_cm:g} cm limit per command")
            return Jog(tuple(d / 100.0 for d in delta))
        # "d": demonstrate
        if not args:
            return Demonstrate(None, None)
        if len(args) not in (4, 5):
            raise InputError("demonstrate takes pick and place pixels: 'd <u1> <v1> <u2> <v2> [yaw_deg]' "
                             "(camera pixels, see the ruler on the image), or 'd' after two clicks")
        u1, v1, u2, v2 = (self._float(a, "pixel") for a in args[:4])
        yaw = math.radians(self._float(args[4], "yaw")) if len(args) == 5 else 0.0
        for u, v in ((u1, v1), (u2, v2)):
            if self.image_size is not None:
                w, h = self.image_size
                if not (0 <= u <= w - 1 and 0 <= v <= h - 1):
                    raise InputError(f"pixel ({u:g}, {v:g}) is outside the {w}x{h} image")
        return Demonstrate((u1, v1), (u2, v2), yaw)

    # -- text -----------------------------------------------------------------------------
    def _range(self) -> str:
        return f"1-{self.n}"

    @staticmethod
    def _int(text: str, what: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise InputError(f"{what} must be a whole number, got '{text}'") from None

    @staticmethod
    def _float(text: str, what: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"{what} must be a number, got '{text}'") from None
        if not math.isfinite(value):
            raise InputError(f"{what} must be finite, got '{text}'")
        return value

    def _keys_hint(self) -> str:
        if self.mode == RANK:
            return f"{self._range()} pick best remaining, '=' rest equal, u undo, s skip, q quit, help"
        return "a, b, t (tie), ? (can't tell), u undo, s skip, q quit"

    def prompt(self) -> str:
        """The one-line prompt for the current state."""
        if self.done:
            return "(waiting for the next query)"
        if self.mode == RANK:
            picked = " > ".join(str(i + 1) for i in self.picks)
            head = f"best remaining? [{self._range()}]" + (f"  ranked: {picked}" if picked else "")
            return f"{head}  (= or Enter: rest equal | u undo | s skip | q quit | x h j d teleop | ? help)"
        a, b = self.pair
        return (f"A = candidate {a + 1}, B = candidate {b + 1}: better? "
                "[a | b | t tie | ? can't tell]  (u undo | s skip | q quit | x h j d teleop)")

    def help(self) -> str:
        """All keys and commands, one per line."""
        lines = []
        if self.mode == RANK:
            lines += [f"  1-{self.n}        pick the best remaining candidate (several at once: '3 1 5' or '315')",
                      "  = or Enter   the rest are indistinguishable: store the ranking",
                      "  u            undo the last pick (none: undo the last stored answer)"]
        else:
            lines += ["  a / b        A or B is better", "  t            tie: equally good",
                      "  ?            can't tell", "  u            undo the last stored answer"]
        lines += ["  s            skip this query", "  q            quit (answers are already stored)",
                  "  x [i]        execute candidate i (default: your first pick, else the top-scored)",
                  "  h            home the arm",
                  f"  j dx dy dz   jog the end effector (cm, base frame, at most {self.jog_max_cm:g} per axis)",
                  "  d u1 v1 u2 v2 [yaw_deg]  demonstrate pick (u1, v1) -> place (u2, v2) in camera pixels"]
        return "\n".join(lines)
