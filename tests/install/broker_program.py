"""A drunc-broker program for the tests of this directory: started on free
ports with a configuration file, its stdout (the log) read line by line with
deadlines; standard library only."""

import os
import queue
import re
import signal
import subprocess
import threading
import time

TIMEOUT = 30.0  # seconds: generous, the machine may be busy
SERVING = re.compile(r"serving on (tcp://[^ ,\"]+)")


class BrokerProgram:
    def __init__(self, broker, directory, extra_args=(), settings=None):
        self.config = os.path.join(directory, "broker.json")
        self.write_config(settings or {})
        self.process = subprocess.Popen([broker, "--config", self.config, *extra_args], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.stdout = []
        self.stderr = []
        self.readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.stdout, True), daemon=True),
                        threading.Thread(target=self._read, args=(self.process.stderr, self.stderr, False), daemon=True)]
        for reader in self.readers:
            reader.start()
        self.control = SERVING.search(self.wait_for(SERVING)).group(1)

    def write_config(self, settings):
        text = '{"name": "test-broker", "control_endpoint": "tcp://127.0.0.1:*", ' \
               '"events_endpoint": "tcp://127.0.0.1:*"%s}' % "".join(
                   ', "%s": %s' % (key, value) for key, value in settings.items())
        with open(self.config, "w") as file:
            file.write(text)

    def _read(self, stream, kept, to_queue):
        for line in stream:
            kept.append(line)
            if to_queue:
                self.lines.put(line)
        if to_queue:
            self.lines.put(None)

    def wait_for(self, pattern):
        """The next stdout line matching pattern (a compiled regex); fails after TIMEOUT."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("no log line matching %r within %s s" % (pattern.pattern, TIMEOUT))
            if line is None:
                raise AssertionError("drunc-broker exited (%s) before a line matching %r: %s" % (
                    self.process.wait(), pattern.pattern, "".join(self.stderr)))
            if pattern.search(line):
                return line

    def wait_for_all(self, *patterns):
        """The next stdout lines matching each of patterns, in whatever order
        they come (lines from different threads); fails after TIMEOUT."""
        waiting = list(patterns)
        found = {}
        combined = re.compile("|".join("(?:%s)" % pattern.pattern for pattern in waiting))
        while waiting:
            line = self.wait_for(combined)
            for pattern in waiting:
                if pattern.search(line):
                    found[pattern] = line
                    waiting.remove(pattern)
                    break
        return [found[pattern] for pattern in patterns]

    def stop(self):
        """SIGTERM; returns the exit status once the whole log is read."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            for reader in self.readers:
                reader.join(timeout=TIMEOUT)
            self.process.stdout.close()
            self.process.stderr.close()
