"""The classes protoc generates from proto/, as subpackages ``druncschema`` and
``drunc_zmq`` of this package.

An installed package (``pip install ./python``) has them next to this file:
setup.py generated them at build time. When the package runs from a source
checkout instead (``PYTHONPATH=python``, as the interop tests do), they are
generated on first import into a cache directory keyed by a hash of the
.proto files and protoc's version ($DRUNC_ZMQ_CACHE, else
$XDG_CACHE_HOME/drunc-zmq, else ~/.cache/drunc-zmq), and that directory is
added to this package's search path.
"""

import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def _built_here():
    return all(os.path.isfile(os.path.join(_HERE, package, "__init__.py")) for package in ("druncschema", "drunc_zmq"))


def _cache_root():
    explicit = os.environ.get("DRUNC_ZMQ_CACHE")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "drunc-zmq")


if not _built_here():
    from .. import _codegen

    _proto_dir = _codegen.find_proto_dir(os.path.join(_HERE, ".."))
    _protoc = _codegen.find_protoc()
    _target = os.path.join(_cache_root(), _codegen.fingerprint(_proto_dir, _protoc))
    if not all(os.path.isfile(os.path.join(_target, package, "__init__.py")) for package in _codegen.PACKAGES):
        _codegen.generate(_target, _proto_dir, _protoc, replace=False)
    __path__.append(_target)  # noqa: F821 (a package's __path__)
