"""ProcessManagerDriver: upstream drunc's process-manager driver, over ZeroMQ.

Same class name, constructor and method names and arguments as
``drunc.process_manager.process_manager_driver.ProcessManagerDriver``, so that
drunc-side code switches transport by changing one import::

    # from drunc.process_manager.process_manager_driver import ProcessManagerDriver
    from drunc_zmq.driver import ProcessManagerDriver

    driver = ProcessManagerDriver("tcp://daq-pm:5555", token)
    driver.ps(ProcessQuery(session="run-7"))

Arguments may be upstream's own generated messages (ProcessQuery, LogRequest,
Token, BootRequest): they are passed on by their bytes, which are the same.
Results are this package's classes of the same messages (same fields), errors
raise ResponseError subclasses (``flag``, ``text``) instead of gRPC errors, and
timeouts raise drunc_zmq.TimeoutError.

``boot`` keeps upstream's signature, but what upstream reads from an OKS
database (conffwk, daqconf) is read here from a drunc-zmq session file
(config/demo-session.json's form), or given directly as BootRequests; a
subclass may override ``boot_requests`` to produce them from anything else.
"""

import os
import time
from typing import Any, Iterable, Iterator, Optional, Union

from google.protobuf.message import Message

from . import pb
from .client import Client, LogResult
from .messages import coerce, load_session_file


class LogLines(list):
    """What ``logs`` returns: a list of LogLine (iterate it as upstream's older,
    streaming ``logs``), with ``lines`` (as upstream's newer LogLines message) and
    ``cursor`` (drunc-zmq's: the feed position of the next line)."""

    def __init__(self, result: LogResult) -> None:
        super().__init__(result.lines)
        self.lines = list(result.lines)
        self.cursor = result.cursor


class ProcessManagerDriver:
    """A process-manager driver whose transport is drunc-zmq.

    address: the broker's control endpoint (``tcp://host:port``; a bare
        ``host:port``, as upstream's gRPC addresses are written, gets ``tcp://``).
    token: a Token (any generated class), sent with every request.
    kwargs: passed to Client (certificate, server_key, routing_id, context).
    """

    controller_address = ""

    def __init__(self, address: str, token: Any = None, **kwargs: Any) -> None:
        if "://" not in address:
            address = "tcp://" + address
        self.address = address
        self.token = coerce(token, pb.Token) if token is not None else pb.Token()
        kwargs.pop("timeout", None)
        self.client = Client(address, user=self.token.user_name, token=self.token.token, **kwargs)

    def close(self) -> None:
        """Closes the connection."""
        self.client.close()

    # -- boot --

    def boot_requests(self, conf_file: Any, conf_id: Optional[str], user: str, session_name: str,
                      override_logs: bool = True, **kwargs: Any) -> Iterable["pb.BootRequest"]:
        """The BootRequests `boot` sends. conf_file: a session file path (its
        session and user overridden by session_name and user when given), a
        BootRequest, or an iterable of BootRequests. conf_id is not used."""
        if isinstance(conf_file, (str, os.PathLike)):
            return load_session_file(conf_file, user=user or None, session=session_name or None)
        if isinstance(conf_file, Message):
            conf_file = [conf_file]
        requests = []
        for request in conf_file:
            request = pb.BootRequest.FromString(coerce(request, pb.BootRequest).SerializeToString())
            metadata = request.process_description.metadata
            if user:
                metadata.user = user
            if session_name:
                metadata.session = session_name
            requests.append(request)
        return requests

    def boot(self, conf_file: Any, conf_id: Optional[str] = None, user: str = "", session_name: str = "",
             log_level: Optional[str] = None, override_logs: bool = True, timeout: Union[int, float] = 60,
             sleep_between_app_boot: Union[int, float] = 0, **kwargs: Any) -> Iterator["pb.ProcessInstanceList"]:
        """Boots each process of the configuration; yields one ProcessInstanceList
        per process booted, as upstream does. log_level is not used."""
        last_boot_on_host = {}
        for request in self.boot_requests(conf_file, conf_id, user, session_name, override_logs, **kwargs):
            host = request.process_restriction.allowed_hosts[0] if request.process_restriction.allowed_hosts else ""
            since = time.monotonic() - last_boot_on_host.get(host, float("-inf"))
            if sleep_between_app_boot > 0 and since < sleep_between_app_boot:
                time.sleep(sleep_between_app_boot - since)
            last_boot_on_host[host] = time.monotonic()
            instance = self.client.boot(request, timeout=timeout)
            yield pb.ProcessInstanceList(values=[instance])

    def dummy_boot(self, user: str, session_name: str, n_processes: int, sleep: int, n_sleeps: int,
                   timeout: Union[int, float] = 60) -> Iterator["pb.ProcessInstanceList"]:
        """Boots n_processes processes that echo, sleep `sleep` s n_sleeps times, and exit."""
        pwd = os.getcwd()
        for process in range(n_processes):
            request = pb.BootRequest()
            description = request.process_description
            description.metadata.user = user
            description.metadata.session = session_name
            description.metadata.name = "dummy_boot_%d" % process
            description.executable_and_arguments.add(exec="echo", args=["Starting dummy_boot."])
            for index in range(1, n_sleeps + 1):
                description.executable_and_arguments.add(exec="sleep", args=["%ss" % sleep])
                description.executable_and_arguments.add(exec="echo", args=["%ss" % (sleep * index)])
            description.executable_and_arguments.add(exec="echo", args=["Exiting."])
            description.process_execution_directory = pwd
            description.process_logs_path = "%s/log_%s_%s_dummy-boot_%d.log" % (pwd, user, session_name, process)
            request.process_restriction.allowed_hosts.append("localhost")
            yield pb.ProcessInstanceList(values=[self.client.boot(request, timeout=timeout)])

    # -- the other endpoints --

    def terminate(self, timeout: Union[int, float] = 60) -> "pb.ProcessInstanceList":
        """Kills every process."""
        return pb.ProcessInstanceList(values=self.client.terminate(timeout=timeout))

    def kill(self, request: Any, timeout: Union[int, float] = 60) -> "pb.ProcessInstanceList":
        """Kills the processes the ProcessQuery matches."""
        return pb.ProcessInstanceList(values=self.client.kill(coerce(request, pb.ProcessQuery), timeout=timeout))

    def restart(self, request: Any, timeout: Union[int, float] = 60) -> "pb.ProcessInstanceList":
        """Restarts the one process the ProcessQuery matches."""
        return pb.ProcessInstanceList(values=[self.client.restart(coerce(request, pb.ProcessQuery), timeout=timeout)])

    def flush(self, request: Any, timeout: Union[int, float] = 60) -> "pb.ProcessInstanceList":
        """Forgets the dead processes the ProcessQuery matches."""
        return pb.ProcessInstanceList(values=self.client.flush(coerce(request, pb.ProcessQuery), timeout=timeout))

    def ps(self, request: Any, timeout: Union[int, float] = 60) -> "pb.ProcessInstanceList":
        """The processes the ProcessQuery matches."""
        return pb.ProcessInstanceList(values=self.client.ps(coerce(request, pb.ProcessQuery), timeout=timeout))

    def logs(self, request: Any, timeout: Union[int, float] = 60) -> LogLines:
        """The last request.how_far lines of the one process request.query matches."""
        request = coerce(request, pb.LogRequest)
        return LogLines(self.client.logs(request.query, request.how_far, timeout=timeout))

    def describe(self, timeout: Union[int, float] = 60) -> "pb.Description":
        """The process manager's Description."""
        return self.client.describe(timeout=timeout)


__all__ = ["ProcessManagerDriver", "LogLines"]
