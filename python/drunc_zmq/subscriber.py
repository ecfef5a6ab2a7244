"""Subscriber: the broker's event feed (docs/PROTOCOL.md, section 5).

    from drunc_zmq import Client, Subscriber, topic
    pm = Client()
    with Subscriber.from_client(pm, topic("log", "run-7"), topic("state", "run-7")) as feed:
        for event in feed.events(idle=5):
            print(event.topic, event.line or event.transition)

Topics are built with `topic()`, which percent-encodes the fields. Every event
says how many events of its topic were lost just before it (`lost`, from the
topic sequence), and `publisher_changed` when the broker restarted.
"""

import time
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import zmq

from . import pb
from .errors import ProtocolError, TimeoutError
from .security import Certificate, HandshakeMonitor, apply_curve

KINDS = ("log", "state", "bcast")


def encode_field(value: str) -> str:
    """A topic field: "%" as %25 and "/" as %2F, every other byte as it is."""
    return value.replace("%", "%25").replace("/", "%2F")


def decode_field(value: str) -> str:
    return value.replace("%2F", "/").replace("%25", "%")


def topic(kind: str = "", session: Optional[str] = None, name: Optional[str] = None,
          uuid: Optional[str] = None) -> str:
    """A subscription prefix, fields percent-encoded. Each field given ends with
    "/" (so that name "readout-01" does not also match "readout-010"), except a
    uuid, which completes the topic::

        topic()                         -> ""            (everything)
        topic("log")                    -> "log/"
        topic("log", "run-7")           -> "log/run-7/"
        topic("state", "s", "a/b")      -> "state/s/a%2Fb/"
        topic("log", "s", "app", uuid)  -> "log/s/app/UUID"
    """
    if not kind:
        if session is not None or name is not None or uuid is not None:
            raise ValueError("a topic with fields needs a kind")
        return ""
    if kind not in KINDS:
        raise ValueError("kind is one of %s, not %r" % (", ".join(KINDS), kind))
    parts = [kind]
    for field in (session, name):
        if field is None:
            if uuid is not None or (field is session and name is not None):
                raise ValueError("a topic's fields are given in order: session, name, uuid")
            break
        parts.append(encode_field(field))
    text = "/".join(parts) + "/"
    if uuid is not None:
        text += encode_field(uuid)
    return text


def parse_topic(text: str) -> Tuple[str, str, str, Optional[str]]:
    """(kind, session, name, uuid or None) of an event's topic, fields decoded."""
    parts = text.split("/")
    if len(parts) == 4 and parts[0] in ("log", "state"):
        return parts[0], decode_field(parts[1]), decode_field(parts[2]), decode_field(parts[3])
    if len(parts) == 3 and parts[0] == "bcast":
        return parts[0], decode_field(parts[1]), decode_field(parts[2]), None
    raise ProtocolError("not an event topic: %r" % text)


class Event:
    """One event of the feed. `kind` is log, state or bcast; `message` the payload
    decoded (LogLine, ProcessInstance or BroadcastMessage); `meta` the EventMeta.
    `lost` counts the events of this topic lost just before this one (0 normally),
    `publisher_changed` is true for the first event of a restarted broker."""

    __slots__ = ("topic", "kind", "session", "name", "uuid", "payload", "meta", "lost", "publisher_changed",
                 "_message")

    def __init__(self, topic_: str, payload: bytes, meta: "pb.EventMeta", lost: int = 0,
                 publisher_changed: bool = False) -> None:
        self.topic = topic_
        self.kind, self.session, self.name, self.uuid = parse_topic(topic_)
        self.payload = payload
        self.meta = meta
        self.lost = lost
        self.publisher_changed = publisher_changed
        self._message = None

    @property
    def message(self):
        if self._message is None:
            cls = {"log": pb.LogLine, "state": pb.ProcessInstance, "bcast": pb.BroadcastMessage}[self.kind]
            self._message = cls.FromString(self.payload)
        return self._message

    @property
    def line(self) -> Optional[str]:
        """The log line (log events), else None."""
        return self.message.line if self.kind == "log" else None

    @property
    def instance(self) -> Optional["pb.ProcessInstance"]:
        """The process after the transition (state events), else None."""
        return self.message if self.kind == "state" else None

    @property
    def transition(self) -> str:
        """booted, exited, killed, lost, restarted, flushed (state events), else ""."""
        return self.meta.transition

    @property
    def broadcast_type(self) -> Optional[str]:
        """The BroadcastType name (bcast events), else None."""
        return pb.BroadcastType.Name(self.message.type) if self.kind == "bcast" else None

    @property
    def text(self) -> str:
        """A broadcast's PlainText (or "user command" of a CommandNotificationMessage), a log line, else ""."""
        if self.kind == "log":
            return self.message.line
        if self.kind == "bcast":
            data = self.message.data
            if data.Is(pb.PlainText.DESCRIPTOR):
                text = pb.PlainText()
                data.Unpack(text)
                return text.text
            if data.Is(pb.CommandNotificationMessage.DESCRIPTOR):
                note = pb.CommandNotificationMessage()
                data.Unpack(note)
                return "%s %s" % (note.user, note.command)
        return ""

    def __repr__(self) -> str:
        detail = self.transition or self.broadcast_type or (self.line if self.kind == "log" else "")
        return "<Event %s #%d %r>" % (self.topic, self.meta.sequence, detail)


class EventDecoder:
    """Decodes events and keeps the topic sequences: `lost` on each event, and
    in total, counts the events a topic's sequence skipped (meaningful for
    topics subscribed to without interruption)."""

    def __init__(self) -> None:
        self.publisher_id: Optional[int] = None
        self.topic_sequences: Dict[str, int] = {}
        self.lost = 0

    def decode(self, frames: List[bytes]) -> Event:
        if len(frames) != 3:
            raise ProtocolError("an event of %d frames, expected [topic][payload][EventMeta]" % len(frames))
        meta = pb.EventMeta.FromString(frames[2])
        changed = self.publisher_id is not None and meta.publisher_id != self.publisher_id
        if changed or self.publisher_id is None:
            self.publisher_id = meta.publisher_id
            self.topic_sequences.clear()
        name = frames[0].decode("utf-8", "replace")
        last = self.topic_sequences.get(name)
        lost = 0 if last is None else max(0, meta.topic_sequence - last - 1)
        self.lost += lost
        self.topic_sequences[name] = meta.topic_sequence
        return Event(name, frames[1], meta, lost, changed)


class Subscriber:
    """A SUB socket on the event feed.

    address: the events endpoint (see Client.event_feed(), or from_client()).
    prefixes: subscriptions to make at once (see topic()).
    certificate, server_key: CURVE keys, as for Client.
    """

    def __init__(self, address: str, *prefixes: str, certificate: Certificate = None,
                 server_key: Union[str, bytes, None] = None, context: Optional[zmq.Context] = None,
                 high_water_mark: Optional[int] = None) -> None:
        self.address = address
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        if high_water_mark is not None:
            self.socket.setsockopt(zmq.RCVHWM, high_water_mark)
        apply_curve(self.socket, certificate, server_key)
        for prefix in prefixes:
            self.subscribe(prefix)
        self.monitor = HandshakeMonitor(self.socket, address)
        self.socket.connect(address)
        self.poller = zmq.Poller()
        self.poller.register(self.socket, zmq.POLLIN)
        self.poller.register(self.monitor.socket, zmq.POLLIN)
        self.decoder = EventDecoder()

    @classmethod
    def from_client(cls, client, *prefixes: str, **options) -> "Subscriber":
        """A subscriber on the feed `client`'s broker describes, with its keys."""
        options.setdefault("certificate", client.certificate)
        options.setdefault("server_key", client.server_key)
        options.setdefault("context", client.context)
        return cls(client.event_feed().address, *prefixes, **options)

    def subscribe(self, prefix: str) -> None:
        self.socket.setsockopt(zmq.SUBSCRIBE, prefix.encode())

    def unsubscribe(self, prefix: str) -> None:
        self.socket.setsockopt(zmq.UNSUBSCRIBE, prefix.encode())

    def close(self) -> None:
        if not self.socket.closed:
            self.monitor.close(self.socket)
            self.socket.close(linger=0)

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, or None if none comes within `timeout` seconds (None:
        wait for ever). Raises HandshakeError if the broker refused the key."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.monitor.read()
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = dict(self.poller.poll(None if left is None else left * 1000))
            if self.socket in ready:
                return self._read()
            if deadline is not None and time.monotonic() >= deadline:
                self.monitor.read()
                return None

    def _read(self) -> Event:
        return self.decoder.decode(self.socket.recv_multipart())

    @property
    def lost(self) -> int:
        """Events lost so far, over all topics, as the topic sequences show."""
        return self.decoder.lost

    @property
    def publisher_id(self) -> Optional[int]:
        return self.decoder.publisher_id

    def events(self, timeout: Optional[float] = None, idle: Optional[float] = None) -> Iterator[Event]:
        """Yields events until `timeout` seconds have passed in all, or `idle`
        seconds without one (each None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            waits = [w for w in (idle, None if deadline is None else deadline - time.monotonic()) if w is not None]
            event = self.next(min(waits) if waits else None)
            if event is None:
                return
            yield event

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10.0, what: str = "event") -> Event:
        """The first event that satisfies predicate; TimeoutError after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.0, deadline - time.monotonic()))
            if event is None:
                raise TimeoutError("no %s on %s within %.1f s" % (what, self.address, timeout))
            if predicate(event):
                return event

    def make_live(self, client, timeout: float = 30.0) -> List[Event]:
        """Makes sure the subscriptions made so far are live (ZeroMQ subscriptions
        take a moment to reach the broker): subscribes to bcast/, last, sends
        describe until one of its broadcasts arrives, then unsubscribes from
        bcast/ (docs/PROTOCOL.md, "Following logs"). Returns the events read
        meanwhile that are not broadcasts."""
        self.subscribe("bcast/")
        other = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                client.describe()
                attempt = min(deadline, time.monotonic() + 0.5)
                while True:
                    event = self.next(max(0.0, attempt - time.monotonic()))
                    if event is None:
                        break
                    if event.kind == "bcast":
                        return other
                    other.append(event)
            raise TimeoutError("the subscription to %s was not live within %.0f s" % (self.address, timeout))
        finally:
            self.unsubscribe("bcast/")
