"""test_reload.py DRUNC_BROKER: SIGHUP (systemctl reload) says what it
reloaded and which changed settings of the file need a restart."""

import re
import signal
import sys
import tempfile
import unittest

from broker_program import BrokerProgram

BROKER = sys.argv[1]


class ReloadTest(unittest.TestCase):
    def test_reload_names_what_needs_a_restart(self):
        with tempfile.TemporaryDirectory() as directory:
            broker = BrokerProgram(BROKER, directory, settings={"kill_timeout_s": 0.5})
            try:
                # Unchanged: the certificates part says what it did, nothing needs a restart.
                broker.process.send_signal(signal.SIGHUP)
                # (The broker thread logs the first, the main thread the second.)
                broker.wait_for_all(re.compile(r"SIGHUP: nothing to reload \(security.mode is \"none\"\)"),
                                    re.compile(r"SIGHUP: .*broker.json is as at start: nothing needs a restart"))

                broker.write_config({"kill_timeout_s": 2, "log_ring_lines": 10})
                broker.process.send_signal(signal.SIGHUP)
                restart = re.compile(r"SIGHUP: setting \w+ (changed|added) in .*broker.json: needs a restart to take effect")
                first, second = broker.wait_for(restart), broker.wait_for(restart)
                self.assertIn("setting kill_timeout_s changed", first)
                self.assertIn("setting log_ring_lines added", second)

                with open(broker.config, "w") as file:
                    file.write('{"kill_timeout_s": "soon"}')
                broker.process.send_signal(signal.SIGHUP)
                broker.wait_for(re.compile(r"SIGHUP: .* no longer loads, a restart would fail: .*kill_timeout_s"))
                # Still serving, and it stops as usual.
                self.assertIsNone(broker.process.poll())
            finally:
                self.assertEqual(broker.stop(), 0)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1])
