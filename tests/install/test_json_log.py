"""test_json_log.py DRUNC_BROKER DRUNC_PM: with --log-format json every line
the broker logs is one JSON object with time (RFC 3339, with its UTC offset),
level and message, through a start, requests (logged down to debug level) and a stop; text
stays the default."""

import json
import re
import subprocess
import sys
import tempfile
import unittest

from broker_program import BrokerProgram, TIMEOUT

BROKER, PM = sys.argv[1], sys.argv[2]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$")
LEVELS = {"trace", "debug", "info", "warning", "error", "critical"}


class JsonLogTest(unittest.TestCase):
    def run_broker(self, extra_args):
        with tempfile.TemporaryDirectory() as directory:
            broker = BrokerProgram(BROKER, directory, extra_args)
            try:
                for command in (["describe"], ["ps"], ["boot", "--name", "json-\u00e9", "--", "true"]):
                    subprocess.run([PM, "--broker", broker.control, "--timeout", "10", *command],
                                   capture_output=True, timeout=TIMEOUT)
            finally:
                self.assertEqual(broker.stop(), 0)
            return broker

    def test_every_line_is_a_json_object(self):
        broker = self.run_broker(["--log-format", "json", "--log-level", "debug"])
        self.assertEqual("".join(broker.stderr), "")
        self.assertGreater(len(broker.stdout), 3)
        for line in broker.stdout:
            record = json.loads(line)
            self.assertEqual(list(record)[:3], ["time", "level", "message"], line)
            self.assertRegex(record["time"], RFC3339)
            self.assertIn(record["level"], LEVELS)
        messages = [json.loads(line)["message"] for line in broker.stdout]
        self.assertTrue(any("serving on tcp://127.0.0.1:" in message for message in messages), messages)
        self.assertTrue(any("booted json-\u00e9 " in message for message in messages), messages)

    def test_text_is_the_default(self):
        broker = self.run_broker([])
        self.assertTrue(broker.stdout)
        self.assertFalse(any(line.startswith("{") for line in broker.stdout), broker.stdout)

    def test_unknown_format_is_a_usage_error(self):
        result = subprocess.run([BROKER, "--log-format", "xml"], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--log-format", result.stderr)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1])
