"""CURVE keys and handshake monitoring (docs/PROTOCOL.md, section 7)."""

import os
import struct
import time
from typing import List, Optional, Tuple, Union

import zmq
import zmq.auth

from .errors import HandshakeError

KeyPair = Tuple[bytes, bytes]
Certificate = Union[str, "os.PathLike[str]", KeyPair, None]

HANDSHAKE_SUCCEEDED = zmq.EVENT_HANDSHAKE_SUCCEEDED
HANDSHAKE_FAILURES = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "the broker at %s refused this key",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "the handshake with %s failed (a wrong server key, or CURVE on one side only)",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "the handshake with %s failed: security mechanisms differ "
                                         "(CURVE on one side only)",
}
EVENT_NAMES = {getattr(zmq, name): name for name in dir(zmq) if name.startswith("EVENT_") and name != "EVENT_ALL"}


def load_key_pair(certificate: Certificate) -> Optional[KeyPair]:
    """(public, secret) Z85 keys from a secret certificate file (zmq.auth or
    ``drunc-pm keygen`` format), or a (public, secret) pair as is."""
    if certificate is None:
        return None
    if isinstance(certificate, tuple):
        return certificate
    public, secret = zmq.auth.load_certificate(os.fspath(certificate))
    if secret is None:
        raise ValueError("%s holds no secret key: give the secret certificate (NAME.key_secret)" % certificate)
    return public, secret


def load_server_key(server_key: Union[str, bytes, "os.PathLike[str]", None]) -> Optional[bytes]:
    """The broker's public key: a 40-character Z85 key, or a certificate file."""
    if server_key is None:
        return None
    if isinstance(server_key, bytes) and len(server_key) == 40:
        return server_key
    text = os.fspath(server_key)
    if len(text) == 40 and not os.path.exists(text):
        return text.encode()
    public, _ = zmq.auth.load_certificate(text)
    return public


def apply_curve(socket: zmq.Socket, certificate: Certificate, server_key) -> bool:
    """Sets the CURVE options on a socket before it connects; False without keys."""
    pair = load_key_pair(certificate)
    server = load_server_key(server_key)
    if pair is None and server is None:
        return False
    if pair is None or server is None:
        raise ValueError("CURVE needs both this client's certificate and the broker's public key")
    socket.curve_publickey, socket.curve_secretkey = pair
    socket.curve_serverkey = server
    return True


class HandshakeMonitor:
    """Watches a socket's monitor events, so that a refused key fails at once
    instead of waiting out a timeout. ``events`` is every (event, value) seen."""

    def __init__(self, socket: zmq.Socket, endpoint: str) -> None:
        self.endpoint = endpoint
        self.socket = socket.get_monitor_socket()
        self.events: List[Tuple[int, int]] = []
        self.failure: Optional[HandshakeError] = None
        self.succeeded = False

    def read(self, raise_failure: bool = True) -> None:
        """Reads the monitor events waiting; raises HandshakeError on a failure
        before any success (unless raise_failure is false)."""
        while self.socket.poll(0):
            frames = self.socket.recv_multipart()
            event, value = struct.unpack("=Hi", frames[0][:6])
            self.events.append((event, value))
            if event == HANDSHAKE_SUCCEEDED:
                self.succeeded = True
                self.failure = None
            elif event in HANDSHAKE_FAILURES and not self.succeeded:
                self.failure = HandshakeError(HANDSHAKE_FAILURES[event] % self.endpoint,
                                              EVENT_NAMES.get(event, str(event)), value)
        if self.failure is not None and raise_failure:
            raise self.failure

    def wait(self, timeout: float) -> Tuple[int, int]:
        """The first handshake outcome, as (event, value), within timeout: event
        is zmq.EVENT_HANDSHAKE_SUCCEEDED or a zmq.EVENT_HANDSHAKE_FAILED_*
        (EVENT_NAMES has their names), value 400 for a refused key."""
        deadline = time.monotonic() + timeout
        while True:
            for event, value in self.events:
                if event == HANDSHAKE_SUCCEEDED or event in HANDSHAKE_FAILURES:
                    return event, value
            left = deadline - time.monotonic()
            if left <= 0 or not self.socket.poll(left * 1000):
                from .errors import TimeoutError
                raise TimeoutError("no handshake with %s within %.1f s; monitor events: %s"
                                   % (self.endpoint, timeout, self.names()))
            self.read(raise_failure=False)

    def names(self) -> List[Tuple[str, int]]:
        return [(EVENT_NAMES.get(event, str(event)), value) for event, value in self.events]

    def close(self, owner: zmq.Socket) -> None:
        try:
            owner.disable_monitor()
        except zmq.ZMQError:
            pass
        self.socket.close(linger=0)
