"""asyncio variants: AsyncClient and AsyncSubscriber (pyzmq's zmq.asyncio).

    async with AsyncClient("tcp://127.0.0.1:5555") as pm:
        app = await pm.boot("app", ["sleep", "30"], session="s1")
        ps, desc = await asyncio.gather(pm.ps(session="s1"), pm.describe())

One task reads the replies and completes each request's future, so any number
of coroutines may await requests on one AsyncClient at once. Same results and
exceptions as Client.
"""

import asyncio
import getpass
import itertools
import uuid as uuidlib
from typing import Any, Dict, List, Optional, Sequence, Union

import zmq
import zmq.asyncio
from google.protobuf.message import Message

from . import pb
from .client import DEFAULT_ADDRESS, DEFAULT_TIMEOUT, SIGNATURE, LogResult, decode
from .errors import ProtocolError, TimeoutError, response_error
from .messages import QueryLike, boot_request, coerce, pack, query
from .security import Certificate, apply_curve
from .subscriber import Event, EventDecoder


class AsyncClient:
    """Client over asyncio; the arguments are Client's."""

    def __init__(self, address: str = DEFAULT_ADDRESS, *, timeout: float = DEFAULT_TIMEOUT,
                 user: Optional[str] = None, token: str = "", routing_id: Optional[bytes] = None,
                 certificate: Certificate = None, server_key: Union[str, bytes, None] = None,
                 context: Optional[zmq.asyncio.Context] = None) -> None:
        self.address = address
        self.timeout = timeout
        self.context = context or zmq.asyncio.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        curve = apply_curve(self.socket, certificate, server_key)
        if user is None:
            user = "" if curve else getpass.getuser()
        self.token = pb.Token(token=token, user_name=user)
        self.socket.setsockopt(zmq.ROUTING_ID, routing_id or b"py-" + uuidlib.uuid4().hex.encode())
        self.socket.connect(address)
        self._ids = itertools.count(1)
        self._waiting: Dict[bytes, "tuple[asyncio.Future, List[pb.Response]]"] = {}
        self._reader: Optional[asyncio.Task] = None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 (closing)
                pass
        self.socket.close(linger=0)

    async def _read_replies(self) -> None:
        while True:
            frames = await self.socket.recv_multipart()
            if frames and frames[0] == b"":
                frames = frames[1:]
            if len(frames) != 4 or frames[0] != SIGNATURE or frames[2] not in (b"more", b"done"):
                error = ProtocolError("not a drunc-pm/1 reply: %r" % frames[:4])
                for future, _ in self._waiting.values():
                    if not future.done():
                        future.set_exception(error)
                continue
            entry = self._waiting.get(frames[1])
            if entry is None:
                continue
            future, replies = entry
            replies.append(pb.Response.FromString(frames[3]))
            if frames[2] == b"done":
                del self._waiting[frames[1]]
                if not future.done():
                    future.set_result(replies)

    async def responses(self, command: str, data: Optional[Message] = None,
                        timeout: Optional[float] = None) -> List["pb.Response"]:
        """Sends one request; every Response of it (the last is the `done` one)."""
        if self._reader is None or self._reader.done():
            self._reader = asyncio.ensure_future(self._read_replies())
        request_id = b"%d" % next(self._ids)
        request = pb.Request()
        request.token.CopyFrom(self.token)
        if data is not None:
            request.data.CopyFrom(pack(data))
        future = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = (future, [])
        await self.socket.send_multipart([SIGNATURE, request_id, command.encode(), request.SerializeToString()])
        limit = self.timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(future, limit)
        except asyncio.TimeoutError:
            raise TimeoutError("no answer to %s from %s within %.1f s" % (command, self.address, limit)) from None
        finally:
            self._waiting.pop(request_id, None)

    async def request(self, command: str, data: Optional[Message] = None, timeout: Optional[float] = None) -> Any:
        """The decoded result of one request (raises on an error answer)."""
        replies = await self.responses(command, data, timeout)
        if replies[-1].flag != pb.request_response_pb2.EXECUTED_SUCCESSFULLY:
            raise response_error(command, replies[-1])
        return decode(command, replies)

    async def describe(self, timeout: Optional[float] = None) -> "pb.Description":
        return await self.request("describe", None, timeout)

    async def boot(self, request: Union["pb.BootRequest", str], argv: Optional[Sequence[str]] = None, *,
                   timeout: Optional[float] = None, **fields: Any) -> "pb.ProcessInstance":
        request = boot_request(request, argv, **fields) if isinstance(request, str) else coerce(request, pb.BootRequest)
        return await self.request("boot", request, timeout)

    async def ps(self, query_: QueryLike = None, *, timeout: Optional[float] = None, **fields: Any):
        return await self.request("ps", query(query_, **fields), timeout)

    async def kill(self, query_: QueryLike = None, *, timeout: Optional[float] = None, **fields: Any):
        return await self.request("kill", query(query_, **fields), timeout)

    async def restart(self, query_: QueryLike = None, *, timeout: Optional[float] = None, **fields: Any):
        return await self.request("restart", query(query_, **fields), timeout)

    async def flush(self, query_: QueryLike = None, *, timeout: Optional[float] = None, **fields: Any):
        return await self.request("flush", query(query_, **fields), timeout)

    async def terminate(self, *, timeout: Optional[float] = None):
        return await self.request("terminate", pb.ProcessQuery(), timeout)

    async def logs(self, query_: QueryLike = None, how_far: int = 100, *, timeout: Optional[float] = None,
                   **fields: Any) -> LogResult:
        request = pb.LogRequest(how_far=how_far)
        request.query.CopyFrom(query(query_, **fields))
        return await self.request("logs", request, timeout)


class AsyncSubscriber:
    """Subscriber over asyncio: ``async for event in sub.events(idle=5)``. Gap
    detection and topics as Subscriber's."""

    def __init__(self, address: str, *prefixes: str, certificate: Certificate = None,
                 server_key: Union[str, bytes, None] = None, context: Optional[zmq.asyncio.Context] = None) -> None:
        self.address = address
        self.socket = (context or zmq.asyncio.Context.instance()).socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        apply_curve(self.socket, certificate, server_key)
        for prefix in prefixes:
            self.subscribe(prefix)
        self.socket.connect(address)
        self.decoder = EventDecoder()

    @property
    def lost(self) -> int:
        return self.decoder.lost

    def subscribe(self, prefix: str) -> None:
        self.socket.setsockopt(zmq.SUBSCRIBE, prefix.encode())

    def unsubscribe(self, prefix: str) -> None:
        self.socket.setsockopt(zmq.UNSUBSCRIBE, prefix.encode())

    def close(self) -> None:
        self.socket.close(linger=0)

    async def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, or None after timeout seconds."""
        if not await self.socket.poll(None if timeout is None else timeout * 1000):
            return None
        return self.decoder.decode(await self.socket.recv_multipart())

    async def events(self, idle: Optional[float] = None):
        """Yields events until `idle` seconds pass without one (None: for ever)."""
        while True:
            event = await self.next(idle)
            if event is None:
                return
            yield event
