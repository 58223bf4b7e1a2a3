"""rosbag2 reading and writing without ROS (the `rosbags` package), CDR-serialised.

`BagWriter` adds a connection per topic on first use and records transient-local topics
(/tf_static, the goal) with that durability in the bag's QoS metadata, so `ros2 bag play`
republishes them latched. `read_messages` yields (topic, stamp_ns, message) in time order from
sqlite3 or MCAP bags; messages of types the typestore does not know are skipped (counted).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.errors import ReaderError

from robot_rewards.ros.convert_common import rosbags_typestore

LATCHED_TOPICS = ("/tf_static", "/goal")


class BagError(ValueError):
    """A bag that cannot be written (exists) or read (missing, damaged, unknown storage)."""


def _qos(latched: bool):
    zero = QosTime(0, 0)
    return Qos(QosHistory.KEEP_LAST, 1 if latched else 10, QosReliability.RELIABLE,
               QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
               zero, zero, QosLiveliness.AUTOMATIC, zero, False)


class BagWriter:
    """Write messages (rosbags classes, built with ROSBAGS_TYPES) into a new rosbag2 folder."""

    def __init__(self, path: str | os.PathLike, storage: str = "mcap", latched: Iterable[str] = LATCHED_TOPICS):
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} already exists; rosbag2 writes a new folder (choose another out=)")
        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise BagError(f"unknown bag storage '{storage}'; use mcap or sqlite3")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.store = rosbags_typestore()
        self.latched = set(latched)
        self._writer = Writer(self.path, version=9, storage_plugin=plugins[storage])
        self._writer.open()
        self._connections: dict[str, object] = {}
        self.counts: Counter = Counter()

    def write(self, topic: str, msg, stamp_ns: int) -> None:
        """Serialise and write one message with its receive time `stamp_ns`."""
        msgtype = msg.__msgtype__
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=self.store,
                                                     offered_qos_profiles=[_qos(topic in self.latched)])
            self._connections[topic] = connection
        self._writer.write(connection, int(stamp_ns), bytes(self.store.serialize_cdr(msg, msgtype)))
        self.counts[topic] += 1

    def close(self) -> None:
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def bag_topics(path: str | os.PathLike) -> dict[str, tuple[str, int]]:
    """topic -> (message type, message count) of a bag."""
    reader = _reader(path)
    try:
        return {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
    finally:
        reader.close()


def _reader(path):

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"bag not found: {path}")
    try:
        reader = Reader(path)
        reader.open()
    except (ReaderError, FileNotFoundError) as exc:  # e.g. a folder without metadata.yaml
        raise BagError(f"{path} is not a readable rosbag2 (folder with metadata.yaml and a .mcap/.db3): {exc}") from exc
    return reader


def read_messages(path: str | os.PathLike, topics: Iterable[str] | None = None,
                  skipped: Counter | None = None) -> Iterator[tuple[str, int, object]]:
    """(topic, stamp_ns, message) of a bag in time order, deserialised into rosbags classes.

    `topics`: only these topics (None = all; an empty list or topics the bag lacks = none).
    Topics whose type the typestore lacks are skipped and counted in `skipped`.
    """
    store = rosbags_typestore()
    wanted = None if topics is None else set(topics)
    reader = _reader(path)
    try:
        connections = []
        for c in reader.connections:
            if wanted is not None and c.topic not in wanted:
                continue
            if c.msgtype not in store.types:
                if skipped is not None:
                    skipped[f"{c.topic} ({c.msgtype}: unknown type)"] += c.msgcount
                continue
            connections.append(c)
        if not connections and wanted is not None:
            return  # rosbags reads an empty connection list as "every connection"
        for connection, stamp, raw in reader.messages(connections=connections):
            yield connection.topic, int(stamp), store.deserialize_cdr(raw, connection.msgtype)
    finally:
        reader.close()
