"""The protobuf classes of the wire: drunc's schema (``dunedaq.druncschema``,
generated from proto/druncschema/) and drunc-zmq's own messages (package
``drunc_zmq``, from proto/drunc_zmq/events.proto).

Modules, as upstream names them: ``token_pb2``, ``generic_pb2``,
``request_response_pb2``, ``broadcast_pb2``, ``process_manager_pb2``, and
``events_pb2``. The messages a client uses most are re-exported by name::

    from drunc_zmq.pb import ProcessQuery, BootRequest
"""

from google.protobuf import any_pb2

from ._generated.druncschema import (  # noqa: F401
    broadcast_pb2,
    generic_pb2,
    process_manager_pb2,
    request_response_pb2,
    token_pb2,
)
from ._generated.drunc_zmq import events_pb2  # noqa: F401

Any = any_pb2.Any
Token = token_pb2.Token
PlainText = generic_pb2.PlainText
Request = request_response_pb2.Request
Response = request_response_pb2.Response
ResponseFlag = request_response_pb2.ResponseFlag
Description = request_response_pb2.Description
CommandDescription = request_response_pb2.CommandDescription
BroadcastMessage = broadcast_pb2.BroadcastMessage
BroadcastType = broadcast_pb2.BroadcastType
ProcessQuery = process_manager_pb2.ProcessQuery
ProcessUUID = process_manager_pb2.ProcessUUID
ProcessMetadata = process_manager_pb2.ProcessMetadata
ProcessDescription = process_manager_pb2.ProcessDescription
ProcessRestriction = process_manager_pb2.ProcessRestriction
ProcessInstance = process_manager_pb2.ProcessInstance
ProcessInstanceList = process_manager_pb2.ProcessInstanceList
BootRequest = process_manager_pb2.BootRequest
LogRequest = process_manager_pb2.LogRequest
LogLine = process_manager_pb2.LogLine
CommandNotificationMessage = process_manager_pb2.CommandNotificationMessage
EventFeed = events_pb2.EventFeed
EventMeta = events_pb2.EventMeta
LogCursor = events_pb2.LogCursor
FeedPosition = events_pb2.FeedPosition

RUNNING = ProcessInstance.RUNNING
DEAD = ProcessInstance.DEAD

__all__ = [name for name in dir() if not name.startswith("_")]
