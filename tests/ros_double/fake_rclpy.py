"""A deterministic in-process double of the rclpy API surface the nodes use.

Mirrors rclpy's names and signatures: rclpy.init/shutdown/ok/spin/spin_once, Node (parameters
with descriptors and static typing, publishers, subscriptions, timers, services, clients,
loggers, clock), rclpy.action (ActionServer/ActionClient, GoalResponse, CancelResponse, goal
handles), rclpy.task.Future (awaitable), rclpy.qos profiles and their compatibility rules.

Behaviour that matters for the nodes, as in ROS 2:
- messages are delivered asynchronously (queued; run by spin) and as copies;
- a RELIABLE subscription does not receive from a BEST_EFFORT publisher, nor a TRANSIENT_LOCAL
  subscription from a VOLATILE publisher (recorded in `Context.incompatible`);
- TRANSIENT_LOCAL publishers replay their last `depth` messages to late TRANSIENT_LOCAL subscribers;
- publish checks the message type; a topic with two types is an error;
- parameters are statically typed from their default (an empty list is a byte array), unless
  the descriptor allows dynamic typing; wrong-typed overrides raise InvalidParameterTypeException;
- async execute callbacks of action servers run as tasks that may await Futures.

- an exception raised by a subscription, timer, service or goal/cancel callback propagates out
  of spin/spin_once/Context.advance (rclpy's executor re-raises it: the node ends), except in
  an action's execute callback, which rclpy logs and aborts;
- loggers remember the severity, name and filters of each call site (RcutilsLogger).

Time is simulated: `Context.advance(dt)` and spin_once(timeout_sec) move the clock and fire
timers; no test waits on wall-clock time except for threads the code under test starts.
"""

from __future__ import annotations

import copy
import enum
import logging
import sys
import threading
import time
import types as pytypes
import uuid
from collections import deque
from typing import Any

from . import messages

_log = logging.getLogger("ros_double")


# -- context ------------------------------------------------------------------------------------


class Context:
    """The 'ROS graph' of one rclpy.init(): nodes, endpoints, the work queue and the clock."""

    def __init__(self, start_ns: int = 1_700_000_000 * 10**9):
        self.now_ns = start_ns
        self.ok = True
        self.nodes: list[Node] = []
        self.subscriptions: dict[str, list[Subscription]] = {}
        self.publishers: dict[str, list[Publisher]] = {}
        self.topic_types: dict[str, type] = {}
        self.services: dict[str, Service] = {}
        self.action_servers: dict[str, ActionServer] = {}
        self.timers: list[Timer] = []
        self.tasks: list[Task] = []
        self.logs: list[tuple[str, str, str]] = []  # (node, level, message)
        self.incompatible: list[str] = []
        self.spin_limit: int | None = None  # rclpy.spin stops (ExternalShutdown) after this many steps
        self.cli_parameters: dict = {}  # from rclpy.init(args=[..., '--ros-args', '-p', 'x:=1'])
        self._queue: deque = deque()
        self._lock = threading.Lock()

    # work queue (thread-safe: code under test may publish from worker threads)
    def enqueue(self, fn, *args) -> None:
        with self._lock:
            self._queue.append((fn, args))

    def _pop(self):
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def step_tasks(self) -> bool:
        progressed = False
        for task in list(self.tasks):
            if task.done():
                self.tasks.remove(task)
                continue
            progressed |= task.step()
            if task.done():
                self.tasks.remove(task)
        return progressed

    def run_one(self) -> bool:
        """Run one queued callback (then let waiting tasks advance); False when idle."""
        item = self._pop()
        if item is not None:
            fn, args = item
            fn(*args)
            self.step_tasks()
            return True
        return self.step_tasks()

    def drain(self, max_items: int = 100_000) -> int:
        """Run queued work until the queue is empty (no time passes)."""
        n = 0
        while n < max_items and self.run_one():
            n += 1
        return n

    def next_timer_ns(self) -> int | None:
        due = [t.next_ns for t in self.timers if not t.canceled]
        return min(due) if due else None

    def advance(self, dt: float) -> None:
        """Move the clock by dt seconds, firing due timers in time order and draining work."""
        end = self.now_ns + int(round(dt * 1e9))
        while True:
            self.drain()
            nxt = self.next_timer_ns()
            if nxt is None or nxt > end:
                break
            self.now_ns = max(self.now_ns, nxt)
            for timer in [t for t in self.timers if not t.canceled and t.next_ns <= self.now_ns]:
                timer.next_ns += timer.timer_period_ns
                timer.group.run(timer.callback)
        self.now_ns = end
        self.drain()

    def run_until(self, predicate, timeout: float = 30.0, dt: float = 0.01, wall_timeout: float = 60.0) -> bool:
        """Advance simulated time in steps of dt until predicate() (at most `timeout` simulated
        seconds); also waits briefly in wall time for worker threads of the code under test."""
        start_ns, wall_end = self.now_ns, time.monotonic() + wall_timeout
        while not predicate():
            if (self.now_ns - start_ns) / 1e9 >= timeout or time.monotonic() > wall_end:
                return bool(predicate())
            self.advance(dt)
            if not predicate() and self.pending() == 0:
                time.sleep(0.0005)  # let worker threads (e.g. a reward host) publish
        return True

    def log_lines(self, level: str | None = None, node: str | None = None) -> list[str]:
        return [m for n, lv, m in self.logs if (level is None or lv == level) and (node is None or n == node)]


_default: Context | None = None
# rclpy.spin in contexts created from now on stops after this many steps (tests of main()).
next_spin_limit: int | None = None


def _cli_parameters(args) -> dict:
    """`--ros-args -p name:=value ...` -> {name: value} (values parsed as YAML, like rcl does)."""
    import yaml

    out, args = {}, list(args or [])
    if "--ros-args" not in args:
        return out
    rest = args[args.index("--ros-args") + 1:]
    for flag, value in zip(rest[::2], rest[1::2]):
        if flag in ("-p", "--param"):
            name, _, text = value.partition(":=")
            out[name] = yaml.safe_load(text)
    return out


def _ctx(context: Context | None = None) -> Context:
    ctx = context or _default
    if ctx is None or not ctx.ok:
        raise RuntimeError("rclpy.init() has not been called (or the context was shut down)")
    return ctx


def init(*, args=None, context=None, domain_id=None, signal_handler_options=None) -> None:
    global _default
    if context is not None:
        return
    if _default is not None and _default.ok:
        raise RuntimeError("Context.init() must only be called once")
    _default = Context()
    _default.spin_limit = next_spin_limit
    _default.cli_parameters = _cli_parameters(args)


def shutdown(*, context=None, uninstall_handlers=None) -> None:
    ctx = context or _default
    if ctx is None or not ctx.ok:
        raise RuntimeError("Context must be initialized before it can be shutdown")
    ctx.ok = False


def ok(*, context=None) -> bool:
    ctx = context or _default
    return ctx is not None and ctx.ok


def get_default_context() -> Context | None:
    return _default


class ExternalShutdownException(Exception):
    """Raised by spin when the context was shut down from outside."""


def spin_once(node, *, executor=None, timeout_sec=None) -> None:
    ctx = node.context
    if ctx.run_one():
        return
    if timeout_sec is None or timeout_sec > 0:
        nxt = ctx.next_timer_ns()
        if nxt is not None:
            limit = ctx.now_ns + int((timeout_sec if timeout_sec is not None else 1e9) * 1e9)
            ctx.advance((min(nxt, limit) - ctx.now_ns) / 1e9)


def spin(node, executor=None) -> None:
    ctx = node.context
    steps = 0
    while ctx.ok:
        if ctx.spin_limit is not None and steps >= ctx.spin_limit:
            raise ExternalShutdownException()
        spin_once(node, timeout_sec=1.0)
        steps += 1
    raise ExternalShutdownException()


def spin_until_future_complete(node, future, executor=None, timeout_sec=None) -> None:
    ctx = node.context
    end = None if timeout_sec is None else ctx.now_ns + int(timeout_sec * 1e9)
    while not future.done() and (end is None or ctx.now_ns < end):
        spin_once(node, timeout_sec=0.01)


# -- futures and tasks ----------------------------------------------------------------------------


class Future:
    """rclpy.task.Future: result/exception, done callbacks, and `await future` in coroutines."""

    def __init__(self, *, executor=None):
        self._done = False
        self._result = None
        self._exception = None
        self._callbacks = []
        self._cancelled = False

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        if not self._done:
            self._cancelled = True
            self._set_done()

    def result(self):
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self):
        return self._exception

    def set_result(self, result) -> None:
        self._result = result
        self._set_done()

    def set_exception(self, exception) -> None:
        self._exception = exception
        self._set_done()

    def _set_done(self) -> None:
        self._done = True
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            _schedule(cb, self)

    def add_done_callback(self, callback) -> None:
        if self._done:
            _schedule(callback, self)
        else:
            self._callbacks.append(callback)

    def __await__(self):
        while not self._done:
            yield
        return self.result()


def _schedule(callback, future) -> None:
    ctx = _default
    if ctx is not None and ctx.ok:  # executors run done callbacks as their own work items
        ctx.enqueue(callback, future)
    else:
        callback(future)


class Task(Future):
    """A coroutine stepped by the executor; it is itself a Future of the coroutine's result."""

    def __init__(self, coroutine):
        super().__init__()
        self._coroutine = coroutine

    def step(self) -> bool:
        if self._done:
            return False
        try:
            self._coroutine.send(None)
        except StopIteration as stop:
            self.set_result(stop.value)
            return True
        except Exception as exc:
            self.set_exception(exc)
            _log.error("task raised: %r", exc)
            raise
        return False


def _call(ctx: Context, fn, *args) -> Future:
    """Run fn(*args); a coroutine becomes a Task. Returns a Future of the return value."""
    value = fn(*args)
    if hasattr(value, "send") and hasattr(value, "__await__"):
        task = Task(value)
        ctx.tasks.append(task)
        task.step()
        return task
    fut = Future()
    fut.set_result(value)
    return fut


# -- QoS ----------------------------------------------------------------------------------------


class ReliabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    RELIABLE = 1
    BEST_EFFORT = 2


class DurabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    TRANSIENT_LOCAL = 1
    VOLATILE = 2


class HistoryPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    KEEP_LAST = 1
    KEEP_ALL = 2


class QoSProfile:
    def __init__(self, *, depth: int | None = None, history=HistoryPolicy.KEEP_LAST,
                 reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE, **kwargs):
        if depth is None and history == HistoryPolicy.KEEP_LAST:
            raise ValueError("A QoSProfile with KEEP_LAST history needs a depth")
        self.depth, self.history = depth, history
        self.reliability, self.durability = reliability, durability

    def __repr__(self):
        return f"QoSProfile(depth={self.depth}, {self.reliability.name}, {self.durability.name})"


qos_profile_sensor_data = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
qos_profile_system_default = QoSProfile(depth=10)
qos_profile_services_default = QoSProfile(depth=10)


def _qos(profile) -> QoSProfile:
    if isinstance(profile, int):
        return QoSProfile(depth=profile)
    if not isinstance(profile, QoSProfile):
        raise TypeError(f"qos_profile must be a QoSProfile or a history depth, got {type(profile).__name__}")
    return profile


def _compatible(pub: QoSProfile, sub: QoSProfile) -> str | None:
    if sub.reliability == ReliabilityPolicy.RELIABLE and pub.reliability == ReliabilityPolicy.BEST_EFFORT:
        return "RELIABLE subscription, BEST_EFFORT publisher"
    if sub.durability == DurabilityPolicy.TRANSIENT_LOCAL and pub.durability == DurabilityPolicy.VOLATILE:
        return "TRANSIENT_LOCAL subscription, VOLATILE publisher"
    return None


# -- parameters ---------------------------------------------------------------------------------


class ParameterException(Exception):
    pass


class ParameterNotDeclaredException(ParameterException):
    pass


class ParameterAlreadyDeclaredException(ParameterException):
    pass


class InvalidParameterTypeException(ParameterException):
    def __init__(self, desired_parameter, expected_type):
        super().__init__(f"Trying to set parameter '{desired_parameter.name}' to '{desired_parameter.value}' of "
                         f"type '{desired_parameter.type_.name}', expecting type '{expected_type}'")


class ParameterUninitializedException(ParameterException):
    def __init__(self, name):
        super().__init__(f"The parameter '{name}' is not initialized")


class Parameter:
    """rclpy.parameter.Parameter(name, type_=None, value=None)."""

    class Type(enum.Enum):
        NOT_SET = 0
        BOOL = 1
        INTEGER = 2
        DOUBLE = 3
        STRING = 4
        BYTE_ARRAY = 5
        BOOL_ARRAY = 6
        INTEGER_ARRAY = 7
        DOUBLE_ARRAY = 8
        STRING_ARRAY = 9

        @classmethod
        def from_parameter_value(cls, value):
            if value is None:
                return cls.NOT_SET
            if isinstance(value, bool):
                return cls.BOOL
            if isinstance(value, int):
                return cls.INTEGER
            if isinstance(value, float):
                return cls.DOUBLE
            if isinstance(value, str):
                return cls.STRING
            if isinstance(value, (list, tuple)):
                # As in rclpy: the first `all` that holds wins, so [] is a BYTE_ARRAY.
                if all(isinstance(v, bytes) for v in value):
                    return cls.BYTE_ARRAY
                if all(isinstance(v, bool) for v in value):
                    return cls.BOOL_ARRAY
                if all(isinstance(v, int) for v in value):
                    return cls.INTEGER_ARRAY
                if all(isinstance(v, float) for v in value):
                    return cls.DOUBLE_ARRAY
                if all(isinstance(v, str) for v in value):
                    return cls.STRING_ARRAY
            raise TypeError(f"The given value is not one of the allowed types '{value!r}'")

        def check(self, value) -> bool:
            if self == Parameter.Type.NOT_SET:
                return value is None
            try:
                return Parameter.Type.from_parameter_value(value) == self or (
                    isinstance(value, (list, tuple)) and not value and self.name.endswith("_ARRAY"))
            except TypeError:
                return False

    def __init__(self, name, type_=None, value=None):
        if type_ is None:
            type_ = Parameter.Type.from_parameter_value(value)
        if not type_.check(value) and value is not None:
            raise ValueError(f"Type '{type_}' and value '{value}' do not agree")
        self._name, self._type, self._value = name, type_, value

    name = property(lambda self: self._name)
    type_ = property(lambda self: self._type)
    value = property(lambda self: self._value)

    def get_parameter_value(self):
        ParameterValue = messages.message_class("rcl_interfaces/msg/ParameterValue")
        t, v = self._type, self._value
        field = {1: "bool_value", 2: "integer_value", 3: "double_value", 4: "string_value",
                 5: "byte_array_value", 6: "bool_array_value", 7: "integer_array_value",
                 8: "double_array_value", 9: "string_array_value"}.get(t.value)
        kwargs = {"type": t.value}
        if field is not None and v is not None:
            kwargs[field] = list(v) if isinstance(v, tuple) else v
        return ParameterValue(**kwargs)


def _from_parameter_value_msg(msg):
    t = Parameter.Type(msg.type)
    field = {1: "bool_value", 2: "integer_value", 3: "double_value", 4: "string_value",
             5: "byte_array_value", 6: "bool_array_value", 7: "integer_array_value",
             8: "double_array_value", 9: "string_array_value"}.get(t.value)
    value = None if field is None else getattr(msg, field)
    if t.name.endswith("_ARRAY"):
        value = list(value)
    return t, value


# -- endpoints ----------------------------------------------------------------------------------


class Publisher:
    def __init__(self, node, msg_type, topic, qos):
        self.node, self.msg_type, self.topic, self.qos = node, msg_type, topic, qos
        self._history: deque = deque(maxlen=max(1, qos.depth or 1))

    def publish(self, msg) -> None:
        if not isinstance(msg, self.msg_type):
            raise TypeError(f"Expected {self.msg_type}, got {type(msg)}")
        if self.qos.durability == DurabilityPolicy.TRANSIENT_LOCAL:
            self._history.append(copy.deepcopy(msg))
        for sub in list(self.node.context.subscriptions.get(self.topic, [])):
            sub._deliver(self, msg)

    def get_subscription_count(self) -> int:
        return len(self.node.context.subscriptions.get(self.topic, []))

    @property
    def topic_name(self) -> str:
        return self.topic

    def destroy(self) -> None:
        self.node.context.publishers.get(self.topic, []).remove(self)


class Subscription:
    def __init__(self, node, msg_type, topic, callback, qos):
        self.node, self.msg_type, self.topic, self.callback, self.qos = node, msg_type, topic, callback, qos
        self.received = 0

    def _deliver(self, publisher: Publisher, msg) -> None:
        why = _compatible(publisher.qos, self.qos)
        if why is not None:
            note = f"{self.topic}: incompatible QoS ({why}): {self.node.get_name()} gets nothing"
            if note not in self.node.context.incompatible:
                self.node.context.incompatible.append(note)
            return
        self.node.context.enqueue(self._run, copy.deepcopy(msg))

    def _run(self, msg) -> None:
        self.group.run(self._call, msg)

    def _call(self, msg) -> None:
        if self in self.node.context.subscriptions.get(self.topic, []):
            self.received += 1
            self.callback(msg)

    @property
    def topic_name(self) -> str:
        return self.topic


class Timer:
    def __init__(self, context, period_sec, callback, group=None):
        if period_sec <= 0:
            raise ValueError(f"timer period must be positive, got {period_sec}")
        self.timer_period_ns = int(round(period_sec * 1e9))
        self.callback = callback
        self.group = group or ReentrantCallbackGroup()
        self.next_ns = context.now_ns + self.timer_period_ns
        self.canceled = False

    def cancel(self) -> None:
        self.canceled = True

    def is_canceled(self) -> bool:
        return self.canceled

    def reset(self) -> None:
        self.canceled = False


class Service:
    def __init__(self, node, srv_type, name, callback, group=None):
        self.node, self.srv_type, self.srv_name, self.callback = node, srv_type, name, callback
        self.group = group or ReentrantCallbackGroup()

    def _handle(self, request, future: Future) -> None:
        self.group.run(self._serve, request, future)

    def _serve(self, request, future: Future) -> None:
        # rclpy awaits a coroutine callback (executors.await_or_execute): it may await Futures,
        # and the callback's group stays held until it returns
        done = _call(self.node.context, self.callback, request, self.srv_type.Response())
        if isinstance(done, Task) and not done.done() and hasattr(self.group, "hold_until"):
            self.group.hold_until(done)

        def reply(fut) -> None:
            response = fut.result()
            if not isinstance(response, self.srv_type.Response):
                raise TypeError(f"service {self.srv_name} callback returned {type(response)}, not a Response")
            future.set_result(response)

        done.add_done_callback(reply)


class Client:
    def __init__(self, node, srv_type, name):
        self.node, self.srv_type, self.srv_name = node, srv_type, name

    def service_is_ready(self) -> bool:
        return self.srv_name in self.node.context.services

    def wait_for_service(self, timeout_sec=None) -> bool:
        return self.service_is_ready()

    def call_async(self, request) -> Future:
        if not isinstance(request, self.srv_type.Request):
            raise TypeError(f"Request must be instance of {self.srv_type.Request}")
        future = Future()
        service = self.node.context.services.get(self.srv_name)
        if service is None:
            return future  # never completes, as in ROS when nobody serves the name
        self.node.context.enqueue(service._handle, copy.deepcopy(request), future)
        return future


class Time:
    def __init__(self, *, seconds=0, nanoseconds=0, clock_type=None):
        self.nanoseconds = int(seconds * 1e9) + int(nanoseconds)

    def to_msg(self):
        sec, nanosec = divmod(self.nanoseconds, 10**9)
        return messages.message_class("builtin_interfaces/msg/Time")(sec=sec, nanosec=nanosec)

    def seconds_nanoseconds(self):
        return divmod(self.nanoseconds, 10**9)


class Duration:
    def __init__(self, *, seconds=0, nanoseconds=0):
        self.nanoseconds = int(seconds * 1e9) + int(nanoseconds)


class Clock:
    def __init__(self, context):
        self._context = context

    def now(self) -> Time:
        return Time(nanoseconds=self._context.now_ns)


class RcutilsLogger:
    """rclpy's RcutilsLogger as far as it can take a node down.

    rclpy keeps one context per call site (function, file, line and bytecode offset of the code
    that called .info()/.warning()/...; the first frame outside rclpy's logging) holding the
    severity, the logger name and the filters (once, skip_first, throttle_duration_sec) of its
    first call; another severity, name or filter set from the same site raises ValueError
    ("Logger severity cannot be changed between calls."). Disabled severities (debug, at the
    default level INFO) return before any of that. Filters work on the simulated clock.
    """

    _FILTERS = ("once", "skip_first", "throttle_duration_sec", "throttle_time_source_type")
    _ORDER = ("debug", "info", "warning", "error", "fatal")

    def __init__(self, node_name: str, context: Context, level: str = "info"):
        self.name, self._context = node_name, context
        self.level = level
        self._sites: dict[tuple, dict] = {}  # call site -> {severity, name, filters, calls, last}

    def set_level(self, level: str) -> None:
        self.level = level

    def is_enabled_for(self, level: str) -> bool:
        return self._ORDER.index(level) >= self._ORDER.index(self.level)

    def _log(self, level: str, message, **kwargs) -> bool:
        if not self.is_enabled_for(level):
            return False
        name = kwargs.pop("name", self.name)
        unknown = set(kwargs) - set(self._FILTERS)
        if unknown:
            raise TypeError(f"unsupported logging arguments: {sorted(unknown)}")
        caller = sys._getframe(2)
        site = (caller.f_code.co_name, caller.f_code.co_filename, caller.f_lineno, caller.f_lasti)
        context = self._sites.get(site)
        if context is None:
            context = self._sites[site] = {"severity": level, "name": name, "filters": dict(kwargs), "calls": 0,
                                           "last": None}
        elif context["severity"] != level:
            raise ValueError("Logger severity cannot be changed between calls.")
        elif context["name"] != name:
            raise ValueError("Logger name cannot be changed between calls.")
        elif set(context["filters"]) != set(kwargs):
            raise ValueError("Requested logging filters cannot be changed between calls.")
        elif context["filters"] != kwargs:
            raise ValueError("Logging filter parameters cannot be changed between calls.")
        context["calls"] += 1
        if kwargs.get("once") and context["calls"] > 1:
            return False
        if kwargs.get("skip_first") and context["calls"] == 1:
            return False
        period = kwargs.get("throttle_duration_sec")
        if period is not None:
            now = self._context.now_ns
            if context["last"] is not None and now - context["last"] < period * 1e9:
                return False
            context["last"] = now
        if not isinstance(message, str):
            raise TypeError(f"log message must be a str, got {type(message).__name__}")
        self._context.logs.append((self.name, level, message))
        getattr(_log, {"fatal": "critical", "warn": "warning"}.get(level, level))("[%s] %s", self.name, message)
        return True

    def debug(self, message, **kwargs):
        return self._log("debug", message, **kwargs)

    def info(self, message, **kwargs):
        return self._log("info", message, **kwargs)

    def warning(self, message, **kwargs):
        return self._log("warning", message, **kwargs)

    def warn(self, message, **kwargs):
        return self._log("warning", message, **kwargs)

    def error(self, message, **kwargs):
        return self._log("error", message, **kwargs)

    def fatal(self, message, **kwargs):
        return self._log("fatal", message, **kwargs)


# -- node ---------------------------------------------------------------------------------------


class Node:
    """rclpy.node.Node (the parts the project uses), registered in the default Context."""

    def __init__(self, node_name, *, context=None, cli_args=None, namespace=None, use_global_arguments=True,
                 enable_rosout=True, start_parameter_services=True, parameter_overrides=None,
                 allow_undeclared_parameters=False, automatically_declare_parameters_from_overrides=False,
                 **kwargs):
        self.context = _ctx(context)
        self._name = node_name
        self._namespace = namespace or "/"
        cli = [Parameter(k, value=v) for k, v in self.context.cli_parameters.items()]
        self._overrides = {p.name: p for p in [*cli, *(parameter_overrides or [])]}
        self._parameters: dict[str, Parameter] = {}
        self._descriptors: dict[str, Any] = {}
        self._logger = RcutilsLogger(node_name, self.context)
        self._clock = Clock(self.context)
        self._endpoints: list = []
        self.default_callback_group = MutuallyExclusiveCallbackGroup()
        self.context.nodes.append(self)
        if automatically_declare_parameters_from_overrides:
            for p in self._overrides.values():
                self.declare_parameter(p.name, p.value)

    # rclpy.node.Node has these as read-only properties: assigning one raises AttributeError
    @property
    def clients(self):
        return []

    @property
    def services(self):
        return []

    @property
    def publishers(self):
        return []

    @property
    def subscriptions(self):
        return []

    @property
    def timers(self):
        return []

    def get_name(self) -> str:
        return self._name

    def get_namespace(self) -> str:
        return self._namespace

    def get_logger(self) -> RcutilsLogger:
        return self._logger

    def get_clock(self) -> Clock:
        return self._clock

    def resolve(self, name: str) -> str:
        ns = self._namespace.rstrip("/")
        if name.startswith("~"):
            return f"{ns}/{self._name}{name[1:]}"
        if name.startswith("/"):
            return name
        return f"{ns}/{name}"

    # parameters
    def declare_parameter(self, name, value=None, descriptor=None, ignore_override=False):
        if name in self._parameters:
            raise ParameterAlreadyDeclaredException(name)
        Descriptor = messages.message_class("rcl_interfaces/msg/ParameterDescriptor")
        descriptor = descriptor if descriptor is not None else Descriptor()
        if isinstance(value, Parameter.Type):
            type_, value = value, None
        elif type(value).__name__ == "ParameterValue":
            type_, value = _from_parameter_value_msg(value)
        else:
            type_ = Parameter.Type.from_parameter_value(value)
        override = self._overrides.get(name)
        if override is not None and not ignore_override:
            if (not descriptor.dynamic_typing and type_ != Parameter.Type.NOT_SET
                    and override.type_ != type_ and not (type_.name.endswith("_ARRAY") and override.value == [])):
                raise InvalidParameterTypeException(override, type_.name)
            value = override.value
            if descriptor.dynamic_typing:
                type_ = override.type_
        param = Parameter(name, type_, value) if value is not None else _uninitialised(name, type_)
        self._parameters[name] = param
        descriptor.name = name
        self._descriptors[name] = descriptor
        return param

    def declare_parameters(self, namespace, parameters, ignore_override=False):
        out = []
        for item in parameters:
            name = f"{namespace}.{item[0]}" if namespace else item[0]
            out.append(self.declare_parameter(name, *item[1:], ignore_override=ignore_override))
        return out

    def has_parameter(self, name) -> bool:
        return name in self._parameters

    def get_parameter(self, name) -> Parameter:
        if name not in self._parameters:
            raise ParameterNotDeclaredException(name)
        param = self._parameters[name]
        if param.value is None and param.type_ != Parameter.Type.NOT_SET and \
                not self._descriptors[name].dynamic_typing:
            raise ParameterUninitializedException(name)
        return param

    def describe_parameter(self, name):
        if name not in self._descriptors:
            raise ParameterNotDeclaredException(name)
        return self._descriptors[name]

    def add_on_set_parameters_callback(self, callback) -> None:
        pass

    # endpoints
    def create_publisher(self, msg_type, topic, qos_profile, *, callback_group=None, event_callbacks=None, **kw):
        topic = self.resolve(topic)
        self._check_type(topic, msg_type)
        pub = Publisher(self, msg_type, topic, _qos(qos_profile))
        self.context.publishers.setdefault(topic, []).append(pub)
        self._endpoints.append(pub)
        return pub

    def create_subscription(self, msg_type, topic, callback, qos_profile, *, callback_group=None,
                            event_callbacks=None, raw=False, **kw):
        topic = self.resolve(topic)
        self._check_type(topic, msg_type)
        sub = Subscription(self, msg_type, topic, callback, _qos(qos_profile))
        sub.group = callback_group or self.default_callback_group
        self.context.subscriptions.setdefault(topic, []).append(sub)
        self._endpoints.append(sub)
        if sub.qos.durability == DurabilityPolicy.TRANSIENT_LOCAL:
            for pub in self.context.publishers.get(topic, []):
                for msg in list(pub._history):
                    sub._deliver(pub, msg)
        return sub

    def _check_type(self, topic, msg_type) -> None:
        known = self.context.topic_types.setdefault(topic, msg_type)
        if known is not msg_type:
            raise TypeError(f"topic {topic} already carries {known.__name__}; {self._name} uses {msg_type.__name__}")

    def create_timer(self, timer_period_sec, callback, callback_group=None, clock=None, autostart=True):
        timer = Timer(self.context, timer_period_sec, callback, callback_group or self.default_callback_group)
        self.context.timers.append(timer)
        self._endpoints.append(timer)
        return timer

    def create_service(self, srv_type, srv_name, callback, *, qos_profile=None, callback_group=None):
        name = self.resolve(srv_name)
        if name in self.context.services:
            raise RuntimeError(f"service {name} is already served")
        service = Service(self, srv_type, name, callback, callback_group or self.default_callback_group)
        self.context.services[name] = service
        self._endpoints.append(service)
        return service

    def create_client(self, srv_type, srv_name, *, qos_profile=None, callback_group=None):
        return Client(self, srv_type, self.resolve(srv_name))

    # graph queries (rclpy.node.Node.count_publishers / count_subscribers)
    def count_publishers(self, topic_name: str) -> int:
        return len(self.context.publishers.get(self.resolve(topic_name), []))

    def count_subscribers(self, topic_name: str) -> int:
        return len(self.context.subscriptions.get(self.resolve(topic_name), []))

    def count_services(self, service_name: str) -> int:
        return 1 if self.resolve(service_name) in self.context.services else 0

    @property
    def executor(self):
        """rclpy: the executor the node was added to (None before). The double has one queue;
        Futures made with executor=None schedule their callbacks on it all the same."""
        return None

    def destroy_subscription(self, sub) -> bool:
        self.context.subscriptions.get(sub.topic, []).remove(sub)
        return True

    def destroy_timer(self, timer) -> bool:
        timer.cancel()
        return True

    def destroy_node(self) -> None:
        ctx = self.context
        for ep in self._endpoints:
            if isinstance(ep, Subscription) and ep in ctx.subscriptions.get(ep.topic, []):
                ctx.subscriptions[ep.topic].remove(ep)
            elif isinstance(ep, Publisher) and ep in ctx.publishers.get(ep.topic, []):
                ctx.publishers[ep.topic].remove(ep)
            elif isinstance(ep, Timer):
                ep.cancel()
            elif isinstance(ep, Service):
                ctx.services.pop(ep.srv_name, None)
            elif isinstance(ep, ActionServer):
                ctx.action_servers.pop(ep.name, None)
        if self in ctx.nodes:
            ctx.nodes.remove(self)


def _uninitialised(name, type_):
    param = Parameter.__new__(Parameter)
    param._name, param._type, param._value = name, type_, None
    return param


def create_node(node_name, **kwargs) -> Node:
    return Node(node_name, **kwargs)


# -- actions ------------------------------------------------------------------------------------


class GoalResponse(enum.Enum):
    REJECT = 1
    ACCEPT = 2


class CancelResponse(enum.Enum):
    REJECT = 1
    ACCEPT = 2


STATUS_UNKNOWN, STATUS_ACCEPTED, STATUS_EXECUTING, STATUS_CANCELING = 0, 1, 2, 3
STATUS_SUCCEEDED, STATUS_CANCELED, STATUS_ABORTED = 4, 5, 6


class ServerGoalHandle:
    def __init__(self, server, goal_id, request, client_handle):
        self._server, self.goal_id, self.request = server, goal_id, request
        self._client_handle = client_handle
        self.status = STATUS_ACCEPTED

    @property
    def is_active(self) -> bool:
        return self.status in (STATUS_ACCEPTED, STATUS_EXECUTING, STATUS_CANCELING)

    @property
    def is_cancel_requested(self) -> bool:
        return self.status == STATUS_CANCELING

    def execute(self, execute_callback=None) -> None:
        self.status = STATUS_EXECUTING

    def _terminal(self, status: int, allowed: tuple) -> None:
        if self.status not in allowed:
            raise RuntimeError(f"goal cannot go from status {self.status} to {status}")
        self.status = status

    def succeed(self) -> None:
        self._terminal(STATUS_SUCCEEDED, (STATUS_EXECUTING, STATUS_CANCELING))

    def abort(self) -> None:
        self._terminal(STATUS_ABORTED, (STATUS_EXECUTING, STATUS_CANCELING))

    def canceled(self) -> None:
        self._terminal(STATUS_CANCELED, (STATUS_CANCELING,))

    def publish_feedback(self, feedback) -> None:
        if not isinstance(feedback, self._server.action_type.Feedback):
            raise TypeError(f"feedback must be {self._server.action_type.Feedback}")
        cb = self._client_handle._feedback_callback
        if cb is not None:
            msg = messages.FeedbackMessage(self.goal_id, copy.deepcopy(feedback))
            self._server.node.context.enqueue(cb, msg)


class ActionServer:
    """rclpy.action.ActionServer: goal_callback -> (accept) -> execute_callback (sync or async)."""

    def __init__(self, node, action_type, action_name, execute_callback, *, callback_group=None,
                 goal_callback=None, handle_accepted_callback=None, cancel_callback=None, **kwargs):
        self.node, self.action_type = node, action_type
        self.name = node.resolve(action_name)
        self.execute_callback = execute_callback
        self.goal_callback = goal_callback or (lambda goal: GoalResponse.ACCEPT)
        self.cancel_callback = cancel_callback or (lambda handle: CancelResponse.REJECT)
        self.handles: dict[bytes, ServerGoalHandle] = {}
        if self.name in node.context.action_servers:
            raise RuntimeError(f"action {self.name} is already served")
        node.context.action_servers[self.name] = self
        node._endpoints.append(self)

    def _goal(self, request, client_handle, goal_future: Future) -> None:
        response = self.goal_callback(request)
        if not isinstance(response, GoalResponse):
            raise TypeError(f"goal_callback must return a GoalResponse, got {response!r}")
        client_handle.accepted = response == GoalResponse.ACCEPT
        client_handle.status = STATUS_ACCEPTED if client_handle.accepted else STATUS_UNKNOWN
        goal_future.set_result(client_handle)
        if client_handle.accepted:
            handle = ServerGoalHandle(self, client_handle.goal_id, request, client_handle)
            self.handles[client_handle.goal_id] = handle
            self.node.context.enqueue(self._execute, handle, client_handle)

    def _execute(self, handle: ServerGoalHandle, client_handle) -> None:
        handle.execute()
        outcome = _call(self.node.context, self._guarded_execute, handle)
        outcome.add_done_callback(lambda fut: self._finish(handle, client_handle, fut))

    async def _guarded_execute(self, handle: ServerGoalHandle):
        # As rclpy's ActionServer._execute_goal: an exception in the execute callback is logged and
        # answered with an empty (aborted) result; spin goes on. Everywhere else it ends spin.
        try:
            value = self.execute_callback(handle)
            if hasattr(value, "__await__"):
                value = await value
            return value
        except Exception as exc:
            self.node.get_logger().error(f"Error raised in execute callback: {exc}")
            return self.action_type.Result()

    def _finish(self, handle, client_handle, fut) -> None:
        result = fut.result()
        if not isinstance(result, self.action_type.Result):
            raise TypeError(f"execute_callback of {self.name} returned {type(result)}, not a Result")
        if handle.is_active:
            self.node.get_logger().warning("Goal state not set, assuming aborted. Goal ID: "
                                           f"{client_handle.goal_id.hex()}")
            handle.status = STATUS_ABORTED
        client_handle.status = handle.status
        client_handle._result_future.set_result(
            pytypes.SimpleNamespace(result=copy.deepcopy(result), status=handle.status))

    def _cancel(self, goal_id, future: Future) -> None:
        handle = self.handles.get(goal_id)
        accepted = handle is not None and handle.is_active and \
            self.cancel_callback(handle) == CancelResponse.ACCEPT
        if accepted:
            handle.status = STATUS_CANCELING
        future.set_result(pytypes.SimpleNamespace(return_code=0 if accepted else 1,
                                                  goals_canceling=[goal_id] if accepted else []))

    def destroy(self) -> None:
        self.node.context.action_servers.pop(self.name, None)


class ClientGoalHandle:
    def __init__(self, client, goal_id, feedback_callback):
        self._client, self.goal_id = client, goal_id
        self._feedback_callback = feedback_callback
        self.accepted = False
        self.status = STATUS_UNKNOWN
        self._result_future = Future()

    def get_result_async(self) -> Future:
        return self._result_future

    def cancel_goal_async(self) -> Future:
        future = Future()
        server = self._client._server()
        if server is not None:
            self._client.node.context.enqueue(server._cancel, self.goal_id, future)
        return future


class ActionClient:
    def __init__(self, node, action_type, action_name, *, callback_group=None, **kwargs):
        self.node, self.action_type = node, action_type
        self.name = node.resolve(action_name)

    def _server(self):
        server = self.node.context.action_servers.get(self.name)
        if server is not None and server.action_type is not self.action_type:
            raise TypeError(f"action {self.name} is served with another type")
        return server

    def server_is_ready(self) -> bool:
        return self._server() is not None

    def wait_for_server(self, timeout_sec=None) -> bool:
        return self.server_is_ready()

    def send_goal_async(self, goal, feedback_callback=None, goal_uuid=None) -> Future:
        if not isinstance(goal, self.action_type.Goal):
            raise TypeError(f"Expected type {self.action_type.Goal} but received {type(goal)}")
        future = Future()
        handle = ClientGoalHandle(self, uuid.uuid4().bytes, feedback_callback)
        server = self._server()
        if server is not None:  # without a server the goal is never answered, as in ROS
            self.node.context.enqueue(server._goal, copy.deepcopy(goal), handle, future)
        return future

    def destroy(self) -> None:
        pass


# -- executors and callback groups ----------------------------------------------------------------


class SingleThreadedExecutor:
    def __init__(self, *, context=None):
        self._nodes: list[Node] = []

    def add_node(self, node) -> bool:
        self._nodes.append(node)
        return True

    def spin_once(self, timeout_sec=None) -> None:
        if self._nodes:
            spin_once(self._nodes[0], timeout_sec=timeout_sec)

    def spin(self) -> None:
        spin(self._nodes[0])

    def shutdown(self, timeout_sec=None) -> bool:
        return True


class MultiThreadedExecutor(SingleThreadedExecutor):
    def __init__(self, num_threads=None, *, context=None):
        super().__init__()


class ReentrantCallbackGroup:
    """Callbacks of this group run whenever they are due."""

    def run(self, fn, *args) -> None:
        fn(*args)


class MutuallyExclusiveCallbackGroup:
    """One callback at a time (every node's default group). As rclpy's executor holds the group
    until a coroutine callback returns (await included), callbacks that come meanwhile wait."""

    def __init__(self):
        self.held = False
        self.waiting: list = []

    def run(self, fn, *args) -> None:
        if self.held:
            self.waiting.append((fn, args))
        else:
            fn(*args)

    def hold_until(self, future) -> None:
        """Hold the group until `future` (a coroutine callback's Task) is done."""
        self.held = True

        def release(_):
            self.held = False
            waiting, self.waiting = self.waiting, []
            for fn, args in waiting:
                _default.enqueue(self.run, fn, *args)

        future.add_done_callback(release)

