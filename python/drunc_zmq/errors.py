"""Exceptions of drunc_zmq. Every one derives from DruncZmqError."""

import builtins
from typing import Optional

from . import pb


class DruncZmqError(Exception):
    """Base class of every error this package raises."""


class TimeoutError(DruncZmqError, builtins.TimeoutError):  # noqa: A001 (a TimeoutError of ours, still a builtins one)
    """No answer (reply, event) within the deadline."""


class ProtocolError(DruncZmqError):
    """A message that does not follow drunc-pm/1 (docs/PROTOCOL.md)."""


class HandshakeError(DruncZmqError):
    """The connection's security handshake failed: the broker refused this key
    (CURVE), the server key is wrong, or one side uses CURVE and the other not.
    ``event`` is the name of the ZeroMQ monitor event (e.g.
    ``EVENT_HANDSHAKE_FAILED_AUTH``), ``value`` its value (400 for a refused key)."""

    def __init__(self, message: str, event: str, value: int) -> None:
        super().__init__(message)
        self.event = event
        self.value = value


class ResponseError(DruncZmqError):
    """The broker answered with an error flag. ``flag`` is the ResponseFlag
    number, ``flag_name`` its name, ``text`` the broker's reason (the PlainText of
    the answer), ``command`` the command sent and ``response`` the whole Response."""

    def __init__(self, command: str, response: "pb.Response") -> None:
        self.command = command
        self.response = response
        self.flag = int(response.flag)
        try:
            self.flag_name = pb.ResponseFlag.Name(self.flag)
        except ValueError:
            self.flag_name = str(self.flag)
        self.text = text_of(response)
        super().__init__("%s: %s: %s" % (command, self.flag_name, self.text))


class NotImplementedCommand(ResponseError):
    """NOT_EXECUTED_NOT_IMPLEMENTED: the broker does not know the command."""


class NotAuthorised(ResponseError):
    """NOT_EXECUTED_NOT_AUTHORISED: the caller's role, sessions or token forbid it."""


class DruncExceptionThrown(ResponseError):
    """DRUNC_EXCEPTION_THROWN: e.g. a restart or logs matching other than one
    process, a bad regular expression, a boot no allowed host could start."""


class UnhandledExceptionThrown(ResponseError):
    """UNHANDLED_EXCEPTION_THROWN: something unexpected on the broker's side."""


class BadRequestFormat(ResponseError):
    """NOT_EXECUTED_BAD_REQUEST_FORMAT: the request or its data is malformed."""


_BY_FLAG = {
    pb.request_response_pb2.NOT_EXECUTED_NOT_IMPLEMENTED: NotImplementedCommand,
    pb.request_response_pb2.NOT_EXECUTED_NOT_AUTHORISED: NotAuthorised,
    pb.request_response_pb2.DRUNC_EXCEPTION_THROWN: DruncExceptionThrown,
    pb.request_response_pb2.UNHANDLED_EXCEPTION_THROWN: UnhandledExceptionThrown,
    pb.request_response_pb2.NOT_EXECUTED_BAD_REQUEST_FORMAT: BadRequestFormat,
}


def response_error(command: str, response: "pb.Response") -> ResponseError:
    """The ResponseError subclass for the response's flag."""
    return _BY_FLAG.get(response.flag, ResponseError)(command, response)


def text_of(response: "pb.Response") -> str:
    """The PlainText of a response, or "" if its data is something else."""
    if response.HasField("data") and response.data.Is(pb.PlainText.DESCRIPTOR):
        text = pb.PlainText()
        response.data.Unpack(text)
        return text.text
    return ""


def flag_name(flag: int) -> Optional[str]:
    try:
        return pb.ResponseFlag.Name(flag)
    except ValueError:
        return None
