"""ProcessTable: the broker's process list kept up to date from one ps and the
state events after it (docs/PROTOCOL.md, "Joining late"), and follow_logs: a
process's output without gap or repeat ("Following logs")."""

import time
from typing import Dict, Iterator, List, Optional

from . import pb
from .client import Client
from .errors import TimeoutError
from .messages import QueryLike, query
from .subscriber import Event, Subscriber, topic

ALL_LINES = 1 << 30  # how_far asking for every line the broker keeps
PROOF_WAIT = 1.0  # seconds: how long the proof that a subscription was live is awaited


class _Resync(Exception):
    pass


class ProcessTable:
    """The processes of a broker (or of one session), as of the last event read.

        table = ProcessTable(client, session="run-7").sync()
        while True:
            for event in table.update(timeout=1):
                print(event.transition, event.name)
            print(format_table(table.values()))

    `processes` maps uuid to ProcessInstance, in boot order. `resyncs` counts the
    times the table was rebuilt from a fresh ps (a lost event, a restarted broker).
    """

    def __init__(self, client: Client, session: Optional[str] = None, subscriber: Optional[Subscriber] = None) -> None:
        self.client = client
        self.session = session
        own = subscriber is None
        self.subscriber = subscriber or Subscriber.from_client(client)
        self._own_subscriber = own
        # Step 1: the state events of what ps will list, then, last, bcast/.
        self.subscriber.subscribe(topic("state", session) if session is not None else "state/")
        self.subscriber.subscribe("bcast/")
        self.processes: Dict[str, "pb.ProcessInstance"] = {}
        self.position: Optional["pb.FeedPosition"] = None
        self.sessions: Dict[str, int] = {}
        self.live = False
        self.resyncs = -1

    def close(self) -> None:
        if self._own_subscriber:
            self.subscriber.close()

    def __enter__(self) -> "ProcessTable":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def values(self) -> List["pb.ProcessInstance"]:
        return list(self.processes.values())

    def _take_ps(self) -> None:
        """Step 2."""
        listed, position = self.client.ps_with_position(session=self.session or "")
        if position is None:
            raise TimeoutError("the broker's ps carries no feed position (not a drunc-zmq broker?)")
        self.processes = {instance.uuid.uuid: instance for instance in listed}
        self.position = position
        self.sessions = dict(position.session_sequences)
        self.live = False
        self.resyncs += 1

    def _apply(self, event: Event) -> bool:
        """Steps 3 and 4: True if the event changed the table."""
        meta = event.meta
        if meta.publisher_id != self.position.publisher_id:
            raise _Resync()
        if meta.sequence < self.position.sequence:
            return False
        if not self.live:
            if event.kind == "bcast" and meta.sequence == self.position.sequence:
                self.live = True
                return False
            raise _Resync()
        if event.kind != "state":
            return False
        instance = event.instance
        session = instance.process_description.metadata.session
        last = self.sessions.get(session, 0)
        if meta.session_sequence > last + 1:
            raise _Resync()
        if meta.session_sequence <= last:
            return False
        self.sessions[session] = meta.session_sequence
        if meta.transition == "flushed":
            self.processes.pop(instance.uuid.uuid, None)
        else:
            self.processes[instance.uuid.uuid] = instance
        return True

    def sync(self, timeout: float = 30.0) -> "ProcessTable":
        """Takes a ps and reads the feed until the subscription is proved live."""
        deadline = time.monotonic() + timeout
        self._take_ps()
        while not self.live:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the event subscription was not proved live within %.0f s" % timeout)
            event = self.subscriber.next(min(PROOF_WAIT, left))
            try:
                if event is None:
                    raise _Resync()
                self._apply(event)
            except _Resync:
                self._take_ps()
        return self

    def update(self, timeout: float = 0.0) -> List[Event]:
        """Applies the events that arrive within `timeout` seconds (0: those
        already there) and returns the state events applied. A gap rebuilds the
        table (a new ps) and returns no events for it."""
        if self.position is None or not self.live:
            self.sync()
        applied = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.subscriber.next(max(0.0, deadline - time.monotonic()))
            if event is None:
                return applied
            try:
                if self._apply(event):
                    applied.append(event)
            except _Resync:
                self.sync()
                applied = []


def follow_logs(client: Client, query_: QueryLike = None, how_far: int = 100, *, idle: Optional[float] = None,
                until_exit: bool = True, subscriber: Optional[Subscriber] = None,
                **fields) -> Iterator["pb.LogLine"]:
    """Yields the last `how_far` lines of the one matched process, then its new
    lines as they come, without gap or repeat (lines fetched again with `logs`
    when the feed lost some). Ends when the process ends (until_exit), or after
    `idle` seconds without a line."""
    matched = client.ps(query(query_, **fields))
    if len(matched) != 1:
        raise ValueError("the query matches %d processes, expected 1" % len(matched))
    metadata = matched[0].process_description.metadata
    uuid = matched[0].uuid.uuid
    own = subscriber is None
    feed = subscriber or Subscriber.from_client(client)
    log_topic = topic("log", metadata.session, metadata.name, uuid)
    feed.subscribe(log_topic)
    feed.subscribe(topic("state", metadata.session, metadata.name, uuid))
    try:
        feed.make_live(client)
        first = client.logs(uuid, how_far)
        yield from first.lines
        cursor = first.cursor
        if cursor is None:
            raise ValueError("the broker's logs answer carries no cursor: cannot follow")

        def fetch_missing(upto: Optional[int]):
            """The lines from the cursor on (up to `upto` at least; None: all the broker has)."""
            nonlocal cursor
            result = client.logs(uuid, ALL_LINES if upto is None else max(1, upto - cursor + 1))
            start = result.cursor - len(result.lines)
            for index, line in enumerate(result.lines):
                if start + index >= cursor:
                    yield line
            cursor = max(cursor, result.cursor)

        now = client.ps(uuid)
        if until_exit and (not now or now[0].status_code == pb.DEAD):
            yield from fetch_missing(None)
            return
        while True:
            event = feed.next(idle)
            if event is None:
                return
            if event.kind == "log" and event.topic == log_topic:
                sequence = event.meta.topic_sequence
                if sequence == cursor:
                    cursor += 1
                    yield event.message
                elif sequence > cursor:
                    yield from fetch_missing(sequence)
            elif event.kind == "state" and until_exit and event.instance.status_code == pb.DEAD:
                yield from fetch_missing(None)
                return
    finally:
        if own:
            feed.close()
