"""What the Python tests share: a running drunc-broker program, and the
messages they build (with the drunc_zmq package of python/, which setup_paths
puts on sys.path). Imported by the tests of this directory.

Only the standard library and the drunc_zmq package are used. Every wait has a
deadline, so that a broken broker fails a test instead of hanging it.
"""

import os
import re
import select
import signal
import subprocess
import threading
import time

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def setup_paths(argv):
    """BUILD_DIR from argv[1] (removed from it), the drunc_zmq package of the
    source tree made importable (its classes generated from proto/ into a cache
    on first import, docs in python/README.md). Returns BUILD_DIR."""
    import sys
    if len(argv) < 2 or argv[1].startswith("-"):
        sys.exit("usage: %s BUILD_DIR [unittest options]" % argv[0])
    build_dir = os.path.abspath(argv[1])
    del argv[1]
    sys.path.insert(0, os.path.join(SOURCE_DIR, "python"))
    # The generated classes go into the build directory, not the user's cache.
    os.environ.setdefault("DRUNC_ZMQ_CACHE", os.path.join(build_dir, "drunc_zmq-cache"))
    return build_dir


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
    from drunc_zmq import pack as package_pack
    return package_pack(message)


def boot_request(name, session, argv, hosts=("localhost",)):
    from drunc_zmq import boot_request as package_boot_request
    return package_boot_request(name, argv, session=session, hosts=hosts)
