"""drunc_zmq: Python client of the drunc-zmq process manager (docs/PROTOCOL.md).

- Client: every command (describe, boot, ps, kill, restart, flush, terminate,
  logs), timeouts, errors as exceptions, several requests in flight.
- Subscriber, topic(): the event feed, gaps detected.
- ProcessTable: the process list kept from one ps and the feed ("Joining late").
- follow_logs: a process's output, old and new, without gap or repeat.
- format_table: processes as ``drunc-pm ps`` prints them.
- driver.ProcessManagerDriver: upstream drunc's driver API over this transport.
- pb: the protobuf classes; aio: asyncio variants (AsyncClient, AsyncSubscriber).
"""

from . import pb
from .client import COMMANDS, DEFAULT_ADDRESS, SIGNATURE, Client, LogResult, Pending, Reply
from .errors import (BadRequestFormat, DruncExceptionThrown, DruncZmqError, HandshakeError, NotAuthorised,
                     NotImplementedCommand, ProtocolError, ResponseError, TimeoutError, UnhandledExceptionThrown)
from .messages import boot_request, exact_name, load_session_file, pack, query, unpack
from .process_table import ProcessTable, follow_logs
from .subscriber import Event, Subscriber, decode_field, encode_field, parse_topic, topic
from .table import format_table

__version__ = "0.1.0"

__all__ = [
    "pb", "Client", "Pending", "Reply", "LogResult", "COMMANDS", "DEFAULT_ADDRESS", "SIGNATURE",
    "DruncZmqError", "TimeoutError", "ProtocolError", "HandshakeError", "ResponseError", "NotImplementedCommand",
    "NotAuthorised", "DruncExceptionThrown", "UnhandledExceptionThrown", "BadRequestFormat",
    "boot_request", "query", "exact_name", "load_session_file", "pack", "unpack",
    "Subscriber", "Event", "topic", "parse_topic", "encode_field", "decode_field",
    "ProcessTable", "follow_logs", "format_table",
]
