"""test_notify.py DRUNC_BROKER DRUNC_PM: drunc-broker under a fake systemd.

A unix datagram socket stands in for systemd's NOTIFY_SOCKET. The broker must
send READY=1 once, and only when its control endpoint answers (drunc-pm
describe succeeds at that moment), STOPPING=1 on SIGTERM before it exits 0,
and no READY=1 at all when it cannot bind its endpoint (exit 2)."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BROKER, PM = sys.argv[1], sys.argv[2]
TIMEOUT = 30.0  # seconds: generous, the machine may be busy


class FakeSystemd:
    def __init__(self, directory):
        self.path = os.path.join(directory, "notify")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(self.path)

    def receive(self, timeout=TIMEOUT):
        """The next notification as a dict of its assignments, or None after timeout."""
        self.socket.settimeout(timeout)  # 0: only what is already queued
        try:
            data = self.socket.recv(65536).decode()
        except (socket.timeout, BlockingIOError):
            return None
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def close(self):
        self.socket.close()


def start_broker(directory, notify_path, control="tcp://127.0.0.1:*"):
    config = os.path.join(directory, "broker.json")
    with open(config, "w") as file:
        file.write('{"name": "notify-test", "control_endpoint": "%s", "events_endpoint": "tcp://127.0.0.1:*"}' % control)
    environment = dict(os.environ, NOTIFY_SOCKET=notify_path)
    return subprocess.Popen([BROKER, "--config", config], env=environment, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class NotifyTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.systemd = FakeSystemd(self.directory.name)
        self.broker = None

    def tearDown(self):
        if self.broker and self.broker.poll() is None:
            self.broker.kill()
            self.broker.wait()
        self.systemd.close()
        self.directory.cleanup()

    def test_ready_once_serving_then_stopping(self):
        self.broker = start_broker(self.directory.name, self.systemd.path)
        ready = self.systemd.receive()
        self.assertIsNotNone(ready, "no notification within %s s" % TIMEOUT)
        self.assertEqual(ready.get("READY"), "1", ready)
        # STATUS says where it serves; at this moment the control endpoint answers.
        status = ready.get("STATUS", "")
        self.assertTrue(status.startswith("serving on tcp://127.0.0.1:"), status)
        control = status.split()[2].rstrip(",")
        describe = subprocess.run([PM, "--broker", control, "--timeout", "10", "describe"],
                                  capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(describe.returncode, 0, describe.stderr)
        self.assertIn("notify-test", describe.stdout)

        self.broker.send_signal(signal.SIGTERM)
        stopping = self.systemd.receive()
        self.assertIsNotNone(stopping, "no STOPPING=1 after SIGTERM")
        self.assertEqual(stopping.get("STOPPING"), "1", stopping)
        self.assertEqual(self.broker.wait(timeout=TIMEOUT), 0)
        # Nothing more (it has exited, so all it sent is queued): READY=1 came once.
        self.assertIsNone(self.systemd.receive(timeout=0))

    def test_no_ready_when_it_cannot_serve(self):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        try:
            control = "tcp://127.0.0.1:%d" % taken.getsockname()[1]
            self.broker = start_broker(self.directory.name, self.systemd.path, control)
            self.assertEqual(self.broker.wait(timeout=TIMEOUT), 2)
        finally:
            taken.close()
        with self.broker.stderr:
            self.assertIn(b"Address already in use", self.broker.stderr.read())
        self.assertIsNone(self.systemd.receive(timeout=0))


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1])
