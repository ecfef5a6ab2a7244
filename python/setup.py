"""Build hook: the protobuf classes are generated from ../proto with protoc
while the package is built (build_py), into drunc_zmq/_generated/ of the
wheel. Everything else is declared in pyproject.toml.

protoc: $PROTOC or the one on PATH (Debian: protobuf-compiler).
proto/: $DRUNC_ZMQ_PROTO_DIR or ../proto (the repository's; `pip install ./python`
builds in place, so it is found).
"""

import importlib.util
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def _codegen():
    spec = importlib.util.spec_from_file_location("_drunc_zmq_codegen", os.path.join(HERE, "drunc_zmq", "_codegen.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithProtoc(build_py):
    def run(self):
        super().run()
        codegen = _codegen()
        proto_dir = codegen.find_proto_dir(HERE)
        target = os.path.join(self.build_lib, "drunc_zmq", "_generated")
        self.announce("generating drunc_zmq._generated from %s with protoc" % proto_dir, level=2)
        codegen.generate(target, proto_dir)


setup(cmdclass={"build_py": BuildPyWithProtoc})
