"""Client: requests to a drunc-zmq broker over a DEALER socket (drunc-pm/1).

    from drunc_zmq import Client
    with Client("tcp://127.0.0.1:5555") as pm:
        app = pm.boot("app", ["sleep", "60"], session="s1")
        print(pm.ps(session="s1"))
        pm.kill(app.uuid.uuid)

Every method waits at most `timeout` seconds (the client's default unless
given) and raises TimeoutError then; an error answer raises a ResponseError
subclass carrying the flag and the broker's text. Several requests may be in
flight on one client: `send` returns a Pending at once, and replies are matched
to their request by id, in whatever order they arrive.

A Client is not thread-safe: use one per thread (they are cheap).
"""

import getpass
import itertools
import time
import uuid as uuidlib
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import zmq
from google.protobuf.message import Message

from . import pb
from .errors import ProtocolError, TimeoutError, response_error
from .messages import QueryLike, boot_request, coerce, load_session_file, pack, query, unpack
from .security import Certificate, HandshakeMonitor, apply_curve

SIGNATURE = b"drunc-pm/1"
COMMANDS = ("describe", "boot", "terminate", "restart", "kill", "flush", "ps", "logs")
DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"
DEFAULT_TIMEOUT = 10.0


class Reply(NamedTuple):
    """One reply frame set: the request id, whether more replies follow, the Response."""
    request_id: bytes
    more: bool
    response: "pb.Response"


class LogResult(NamedTuple):
    """The answer to `logs`: its lines (LogLine, oldest first) and the cursor, the
    topic_sequence of the process's next line on the event feed (None if absent)."""
    lines: List["pb.LogLine"]
    cursor: Optional[int]

    @property
    def text(self) -> List[str]:
        return [line.line for line in self.lines]


class Pending:
    """A request in flight. `responses()` waits for all its replies, `response()`
    for the final one, `result()` for its checked, decoded result (what the
    Client method of the same command returns)."""

    def __init__(self, client: "Client", command: str, request_id: bytes) -> None:
        self.client = client
        self.command = command
        self.request_id = request_id
        self.replies: List["pb.Response"] = []
        self.done = False

    def responses(self, timeout: Optional[float] = None) -> List["pb.Response"]:
        self.client._wait(lambda: self.done, timeout, "the answer to " + self.command)
        return self.replies

    def response(self, timeout: Optional[float] = None) -> "pb.Response":
        return self.responses(timeout)[-1]

    def result(self, timeout: Optional[float] = None) -> Any:
        responses = self.responses(timeout)
        final = responses[-1]
        if final.flag != pb.request_response_pb2.EXECUTED_SUCCESSFULLY:
            raise response_error(self.command, final)
        return decode(self.command, responses)

    def __repr__(self) -> str:
        return "<Pending %s id=%r %s>" % (self.command, self.request_id, "done" if self.done else "waiting")


def decode(command: str, responses: Sequence["pb.Response"]) -> Any:
    """The result of a successful command, from its replies (see Client's methods)."""
    final = responses[-1]
    if command == "describe":
        return unpack(final.data, pb.Description)
    if command == "logs":
        lines = [unpack(r.data, pb.LogLine) for r in responses[:-1]]
        cursor = None
        if final.HasField("data") and final.data.Is(pb.LogCursor.DESCRIPTOR):
            cursor = unpack(final.data, pb.LogCursor).next_topic_sequence
        return LogResult(lines, cursor)
    values = list(unpack(final.data, pb.ProcessInstanceList).values)
    if command in ("boot", "restart"):
        if len(values) != 1:
            raise ProtocolError("%s answered %d processes, expected 1" % (command, len(values)))
        return values[0]
    return values


class Client:
    """A connection to a broker's control endpoint.

    address: the control endpoint (``tcp://host:5555``).
    timeout: default seconds to wait for each answer.
    user, token: put in every Request's Token (user defaults to the login name,
        or to "" with CURVE, where the certificate names the user).
    routing_id: this client's ZeroMQ routing id (default: a random one), kept
        across reconnections so that replies owed are still delivered.
    certificate, server_key: for a broker with CURVE security: this client's
        secret certificate (file or (public, secret) pair) and the broker's
        public key (Z85 text or certificate file).
    context: a zmq.Context to use (default: the process-wide instance).
    """

    def __init__(self, address: str = DEFAULT_ADDRESS, *, timeout: float = DEFAULT_TIMEOUT,
                 user: Optional[str] = None, token: str = "", routing_id: Optional[bytes] = None,
                 certificate: Certificate = None, server_key: Union[str, bytes, None] = None,
                 context: Optional[zmq.Context] = None) -> None:
        self.address = address
        self.timeout = timeout
        self.certificate = certificate
        self.server_key = server_key
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.curve = apply_curve(self.socket, certificate, server_key)
        # With CURVE the certificate says who the caller is; a different token user is refused.
        if user is None:
            user = "" if self.curve else getpass.getuser()
        self.token = pb.Token(token=token, user_name=user)
        self.socket.setsockopt(zmq.ROUTING_ID, routing_id or b"py-" + uuidlib.uuid4().hex.encode())
        self.monitor = HandshakeMonitor(self.socket, address)
        self.socket.connect(address)
        self.poller = zmq.Poller()
        self.poller.register(self.socket, zmq.POLLIN)
        self.poller.register(self.monitor.socket, zmq.POLLIN)
        self._ids = itertools.count(1)
        self._pending: Dict[bytes, Pending] = {}
        self.unclaimed: List[Reply] = []  # replies to ids this client did not send (or forgot)
        self._description: Optional["pb.Description"] = None

    # -- lifetime --

    def close(self) -> None:
        """Closes the socket; pending requests are forgotten."""
        if not self.socket.closed:
            self.monitor.close(self.socket)
            self.socket.close(linger=0)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- the wire --

    def send(self, command: str, data: Optional[Message] = None, *, body: Optional[bytes] = None,
             request_id: Optional[bytes] = None, token: Optional["pb.Token"] = None) -> Pending:
        """Sends one request without waiting: `data` is packed into Request.data
        (or `body` is sent as the whole serialized Request). Returns its Pending."""
        if request_id is None:
            request_id = b"%d" % next(self._ids)
        if not 1 <= len(request_id) <= 255:
            raise ValueError("a request id has 1 to 255 bytes")
        if body is None:
            request = pb.Request()
            request.token.CopyFrom(self.token if token is None else coerce(token, pb.Token))
            if data is not None:
                request.data.CopyFrom(pack(data))
            body = request.SerializeToString()
        pending = Pending(self, command, request_id)
        self._pending[request_id] = pending
        self.socket.send_multipart([SIGNATURE, request_id, command.encode(), body])
        return pending

    def request(self, command: str, data: Optional[Message] = None, timeout: Optional[float] = None) -> Any:
        """Sends a request and returns its decoded result (raises on an error answer)."""
        return self.send(command, data).result(timeout)

    def receive(self, timeout: Optional[float] = None) -> Reply:
        """Reads one reply, whichever request it answers, and records it in its
        Pending (raw access, e.g. to watch the order replies arrive in)."""
        return self._read(time.monotonic() + (self.timeout if timeout is None else timeout), "a reply")

    def as_completed(self, pendings: Iterable[Pending], timeout: Optional[float] = None) -> Iterator[Pending]:
        """Yields the given requests as their answers complete."""
        waiting = list(pendings)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while waiting:
            finished = [p for p in waiting if p.done]
            for pending in finished:
                waiting.remove(pending)
                yield pending
            if waiting:
                self._read(deadline, "the answers to %s" % ", ".join(p.command for p in waiting))

    def _wait(self, condition, timeout: Optional[float], what: str) -> None:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not condition():
            self._read(deadline, what)

    def _read(self, deadline: float, what: str) -> Reply:
        while True:
            self.monitor.read()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no %s from %s within the timeout" % (what, self.address))
            ready = dict(self.poller.poll(left * 1000))
            if self.socket in ready:
                break
        frames = self.socket.recv_multipart()
        if frames and frames[0] == b"":
            frames = frames[1:]
        if len(frames) != 4 or frames[0] != SIGNATURE or frames[2] not in (b"more", b"done"):
            raise ProtocolError("not a drunc-pm/1 reply: %r" % frames[:4])
        response = pb.Response()
        response.ParseFromString(frames[3])
        reply = Reply(frames[1], frames[2] == b"more", response)
        pending = self._pending.get(reply.request_id)
        if pending is None:
            self.unclaimed.append(reply)
        else:
            pending.replies.append(response)
            if not reply.more:
                pending.done = True
                del self._pending[reply.request_id]
        return reply

    # -- the commands --

    def describe(self, timeout: Optional[float] = None) -> "pb.Description":
        """The broker's Description: its name, session, commands, event feed."""
        self._description = self.request("describe", None, timeout)
        return self._description

    def event_feed(self, timeout: Optional[float] = None) -> "pb.EventFeed":
        """Where the event feed is, its publisher id and drop count (from describe)."""
        return unpack(self.describe(timeout).broadcast, pb.EventFeed)

    def boot(self, request: Union["pb.BootRequest", str, None] = None, argv: Optional[Sequence[str]] = None, *,
             timeout: Optional[float] = None, **fields: Any) -> "pb.ProcessInstance":
        """Boots one process and returns it (RUNNING). Either a BootRequest, or a
        name, argv and the keywords of `boot_request` (session, user, hosts, env,
        directory, log_path, commands, tree_id)."""
        if isinstance(request, str):
            request = boot_request(request, argv, **fields)
        elif request is None:
            request = boot_request(fields.pop("name"), argv, **fields)
        else:
            request = coerce(request, pb.BootRequest)
        return self.request("boot", request, timeout)

    def boot_session(self, path: str, *, user: Optional[str] = None, session: Optional[str] = None,
                     timeout: Optional[float] = None) -> List["pb.ProcessInstance"]:
        """Boots every process of a session file (as ``drunc-pm boot -f``), all
        requests in flight at once; raises the first error after all answered."""
        pendings = [self.send("boot", request) for request in load_session_file(path, user, session)]
        results, error = [], None
        for pending in pendings:
            try:
                results.append(pending.result(timeout))
            except Exception as caught:  # noqa: BLE001 (re-raised below)
                error = error or caught
        if error is not None:
            raise error
        return results

    def ps(self, query_: QueryLike = None, *, timeout: Optional[float] = None, **fields: Any) -> List["pb.ProcessInstance"]:
        """The processes the query matches (every one with no query), in boot order.
        Query: a ProcessQuery, a UUID, an exact name, or keywords uuids, names,
        user, session (OR-ed)."""
        return self.request("ps", query(query_, **fields), timeout)

    def ps_with_position(self, query_: QueryLike = None, *, timeout: Optional[float] = None,
                         **fields: Any) -> Tuple[List["pb.ProcessInstance"], Optional["pb.FeedPosition"]]:
        """ps, and where the event feed stood when the list was made
        (docs/PROTOCOL.md, "Joining late")."""
        final = self.send("ps", query(query_, **fields)).responses(timeout)[-1]
        if final.flag != pb.request_response_pb2.EXECUTED_SUCCESSFULLY:
            raise response_error("ps", final)
        position = None
        if final.children and final.children[0].data.Is(pb.FeedPosition.DESCRIPTOR):
            position = unpack(final.children[0].data, pb.FeedPosition)
        return decode("ps", [final]), position

    def kill(self, query_: QueryLike = None, *, timeout: Optional[float] = None, **fields: Any) -> List["pb.ProcessInstance"]:
        """Kills the matched processes (SIGQUIT, then SIGKILL); returns them DEAD.
        An empty query matches nothing."""
        return self.request("kill", query(query_, **fields), timeout)

    def restart(self, query_: QueryLike = None, *, timeout: Optional[float] = None, **fields: Any) -> "pb.ProcessInstance":
        """Restarts the one matched process; returns it RUNNING."""
        return self.request("restart", query(query_, **fields), timeout)

    def flush(self, query_: QueryLike = None, *, timeout: Optional[float] = None, **fields: Any) -> List["pb.ProcessInstance"]:
        """Forgets the matched dead processes; returns them."""
        return self.request("flush", query(query_, **fields), timeout)

    def terminate(self, *, timeout: Optional[float] = None) -> List["pb.ProcessInstance"]:
        """Kills every process of the broker; returns them all DEAD."""
        return self.request("terminate", pb.ProcessQuery(), timeout)

    def logs(self, query_: QueryLike = None, how_far: int = 100, *, timeout: Optional[float] = None,
             **fields: Any) -> LogResult:
        """The last `how_far` lines of the one matched process, and the cursor."""
        request = pb.LogRequest(how_far=how_far)
        request.query.CopyFrom(query(query_, **fields))
        return self.request("logs", request, timeout)
