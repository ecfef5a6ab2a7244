"""What the Python tests share: a running drunc-broker program, and the
messages they build. Imported by test_interop.py and test_broker_program.py
once they have put BUILD_DIR/python on sys.path.

Only the standard library and google.protobuf are used. Every wait has a
deadline, so that a broken broker fails a test instead of hanging it.
"""

import getpass
import os
import re
import select
import signal
import subprocess
import threading
import time

from google.protobuf import any_pb2

from druncschema import process_manager_pb2

READY_LINE = re.compile(r"serving on (tcp://\S+), events on (tcp://\S+)")
START_TIMEOUT = 10.0   # seconds: start until the "serving on" line
EXIT_TIMEOUT = 15.0    # seconds: from a stop signal to the exit


class BrokerProcess:
    """A running drunc-broker; its stdout is read with select and a deadline
    until the "serving on" line, then drained in the background (as is its
    stderr), so that the broker never blocks on a full pipe."""

    def __init__(self, broker, config_path):
        self.stdout_lines = []
        self.stderr_chunks = []
        self.threads = []
        self.process = subprocess.Popen([broker, "-c", config_path], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._drain(self.process.stderr, self.stderr_chunks.append)
        self.control, self.events, rest = self._wait_ready()
        self._drain(self.process.stdout, self.stdout_lines.append, rest)

    def _wait_ready(self):
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + START_TIMEOUT
        buffer = b""
        while True:
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                text = line.decode("utf-8", "replace")
                self.stdout_lines.append(text + "\n")
                match = READY_LINE.search(text)
                if match:
                    return match.group(1), match.group(2), buffer
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("drunc-broker printed no 'serving on' line within %.0f s; stdout:\n%s"
                                     % (START_TIMEOUT, self.stdout_text()))
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                self.process.wait(timeout=START_TIMEOUT)
                raise AssertionError("drunc-broker exited (status %s) before serving; stdout:\n%s\nstderr:\n%s"
                                     % (self.process.returncode, self.stdout_text(), self.stderr_text()))
            buffer += chunk

    def _drain(self, stream, sink, first=b""):
        def run():
            if first:
                sink(first.decode("utf-8", "replace"))
            for chunk in iter(lambda: stream.read1(65536), b""):
                sink(chunk.decode("utf-8", "replace"))
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def stdout_text(self):
        return "".join(self.stdout_lines)

    def stderr_text(self):
        return "".join(self.stderr_chunks)

    def send_signal(self, number):
        self.process.send_signal(number)

    def wait_exit(self, timeout=EXIT_TIMEOUT):
        """The exit status; fails (and leaves the cleanup to stop()) if it takes longer."""
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("drunc-broker did not exit within %.0f s" % timeout)
        for thread in self.threads:
            thread.join(timeout=5)
        return status

    def stop(self):
        """SIGTERM, then SIGKILL if it does not exit; always safe to call again."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=EXIT_TIMEOUT)
        for thread in self.threads:
            thread.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()


def pack(message):
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def boot_request(name, session, argv, hosts=("localhost",)):
    boot = process_manager_pb2.BootRequest()
    metadata = boot.process_description.metadata
    metadata.name = name
    metadata.session = session
    metadata.user = getpass.getuser()
    command = boot.process_description.executable_and_arguments.add()
    command.exec = argv[0]
    command.args.extend(argv[1:])
    boot.process_restriction.allowed_hosts.extend(hosts)
    return boot
