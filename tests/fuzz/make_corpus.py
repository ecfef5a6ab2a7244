#!/usr/bin/python3
"""Writes the seed corpus of the fuzz targets: tests/fuzz/corpus/<target>/.

Small real inputs: the requests drunc-pm and the Python clients send, the
frames they travel in, the replies, broker configurations, queries, topics and
process output. Run it with Debian's python3 (python3-protobuf) and the
classes protoc generates from proto/ (any build directory has them in python/):

    /usr/bin/python3 tests/fuzz/make_corpus.py build-fuzz

It replaces the files it writes and leaves others (inputs saved from fuzzing
runs, if any were added) alone.
"""
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build").resolve()
sys.path.insert(0, str(build / "python"))

from google.protobuf import any_pb2  # noqa: E402
from druncschema import process_manager_pb2 as pm  # noqa: E402
from druncschema import request_response_pb2 as rr  # noqa: E402
from druncschema import token_pb2  # noqa: E402

CORPUS = HERE / "corpus"
UUID = "6f1d9c2e-4b7a-4c1e-9a0f-2d3e4f5a6b7c"


def write(target, name, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (directory / name).write_bytes(data)


def request(message=None, user="daq"):
    req = rr.Request(token=token_pb2.Token(token="", user_name=user))
    if message is not None:
        packed = any_pb2.Any()
        packed.Pack(message)
        req.data.CopyFrom(packed)
    return req.SerializeToString()


def boot_request():
    description = pm.ProcessDescription(
        metadata=pm.ProcessMetadata(user="daq", session="demo", name="readout-01", hostname="localhost"),
        env={"DEMO_RUN": "42", "LINK": "01"},
        executable_and_arguments=[
            pm.ProcessDescription.ExecAndArgs(exec="bash", args=["-c", "echo \"link $LINK\"; sleep 1"]),
            pm.ProcessDescription.ExecAndArgs(exec="echo", args=["it's done", "$HOME", "a\nb"]),
        ],
        process_execution_directory="/tmp",
        process_logs_path="/tmp/log_demo_readout-01.txt")
    return pm.BootRequest(process_description=description,
                          process_restriction=pm.ProcessRestriction(allowed_hosts=["localhost", "127.0.0.2:2222"]))


def query(**fields):
    return pm.ProcessQuery(**fields)


requests = {
    "describe": request(),
    "boot": request(boot_request()),
    "ps-all": request(query()),
    "ps-session": request(query(session="demo")),
    "ps-names": request(query(names=["readout-0[1-4]", "^run-control$"], user="daq")),
    "kill-uuid": request(query(uuids=[pm.ProcessUUID(uuid=UUID)])),
    "restart-name": request(query(names=["readout-01"], session="demo")),
    "logs": request(pm.LogRequest(query=query(uuids=[pm.ProcessUUID(uuid=UUID)]), how_far=100)),
    "terminate-no-data": request(user=""),
    "wrong-type": request(pm.LogLine(uuid=pm.ProcessUUID(uuid=UUID), line="not a query")),
}
for name, body in requests.items():
    write("request", name, body)


def frames(*parts):
    """The fuzz_envelope encoding: each frame as a length byte (255: two more bytes) and its bytes."""
    out = bytearray()
    for part in parts:
        if isinstance(part, str):
            part = part.encode()
        if len(part) < 255:
            out.append(len(part))
        else:
            out += bytes([255, len(part) & 0xFF, len(part) >> 8])
        out += part
    return bytes(out)


routing_id = b"\x00\x6b\x8b\x45\x67"  # as a ROUTER names a peer that set no identity
write("envelope", "ps", frames(routing_id, "drunc-pm/1", "1", "ps", requests["ps-session"]))
write("envelope", "ps-delimiter", frames(routing_id, "", "drunc-pm/1", "req-42", "ps", requests["ps-all"]))
write("envelope", "boot", frames(routing_id, "drunc-pm/1", "7f3a", "boot", requests["boot"]))
write("envelope", "logs", frames(routing_id, "drunc-pm/1", "2", "logs", requests["logs"]))
write("envelope", "unknown-command", frames(routing_id, "drunc-pm/1", "3", "reboot", requests["describe"]))
write("envelope", "wrong-signature", frames(routing_id, "drunc-pm/2", "4", "ps", requests["ps-all"]))
write("envelope", "three-frames", frames(routing_id, "drunc-pm/1", "5", "describe"))
write("envelope", "long-id", frames(routing_id, "drunc-pm/1", "i" * 256, "ps", requests["ps-all"]))
response = rr.Response(name="drunc-zmq", flag=rr.EXECUTED_SUCCESSFULLY).SerializeToString()
write("envelope", "reply-done", frames("drunc-pm/1", "1", "done", response))
write("envelope", "reply-more", frames("", "drunc-pm/1", "req-42", "more", response))

queries = {
    "name": "readout-01\nreadout-0[1-4]",
    "anchored": "run-control\n^run-control$\n@session=demo",
    "uuid": "readout-01\n@uuid=" + UUID + "\n@user=daq",
    "python-syntax": "dqm-03\n(?P<kind>dqm|readout)-\\d+\n(?i)DQM",
    "classes": "trigger_primitive.maker\n[[:alpha:]_]+\\.\\w+\n\\pL+",
    "invalid": "x\n(unclosed\n*\na{2,1}",
    "repetition": "aaaaaaaaaaaaaaaaaaaa\n(a+)+$\n(a|aa){1,100}",
    "empty": "readout-01\n\n@user=\n@session=",
}
for name, text in queries.items():
    write("query", name, text)

write("config", "broker.json", (ROOT / "config" / "broker.json").read_bytes())
write("config", "ssh-example.json", (ROOT / "config" / "ssh-example.json").read_bytes())
write("config", "comments.json", """{
  // the session's own broker
  "name": "pm-test", "session": "s1", /* loopback only */
  "control_endpoint": "ipc:///tmp/drunc-control",
  "events_endpoint": "tcp://127.0.0.1:0",
  "kill_timeout_s": 2.25, "log_ring_lines": 1, "max_message_bytes": 1024,
  "events_high_water_mark": 0, "local_hosts": ["localhost"], "log_level": "debug",
  "hosts": {"127.0.0.2": {"port": 2222, "user": "drunc-test"}},
  "ssh": {"workers": 1, "port": 2222, "use_agent": false, "known_hosts_files": [],
          "accepted_hosts_file": "~/known", "host_key_policy": "accept-new",
          "connect_timeout_s": 0.1, "keepalive_interval_s": 3600, "idle_close_s": 0,
          "max_parallel_handshakes_per_host": 100}
}
""")
write("config", "refused.json", '{"kill_timeout_s": -1, "local_hosts": [], "ssh": {"host_key_policy": "maybe"}}')

topics = {
    "log": "log/demo/readout-01/" + UUID,
    "state": "state/demo/run-control/" + UUID,
    "bcast": "bcast/demo/drunc-zmq",
    "no-session": "state//readout-01/" + UUID,
    "escaped": "log/np04%2Frun%25/a%2fb%/" + UUID,
    "prefix": "log/demo/",
}
for name, text in topics.items():
    write("topic", name, text)

# fuzz_line_splitter: [mode][short_by] then the output (see fuzz_line_splitter.cpp).
lines = {
    "lines": b"\x00\x00run 42: controller up\nheartbeat 1\nheartbeat 2\n",
    "chunked-utf8": b"\x03\x00caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\r\npartial",
    "invalid-utf8": b"\x01\x00\xff\xfe bad \xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80\n\n",
    "long-line": b"\xe0\x02\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80tail\nnext\n",
    "long-line-chunked": b"\xe5\x0f\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80end",
}
for name, data in lines.items():
    write("line_splitter", name, data)

print("corpus written to", CORPUS)
