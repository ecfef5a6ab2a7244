#!/usr/bin/python3
"""`pip install` of the drunc_zmq package (python/) into a fresh venv, as
python/README.md documents it, with Debian's pip and setuptools and no network.

Usage: /usr/bin/python3 tests/interop/test_pip_install.py BUILD_DIR [unittest options]
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from broker_process import SOURCE_DIR, setup_paths

BUILD_DIR = setup_paths(sys.argv)


class PipInstallTest(unittest.TestCase):
    def test_pip_install_into_a_venv(self):
        """A venv with the system's pyzmq and protobuf, `pip install
        --no-build-isolation --no-index ./python`, then imports outside the source
        tree: the classes generated at build time are in the installed package.

        The venv is made --without-pip and pip run as `venv/bin/python -m pip`: the
        same Debian pip (23.0.1) that `venv/bin/pip` would be, seen through the
        system site packages, without the minute ensurepip can take on a loaded
        machine."""
        directory = tempfile.mkdtemp(prefix="drunc-package-venv-")
        self.addCleanup(shutil.rmtree, directory, True)
        venv = os.path.join(directory, "venv")
        python = os.path.join(venv, "bin", "python")
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], check=True,
                       timeout=120)
        # A copy of python/ and proto/, so that the build leaves nothing in the source tree.
        source = os.path.join(directory, "src")
        shutil.copytree(os.path.join(SOURCE_DIR, "python"), os.path.join(source, "python"),
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        shutil.copytree(os.path.join(SOURCE_DIR, "proto"), os.path.join(source, "proto"))
        environment = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
        for name in ("DRUNC_ZMQ_CACHE", "DRUNC_ZMQ_PROTO_DIR", "PYTHONPATH"):
            environment.pop(name, None)
        result = subprocess.run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index", "./python"],
                                cwd=source, capture_output=True, text=True, timeout=600, env=environment)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        # The source copy goes away: the installed package must stand alone.
        shutil.rmtree(source)
        check = ("import os, drunc_zmq, drunc_zmq.aio, drunc_zmq.driver\n"
                 "from drunc_zmq.pb import ProcessQuery\n"
                 "import drunc_zmq._generated.druncschema as generated\n"
                 "print(os.path.dirname(generated.__file__))\n"
                 "print(ProcessQuery(names=['x']).SerializeToString())\n"
                 "print(drunc_zmq.topic('log', 'a/b'))\n")
        result = subprocess.run([python, "-c", check], cwd=directory, capture_output=True, text=True, timeout=120,
                                env=environment)
        self.assertEqual(result.returncode, 0, result.stderr)
        generated, serialized, topic = result.stdout.splitlines()
        self.assertTrue(generated.startswith(venv), "the generated classes are not in the installed package: "
                        + generated)
        self.assertEqual(serialized, "b'\\x12\\x01x'")
        self.assertEqual(topic, "log/a%2Fb/")
        result = subprocess.run([python, "-m", "pip", "show", "drunc-zmq"], capture_output=True, text=True,
                                timeout=120, env=environment)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Requires: protobuf, pyzmq", result.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
