"""Building the messages of requests: queries, boot requests, session files."""

import getpass
import json
import os
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Type, TypeVar, Union

from google.protobuf.message import Message

from . import pb

M = TypeVar("M", bound=Message)
UUID_SHAPE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_REGEX_SPECIAL = re.compile(r"([\\^$.|?*+()\[\]{}])")
QueryLike = Union["pb.ProcessQuery", Message, Mapping[str, Any], str, None]


def coerce(message: Any, cls: Type[M]) -> M:
    """`message` as an instance of `cls`: itself, or a copy through its bytes when
    it is another class of the same protobuf type (e.g. upstream drunc's own
    generated ``ProcessQuery``: the wire is the same)."""
    if isinstance(message, cls):
        return message
    if isinstance(message, Message):
        if message.DESCRIPTOR.full_name != cls.DESCRIPTOR.full_name:
            raise TypeError("expected %s, got %s" % (cls.DESCRIPTOR.full_name, message.DESCRIPTOR.full_name))
        return cls.FromString(message.SerializeToString())
    raise TypeError("expected %s, got %r" % (cls.DESCRIPTOR.full_name, type(message).__name__))


def exact_name(name: str) -> str:
    """A regular expression matching exactly this friendly name (names are RE2
    patterns searched anywhere, docs/PROTOCOL.md section 4)."""
    return "^" + _REGEX_SPECIAL.sub(r"\\\1", name) + "$"


def query(query: QueryLike = None, *, uuids: Iterable[str] = (), names: Iterable[str] = (), user: str = "",
          session: str = "") -> "pb.ProcessQuery":
    """A ProcessQuery. Its fields are OR-ed by the broker. `query` may be a
    ProcessQuery (of any generated class), a dict of its fields, or a string: a
    UUID, else a friendly name matched exactly. Keywords add to it: `names` are
    regular expressions searched anywhere (``"^readout-01$"`` for exactly one)."""
    if query is None:
        result = pb.ProcessQuery()
    elif isinstance(query, str):
        result = pb.ProcessQuery()
        if UUID_SHAPE.match(query):
            result.uuids.add().uuid = query.lower()
        else:
            result.names.append(exact_name(query))
    elif isinstance(query, Mapping):
        fields = dict(query)
        return globals()["query"](None, uuids=list(fields.pop("uuids", ())) + list(uuids),
                                  names=list(fields.pop("names", ())) + list(names),
                                  user=fields.pop("user", "") or user, session=fields.pop("session", "") or session,
                                  **_no_more(fields))
    else:
        result = pb.ProcessQuery()
        result.CopyFrom(coerce(query, pb.ProcessQuery))
    for value in uuids:
        result.uuids.add().uuid = value
    result.names.extend(names)
    if user:
        result.user = user
    if session:
        result.session = session
    return result


def _no_more(fields: Dict[str, Any]) -> Dict[str, Any]:
    if fields:
        raise TypeError("unknown ProcessQuery fields: %s" % ", ".join(sorted(fields)))
    return {}


def boot_request(name: str, argv: Optional[Sequence[str]] = None, *, commands: Optional[Sequence[Sequence[str]]] = None,
                 session: str = "", user: Optional[str] = None, hosts: Sequence[str] = ("localhost",),
                 env: Optional[Mapping[str, str]] = None, directory: str = "", log_path: str = "",
                 tree_id: Optional[str] = None) -> "pb.BootRequest":
    """A BootRequest: one command (`argv`) or several run one after another
    (`commands`), tried on `hosts` in order. `user` defaults to the caller's login."""
    if (argv is None) == (commands is None):
        raise TypeError("give either argv or commands")
    if isinstance(argv, str):
        raise TypeError("argv is a list of words, not a string: [%r] runs %r" % (argv, argv))
    request = pb.BootRequest()
    description = request.process_description
    metadata = description.metadata
    metadata.name = name
    metadata.user = user if user is not None else getpass.getuser()
    if session:
        metadata.session = session
    if tree_id is not None:
        metadata.tree_id = tree_id
    for words in ([argv] if argv is not None else commands):
        words = list(words)
        if not words:
            raise ValueError("a command is empty")
        description.executable_and_arguments.add(exec=words[0], args=words[1:])
    for key, value in (env or {}).items():
        description.env[key] = value
    description.process_execution_directory = directory
    description.process_logs_path = log_path
    request.process_restriction.allowed_hosts.extend(hosts)
    return request


class SessionFileError(ValueError):
    """A session file that cannot be read, or is not in the expected form."""


_SESSION_KEYS = {"session", "user", "hosts", "execution_directory", "logs_directory", "env", "processes",
                 "certificate", "server_key"}
_PROCESS_KEYS = {"name", "commands", "user", "hosts", "execution_directory", "log", "env", "tree_id"}


def load_session_file(path: Union[str, "os.PathLike[str]"], user: Optional[str] = None,
                      session: Optional[str] = None) -> List["pb.BootRequest"]:
    """The BootRequests of a session file, as ``drunc-pm boot -f`` reads it
    (config/demo-session.json shows the form). `user` and `session` override the
    file's."""
    path = os.fspath(path)
    try:
        with open(path) as file:
            document = json.load(file)
    except (OSError, ValueError) as error:
        raise SessionFileError("%s: %s" % (path, error)) from error
    if not isinstance(document, dict):
        raise SessionFileError(path + ": must be a JSON object")
    unknown = set(document) - _SESSION_KEYS
    if unknown:
        raise SessionFileError("%s: unknown keys %s" % (path, ", ".join(sorted(unknown))))
    processes = document.get("processes")
    if not isinstance(processes, list) or not processes:
        raise SessionFileError(path + ': "processes" must be a non-empty list')
    session_name = session if session is not None else document.get("session", "")
    default_user = user or document.get("user") or getpass.getuser()
    logs_directory = document.get("logs_directory", "")
    requests = []
    for index, process in enumerate(processes):
        where = "%s: processes[%d]" % (path, index)
        if not isinstance(process, dict):
            raise SessionFileError(where + " must be an object")
        unknown = set(process) - _PROCESS_KEYS
        if unknown:
            raise SessionFileError("%s: unknown keys %s" % (where, ", ".join(sorted(unknown))))
        name = process.get("name", "")
        if not name:
            raise SessionFileError(where + ': "name" is required')
        commands = process.get("commands")
        if not isinstance(commands, list) or not commands or not all(isinstance(c, list) and c for c in commands):
            raise SessionFileError(where + ': "commands" must be a non-empty list of [executable, arguments...]')
        env = dict(document.get("env", {}))
        env.update(process.get("env", {}))
        default_log = ""
        if logs_directory:
            default_log = "%s/%s%s.log" % (logs_directory, session_name + "_" if session_name else "", name)
        requests.append(boot_request(
            name, commands=commands, session=session_name, user=(user or process.get("user") or default_user),
            hosts=process.get("hosts", document.get("hosts", ["localhost"])), env=env,
            directory=process.get("execution_directory", document.get("execution_directory", "")),
            log_path=process.get("log", default_log), tree_id=process.get("tree_id")))
    return requests


def pack(message: Message) -> "pb.Any":
    """`message` in a google.protobuf.Any (type URL type.googleapis.com/...)."""
    packed = pb.Any()
    packed.Pack(message)
    return packed


def unpack(packed: "pb.Any", cls: Type[M]) -> M:
    """The message of type `cls` an Any holds; TypeError if it holds another."""
    message = cls()
    if not packed.Unpack(message):
        raise TypeError("the Any holds %s, not %s" % (packed.type_url, cls.DESCRIPTOR.full_name))
    return message
