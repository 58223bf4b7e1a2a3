"""The robot_rewards_interfaces definitions (.msg/.srv/.action) for code that runs without ROS.

The ROS 2 package `robot_rewards_interfaces` (top level of the repository, built by colcon with
rosidl) generates the message, service and action classes the nodes use. The same definition
files ship inside this Python package (`interface_definitions`, a link to that folder), and
`register(typestore)` adds them to a rosbags typestore, so bags carry the typed messages and
the conversion tests check the definitions the nodes are built from, all without ROS.

A service `pkg/srv/Name` registers as `pkg/srv/Name_Request` and `pkg/srv/Name_Response`, an
action `pkg/action/Name` as `pkg/action/Name_Goal`, `_Result` and `_Feedback` (rosidl's names
of the parts).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

PACKAGE = "robot_rewards_interfaces"
DEFINITIONS = Path(__file__).resolve().parent / "interface_definitions"
_PARTS = {"msg": ("",), "srv": ("_Request", "_Response"), "action": ("_Goal", "_Result", "_Feedback")}

CANDIDATE_SET = f"{PACKAGE}/msg/CandidateSet"
EXECUTOR_STATUS = f"{PACKAGE}/msg/ExecutorStatus"
TASK_STATUS = f"{PACKAGE}/msg/TaskStatus"
POLICY_STATUS = f"{PACKAGE}/msg/PolicyStatus"
PRIMITIVE = f"{PACKAGE}/msg/Primitive"
MEMBER_SCORES = f"{PACKAGE}/msg/MemberScores"
MODEL_ERROR = f"{PACKAGE}/msg/ModelError"
REJECTED_CANDIDATE = f"{PACKAGE}/msg/RejectedCandidate"
INPUT_STATUS = f"{PACKAGE}/msg/InputStatus"
SCORE_CANDIDATES = f"{PACKAGE}/srv/ScoreCandidates"
EXECUTE_PRIMITIVE = f"{PACKAGE}/action/ExecutePrimitive"


class InterfaceDefinitionError(FileNotFoundError):
    """The interface definition files are missing (a broken install)."""


def _split(text: str, parts: int, where: str) -> list[str]:
    """The `parts` sections of a .srv (2) or .action (3) file, split at lines of '---'."""
    sections: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip() == "---":
            sections.append([])
        else:
            sections[-1].append(line)
    if len(sections) != parts:
        raise InterfaceDefinitionError(f"{where}: expected {parts} sections separated by '---', found {len(sections)}")
    return ["\n".join(s) + "\n" for s in sections]


@lru_cache(maxsize=1)
def definitions() -> dict[str, str]:
    """{'robot_rewards_interfaces/msg/CandidateSet': '.msg text', ...} of every message, service
    part and action part (services and actions split into their parts)."""
    if not DEFINITIONS.is_dir():
        raise InterfaceDefinitionError(f"interface definitions not found at {DEFINITIONS} (robot_rewards_interfaces)")
    out: dict[str, str] = {}
    for kind, suffixes in _PARTS.items():
        for path in sorted((DEFINITIONS / kind).glob(f"*.{kind}")):
            sections = _split(path.read_text(), len(suffixes), str(path)) if kind != "msg" else [path.read_text()]
            for suffix, text in zip(suffixes, sections):
                out[f"{PACKAGE}/{kind}/{path.stem}{suffix}"] = text
    if not out:
        raise InterfaceDefinitionError(f"no .msg/.srv/.action files under {DEFINITIONS}")
    return out


def register(typestore) -> None:
    """Add every robot_rewards_interfaces type to a rosbags `typestore` (idempotent)."""
    from rosbags.typesys import get_types_from_msg  # lazy: only rosbags users pay for the import

    types = {}
    for name, text in definitions().items():
        if name in typestore.fielddefs:
            continue
        # Parsed under a msg name so that unqualified field types (`Primitive`, `MemberScores`)
        # resolve to this package's messages, as rosidl resolves them in a .srv/.action; the
        # one definition is then keyed by the part's own name.
        package, _, stem = name.split("/")
        (definition,) = get_types_from_msg(text, f"{package}/msg/{stem}").values()
        types[name] = definition
    if types:
        typestore.register(types)
