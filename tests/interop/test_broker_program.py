#!/usr/bin/python3
"""Tests of the drunc-broker program itself: configuration errors at start,
--print-default-config, and the shutdown on SIGTERM / SIGINT (processes killed,
SERVER_SHUTDOWN broadcast, exit status 0).

Usage: /usr/bin/python3 tests/interop/test_broker_program.py BUILD_DIR [unittest options]

Only the standard library, pyzmq, google.protobuf and the drunc_zmq package
(python/) are used. Every wait has a deadline, so that a broken broker fails
the test instead of hanging it.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid as uuidlib

from broker_process import EXIT_TIMEOUT, BrokerProcess, boot_request, setup_paths

BUILD_DIR = setup_paths(sys.argv)

import zmq  # noqa: E402

from drunc_zmq import Client, Subscriber  # noqa: E402
from drunc_zmq.pb import broadcast_pb2, generic_pb2, process_manager_pb2, request_response_pb2  # noqa: E402

BROKER = os.path.join(BUILD_DIR, "broker", "drunc-broker")
TIMEOUT = 10.0          # seconds: every receive, every start
EPHEMERAL = {"control_endpoint": "tcp://127.0.0.1:*", "events_endpoint": "tcp://127.0.0.1:*"}


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="drunc-program-")
        self.addCleanup(shutil.rmtree, self.directory, True)

    def write(self, name, text):
        path = os.path.join(self.directory, name)
        with open(path, "w") as file:
            file.write(text)
        return path

    def write_config(self, settings):
        return self.write("broker.json", json.dumps(settings))

    def run_broker(self, *args):
        """Runs drunc-broker to its end; returns the CompletedProcess (text)."""
        try:
            return subprocess.run([BROKER, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=TIMEOUT)
        except subprocess.TimeoutExpired as error:
            self.fail("drunc-broker %s did not exit within %.0f s (stdout: %r)" % (args, TIMEOUT, error.stdout))


# ---- (a) to (e): start-up errors and --print-default-config ----------------------------


class ConfigurationTest(TempDirTest):
    def assertRefused(self, result, *words):
        """Non-zero exit, nothing served, and every word on stderr."""
        self.assertNotEqual(result.returncode, 0, "stdout: %s\nstderr: %s" % (result.stdout, result.stderr))
        self.assertNotIn("serving on", result.stdout)
        for word in words:
            self.assertIn(word, result.stderr)

    def test_unknown_key(self):
        path = self.write_config(dict(EPHEMERAL, kill_timout_s=1))
        result = self.run_broker("-c", path)
        self.assertRefused(result, "kill_timout_s", path)
        self.assertEqual(result.returncode, 2)

    def test_bad_values_name_the_setting(self):
        cases = [
            ({"kill_timeout_s": "fast"}, "kill_timeout_s"),
            ({"kill_timeout_s": -1}, "kill_timeout_s"),
            ({"log_ring_lines": 0}, "log_ring_lines"),
            ({"log_ring_lines": 2.5}, "log_ring_lines"),
            ({"max_message_bytes": "1MB"}, "max_message_bytes"),
            ({"local_hosts": "localhost"}, "local_hosts"),
            ({"log_level": "loud"}, "log_level"),
            ({"name": ""}, "name"),
        ]
        for settings, key in cases:
            with self.subTest(settings=settings):
                result = self.run_broker("-c", self.write_config(dict(EPHEMERAL, **settings)))
                self.assertRefused(result, '"%s"' % key)
                self.assertEqual(result.returncode, 2)

    def test_port_in_use_names_control_endpoint(self):
        taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        endpoint = "tcp://127.0.0.1:%d" % port
        result = self.run_broker("-c", self.write_config(dict(EPHEMERAL, control_endpoint=endpoint)))
        self.assertRefused(result, "control_endpoint", str(port))

    def test_port_in_use_names_events_endpoint(self):
        taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        endpoint = "tcp://127.0.0.1:%d" % taken.getsockname()[1]
        result = self.run_broker("-c", self.write_config(dict(EPHEMERAL, events_endpoint=endpoint)))
        self.assertRefused(result, "events_endpoint")

    def test_not_json(self):
        path = self.write("broker.json", '{"name": "x", control_endpoint = 5555\n')
        result = self.run_broker("-c", path)
        self.assertRefused(result, path, "JSON")
        self.assertLess(len(result.stderr.splitlines()), 5, "a short message, not a dump: %s" % result.stderr)

    def test_json_but_not_an_object(self):
        result = self.run_broker("-c", self.write("broker.json", '["control_endpoint"]'))
        self.assertRefused(result, "object")

    def test_missing_file(self):
        path = os.path.join(self.directory, "no-such-file.json")
        result = self.run_broker("-c", path)
        self.assertRefused(result, path)

    def test_print_default_config(self):
        result = self.run_broker("--print-default-config")
        self.assertEqual(result.returncode, 0, result.stderr)
        document = json.loads(result.stdout)
        self.assertIsInstance(document, dict)
        for key in ("name", "session", "control_endpoint", "events_endpoint", "kill_timeout_s",
                    "log_ring_lines", "local_hosts", "log_level"):
            self.assertIn(key, document)
        # The printed configuration is one the broker accepts (on free ports).
        document.update(EPHEMERAL)
        broker = BrokerProcess(BROKER, self.write_config(document))
        self.addCleanup(broker.stop)
        broker.send_signal(signal.SIGTERM)
        self.assertEqual(broker.wait_exit(), 0)


# ---- (f), (g): the stop signals ------------------------------------------------------


def pids_of(command_line):
    """The pids whose whole command line is exactly command_line."""
    result = subprocess.run(["pgrep", "-x", "-f", command_line], capture_output=True, text=True, timeout=TIMEOUT)
    return [int(pid) for pid in result.stdout.split()]


class StopSignalTest(TempDirTest):
    NAME = "py-program"
    SESSION = "stop-session"

    def setUp(self):
        super().setUp()
        config = dict(EPHEMERAL, name=self.NAME, session=self.SESSION, kill_timeout_s=5)
        self.broker = BrokerProcess(BROKER, self.write_config(config))
        self.addCleanup(self.broker.stop)
        self.context = zmq.Context()
        self.addCleanup(self.context.term)
        self.client = Client(self.broker.control, context=self.context, timeout=TIMEOUT)
        self.addCleanup(self.client.close)
        self.subscriber = Subscriber(self.broker.events, "state/", "log/", "bcast/", context=self.context)
        self.addCleanup(self.subscriber.close)
        self.events = []

    def call(self, command, data):
        """One request and its terminal Response, with a deadline; it must succeed."""
        response = self.client.send(command, data).response()
        self.assertEqual(response.flag, request_response_pb2.EXECUTED_SUCCESSFULLY, str(response))
        return response

    def boot(self, name, argv):
        response = self.call("boot", boot_request(name, self.SESSION, argv))
        instances = process_manager_pb2.ProcessInstanceList()
        self.assertTrue(response.data.Unpack(instances))
        self.assertEqual(len(instances.values), 1)
        return instances.values[0].uuid.uuid

    def next_event(self, deadline):
        event = self.subscriber.next(max(0.0, deadline - time.monotonic()))
        if event is None:
            return None
        triple = (event.topic, event.payload, event.meta)
        self.events.append(triple)
        return triple

    def wait_event(self, predicate, what, timeout=TIMEOUT):
        for event in self.events:
            if predicate(*event):
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(deadline)
            if event is None:
                self.fail("no %s within %.0f s; events: %s" % (what, timeout, [(t, m.transition) for t, _, m in
                                                                               self.events]))
            if predicate(*event):
                return event

    def make_subscription_live(self):
        """Boots `true` until one of its events reaches the SUB socket (slow joiner)."""
        deadline = time.monotonic() + 30
        warm = set()
        for attempt in range(30):
            warm.add(self.boot("warm-up-%d" % attempt, ["true"]))
            attempt_deadline = min(deadline, time.monotonic() + 1.0)
            while True:
                event = self.next_event(attempt_deadline)
                if event is None:
                    break
                if event[0].startswith("state/") and event[0].rsplit("/", 1)[-1] in warm:
                    return
            if time.monotonic() >= deadline:
                break
        self.fail("the SUB socket never received an event of %d warm-up processes" % len(warm))

    def check_stop(self, number, signal_name):
        self.make_subscription_live()
        marker = "300.%d%04d" % (os.getpid(), uuidlib.uuid4().int % 10000)
        sleeper_line = "sleep " + marker
        self.addCleanup(self.kill_leftovers, sleeper_line)
        sleeper = self.boot("sleeper", ["sleep", marker])
        # Says "ready" once its trap is set; says "bye" and exits 0 on SIGQUIT.
        graceful = self.boot("graceful", ["bash", "-c",
                                          "trap 'echo bye; exit 0' QUIT; echo ready; while true; do sleep 0.1; done"])
        for uuid, name in ((sleeper, "sleeper"), (graceful, "graceful")):
            topic = "state/%s/%s/%s" % (self.SESSION, name, uuid)
            self.wait_event(lambda t, p, m: t == topic and m.transition == "booted", "booted event of " + name)
        graceful_log = "log/%s/graceful/%s" % (self.SESSION, graceful)
        self.wait_event(lambda t, p, m: t == graceful_log and process_manager_pb2.LogLine.FromString(p).line == "ready",
                        "the ready line of graceful")
        self.assertEqual(len(pids_of(sleeper_line)), 1, "the sleeper is not running as %r" % sleeper_line)

        started = time.monotonic()
        self.broker.send_signal(number)
        status = self.broker.wait_exit()
        elapsed = time.monotonic() - started
        self.assertEqual(status, 0, "stderr: %s" % self.broker.stderr_text())
        self.assertLess(elapsed, EXIT_TIMEOUT)
        self.assertEqual(pids_of(sleeper_line), [], "the sleeper outlived the broker")
        self.assertIn("received " + signal_name, self.broker.stdout_text())

        # Everything below was published before the broker exited; the SUB
        # socket has it queued (or gets it within the deadline).
        for uuid, name, code in ((sleeper, "sleeper", 131), (graceful, "graceful", 0)):
            topic = "state/%s/%s/%s" % (self.SESSION, name, uuid)
            _, payload, meta = self.wait_event(lambda t, p, m: t == topic and m.transition == "killed",
                                               "killed event of " + name)
            instance = process_manager_pb2.ProcessInstance.FromString(payload)
            self.assertEqual(instance.status_code, process_manager_pb2.ProcessInstance.DEAD)
            self.assertEqual(instance.return_code, code, name)
        self.wait_event(lambda t, p, m: t == graceful_log and process_manager_pb2.LogLine.FromString(p).line == "bye",
                        "the last words of graceful (it got SIGQUIT)")

        bcast_topic = "bcast/%s/%s" % (self.SESSION, self.NAME)
        _, payload, meta = self.wait_event(
            lambda t, p, m: t == bcast_topic
            and broadcast_pb2.BroadcastMessage.FromString(p).type == broadcast_pb2.SERVER_SHUTDOWN,
            "SERVER_SHUTDOWN broadcast")
        message = broadcast_pb2.BroadcastMessage.FromString(payload)
        self.assertEqual(message.type, 4)
        self.assertEqual(message.emitter.process, self.NAME)
        self.assertEqual(message.emitter.session, self.SESSION)
        self.assertEqual(meta.generation, 0)
        self.assertEqual(meta.transition, "")
        text = generic_pb2.PlainText()
        self.assertTrue(message.data.Unpack(text))
        # The broadcast comes after the processes' last events.
        last_process_event = max(m.sequence for t, _, m in self.events if not t.startswith("bcast/"))
        self.assertGreater(meta.sequence, last_process_event)

    def kill_leftovers(self, command_line):
        """Should the test fail, ends the sleeper it started (by pid)."""
        for pid in pids_of(command_line):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def test_sigterm_kills_processes_broadcasts_and_exits_0(self):
        self.check_stop(signal.SIGTERM, "SIGTERM")

    def test_sigint_kills_processes_broadcasts_and_exits_0(self):
        self.check_stop(signal.SIGINT, "SIGINT")

    def test_sigterm_with_no_process(self):
        self.make_subscription_live()
        self.broker.send_signal(signal.SIGTERM)
        self.assertEqual(self.broker.wait_exit(), 0)
        self.wait_event(lambda t, p, m: t.startswith("bcast/")
                        and broadcast_pb2.BroadcastMessage.FromString(p).type == broadcast_pb2.SERVER_SHUTDOWN,
                        "SERVER_SHUTDOWN broadcast")


if __name__ == "__main__":
    unittest.main(verbosity=2)
