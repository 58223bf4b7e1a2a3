"""One decision path: sample N candidates -> score -> aggregate -> feasibility -> `Decision`.

The sim loop, label collection, the console, policy evaluation and the ROS policy node all
decide through a `Decider`, so one scene's decision k shows the same N candidates, ranked and
checked the same way, wherever it is made.

Methods (`METHODS`):

- first: the policy's own order (candidate 0 first; no scoring). Without a checker candidate 0
  is taken as it is: the plain policy rollout.
- random: one candidate drawn uniformly, then the others in index order.
- best_of_n: by descending utility; utilities from reward families (`scorers`, each scoring
  the N candidates as a `ScoreSet`, aggregated and combined by `best_of_n.utilities`) or from a
  `utility` function (sim-only reference lines such as what-if rollouts, bound to a simulator
  by the caller).

With a `FeasibilityChecker` the ranking is walked until a candidate passes (workspace, table,
IK from `q_start`); if none does the Decision has `chosen` None and the caller must not move
the arm. FK steering (`selection.fk_steering`) is not a method here: it changes how the
candidates are sampled, and only the selection benchmark uses it today.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import numpy as np

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation
from robot_rewards.core.primitives import Primitive
from robot_rewards.rewards.aggregate import AGGREGATORS
from robot_rewards.rewards.base import ScoreSet
from robot_rewards.selection.best_of_n import SelectionError, check_weights, rank, utilities
from robot_rewards.selection.feasibility import FeasibilityChecker, select, summary_line

METHODS = ("first", "random", "best_of_n")
# Candidate seeds of decision k of episode e are e * SEED_STRIDE + k (the sim loop's rule since
# its first results; the shipped experiment numbers were measured with it).
SEED_STRIDE = 100
# Spawn key of the random method's generator, keyed with (random_seed, episode, decision) so a
# decision draws the same whichever worker runs it and whatever ran before it.
RANDOM_STREAM = 1201

UtilityFn = Callable[[Observation, Candidates], np.ndarray]  # (obs, N candidates) -> (N,) utilities


def decision_seed(episode_seed: int, decision: int) -> int:
    """The candidate-sampling seed of decision `decision` (0-based) of episode `episode_seed`:
    episode_seed * 100 + decision. Every caller that samples per decision uses this rule."""
    e, d = _integer("episode seed", episode_seed), _integer("decision index", decision)
    if d < 0:
        raise SelectionError(f"decision index must be >= 0, got {d}")
    return e * SEED_STRIDE + d


def _integer(what: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SelectionError(f"{what} must be an integer, got {value!r}")
    return int(value)


@dataclass(frozen=True, eq=False)
class Decision:
    """What one decision saw and chose (plain data).

    candidates: the N sampled candidates; scores: reward family -> ScoreSet (None unless scored
    by families); utilities: (N,) the ranking came from (None for first / random); ranking: the
    order the candidates were tried in; rejected: (index, reason) of every candidate tried and
    refused, in that order; chosen: the candidate to execute, None when nothing is feasible (the
    caller stops). seed: the candidate-sampling seed (`decision_seed(episode_seed, decision)`).
    sample_s, score_s, check_s: seconds spent sampling, scoring + aggregating, walking the ranking.
    """

    candidates: Candidates
    scores: Mapping[str, ScoreSet] | None
    utilities: np.ndarray | None
    ranking: tuple[int, ...]
    rejected: tuple[tuple[int, str], ...]
    chosen: int | None
    seed: int
    episode_seed: int = 0
    decision: int = 0
    method: str = "first"
    sample_s: float = 0.0
    score_s: float = 0.0
    check_s: float = 0.0

    @property
    def feasible(self) -> bool:
        """Whether a candidate was chosen (False: the caller must not move the arm)."""
        return self.chosen is not None

    @property
    def select_s(self) -> float:
        """Seconds from the sampled candidates to the choice (scoring + feasibility walk)."""
        return self.score_s + self.check_s

    def primitive(self) -> Primitive:
        """The chosen candidate as a Primitive (SelectionError when nothing is feasible)."""
        if self.chosen is None:
            raise SelectionError(f"no feasible candidate among {len(self.candidates)}: nothing to execute")
        return self.candidates.primitive(self.chosen)

    def summary(self) -> str:
        """One line (plus one per rejection) for logs."""
        return summary_line(self.chosen, self.ranking, self.rejected, self.utilities)


class Decider:
    """Samples N candidates from `policy`, ranks them by `method`, walks the ranking through
    `checker` and returns the `Decision`.

    policy: anything with `sample(obs, n, seed=..., steps=...) -> Candidates` (None: candidates
        are always given to `choose`). scorers: reward family name -> ActionScorer; utility: a
        utility function instead (one or the other, for best_of_n). weights: family -> weight
        (default 1.0 for each scorer); missing_weight: the weight of a scored family that
        `weights` does not name (None: an error), and with it weights of families that were not
        scored are ignored, so a failing reward model does not block a decision.
    aggregator / lam: ensemble aggregation (`rewards.aggregate`); checker: feasibility checks
        (None: the top of the ranking is taken as it is); random_seed: the random method's seed;
        steps: denoising steps (None: the policy's).
    """

    def __init__(self, policy: Any = None, scorers: Mapping[str, Any] | None = None, *,
                 utility: UtilityFn | None = None, weights: Mapping[str, float] | None = None,
                 aggregator: str = "mean", lam: float = 1.0, checker: FeasibilityChecker | None = None,
                 n_candidates: int = 8, method: str = "best_of_n", random_seed: int = 0,
                 steps: int | None = None, missing_weight: float | None = None):
        if method not in METHODS:
            raise SelectionError(f"unknown selection method '{method}'; use one of {METHODS}")
        if isinstance(n_candidates, bool) or not isinstance(n_candidates, (int, np.integer)) or n_candidates < 1:
            raise SelectionError(f"n_candidates must be an integer >= 1, got {n_candidates!r}")
        if aggregator not in AGGREGATORS:
            raise SelectionError(f"unknown aggregator '{aggregator}'; use one of {AGGREGATORS}")
        if scorers is not None and not isinstance(scorers, Mapping):
            raise SelectionError("scorers must map reward family names to scorers, e.g. {'preference': scorer}")
        if scorers is not None and utility is not None:
            raise SelectionError("give scorers or a utility function, not both")
        if method != "best_of_n" and (scorers or utility is not None):
            raise SelectionError(f"method '{method}' does not score candidates; scorers and utility are "
                                 "for best_of_n")
        if missing_weight is not None and not missing_weight >= 0:
            raise SelectionError(f"missing_weight must be >= 0 (or None), got {missing_weight}")
        self.policy = policy
        self.scorers = dict(scorers or {})
        self.utility = utility
        if weights is None:
            weights = {name: 1.0 for name in self.scorers}
        self.weights = dict(check_weights(weights)) if weights else {}
        self.aggregator, self.lam = aggregator, float(lam)
        self.checker = checker
        self.n_candidates = int(n_candidates)
        self.method = method
        self.random_seed = int(random_seed)
        self.steps = steps
        self.missing_weight = None if missing_weight is None else float(missing_weight)

    # -- the parts -------------------------------------------------------------------------
    def sample(self, obs: Observation, episode_seed: int, decision: int = 0) -> Candidates:
        """The policy's N candidates for decision `decision` of episode `episode_seed`."""
        if self.policy is None:
            raise SelectionError("this Decider has no policy to sample from; give the candidates to choose()")
        seed = decision_seed(episode_seed, decision)
        kwargs = {} if self.steps is None else {"steps": self.steps}
        return self.policy.sample(obs, self.n_candidates, seed=seed, **kwargs)

    def score(self, obs: Observation, candidates: Candidates) -> dict[str, ScoreSet] | None:
        """Every reward family's scores of the candidates (None without scorers)."""
        if not self.scorers:
            return None
        return {name: scorer.score(obs, candidates) for name, scorer in self.scorers.items()}

    def utilities(self, scores: Mapping[str, ScoreSet], n: int) -> np.ndarray:
        """(N,) utilities of the scored families (all 0 with none scored: the policy's order)."""
        if not scores:
            return np.zeros(n)
        weights = self.weights
        if self.missing_weight is not None:
            weights = {name: self.weights.get(name, self.missing_weight) for name in scores}
        return np.asarray(utilities(dict(scores), weights, self.aggregator, self.lam), dtype=np.float64)

    def order(self, n: int, u: np.ndarray | None, episode_seed: int = 0, decision: int = 0,
              rng: np.random.Generator | None = None) -> list[int]:
        """The order in which the candidates are tried (rng: the random method's generator
        instead of the one keyed by (random_seed, episode_seed, decision))."""
        if self.method == "first":
            return list(range(n))
        if self.method == "random":
            if rng is None:
                rng = np.random.default_rng([self.random_seed, RANDOM_STREAM, int(episode_seed), int(decision)])
            pick = int(rng.integers(n))
            return [pick] + [i for i in range(n) if i != pick]
        if u is None:
            raise SelectionError("method 'best_of_n' needs utilities (scores, scorers or a utility function)")
        return rank(u)

    def choose(self, candidates: Candidates, scores: Mapping[str, ScoreSet] | None = None,
               utilities_: np.ndarray | None = None, q_start=None, episode_seed: int = 0, decision: int = 0,
               rng: np.random.Generator | None = None) -> Decision:
        """The Decision for candidates sampled (and possibly scored) elsewhere.

        best_of_n ranks by `utilities_` if given, else by the families in `scores` (none: the
        policy's order). The ranking is walked through the checker from joints `q_start`."""
        seed = decision_seed(episode_seed, decision)
        n = len(candidates)
        if n == 0:
            raise SelectionError("no candidates to choose from")
        t0 = time.perf_counter()
        u = None
        if self.method == "best_of_n":
            if utilities_ is not None:
                if isinstance(utilities_, ScoreSet):
                    raise SelectionError("utilities must be (N,) numbers, got a ScoreSet; pass it as scores")
                u = np.asarray(utilities_, dtype=np.float64).reshape(-1)
                if u.shape != (n,):
                    raise SelectionError(f"{u.size} utilities for {n} candidates")
            else:
                u = self.utilities(scores or {}, n)
        order = self.order(n, u, episode_seed, decision, rng)
        walk = select(candidates, np.zeros(n) if u is None else u, self.checker, q_start, order=order)
        return Decision(candidates, None if scores is None else dict(scores), u, tuple(walk.order),
                        tuple((int(i), str(r)) for i, r in walk.rejected),
                        None if walk.index is None else int(walk.index), seed,
                        int(episode_seed), int(decision), self.method, check_s=time.perf_counter() - t0)

    def evaluate(self, obs: Observation, candidates: Candidates) -> tuple[dict[str, ScoreSet] | None,
                                                                          np.ndarray | None]:
        """(scores by family, (N,) utilities) that best_of_n ranks by; (None, None) for first /
        random, which score nothing. Utilities come from the utility function if there is one."""
        if self.method != "best_of_n":
            return None, None
        if self.utility is not None:
            out = self.utility(obs, candidates)
            if isinstance(out, ScoreSet):
                raise SelectionError("the utility function returned a ScoreSet; use scorers for reward "
                                     "families, or return (N,) utilities")
            return None, np.atleast_1d(np.asarray(out, dtype=np.float64))
        self._check_scorable()
        scores = self.score(obs, candidates)
        return scores, self.utilities(scores, len(candidates))

    def _check_scorable(self) -> None:
        if not self.scorers and self.utility is None:
            raise SelectionError("method 'best_of_n' needs scorers or a utility function to decide; "
                                 "or score elsewhere and call choose()")

    # -- the whole path --------------------------------------------------------------------
    def decide(self, obs: Observation, episode_seed: int, decision: int = 0, q_start=None,
               rng: np.random.Generator | None = None) -> Decision:
        """Sample, score, rank and check one decision (see the class and `choose`)."""
        if self.method == "best_of_n":
            self._check_scorable()  # before sampling: the error comes at once
        t0 = time.perf_counter()
        candidates = self.sample(obs, episode_seed, decision)
        t1 = time.perf_counter()
        scores, u = self.evaluate(obs, candidates)
        t2 = time.perf_counter()
        d = self.choose(candidates, scores, u, q_start, episode_seed, decision, rng)
        return replace(d, sample_s=t1 - t0, score_s=t2 - t1)
