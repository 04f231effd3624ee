"""A TLS failure is "nothing was sent" only when the server's certificate was refused at the handshake.
Any other TLS failure may come after the request was delivered, so the job may exist: DubDash must look
it up before sending again, never send it twice. A real TLS server on loopback, with a certificate made
here, plays Chamelaion's side."""

import datetime
import socket
import ssl
import threading

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from submissions import chamelaion

# A TLS application-data record whose contents cannot decrypt: the client fails reading the answer.
BROKEN_RECORD = b"\x17\x03\x03\x00\x20" + b"\x00" * 32


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "cert.pem", folder / "key.pem"


class TlsServer:
    """Accepts one connection, completes the handshake, reads the request, then answers a broken record."""

    def __init__(self, certificate):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*map(str, certificate))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        raw, _ = self.listener.accept()
        raw_copy = raw.dup()  # the same connection, below TLS (wrapping takes `raw` over)
        with raw, raw_copy:
            try:
                tls = self.context.wrap_socket(raw, server_side=True)
            except ssl.SSLError:
                return  # the client refused the certificate: nothing is read
            while b"\r\n\r\n" not in self.received:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                self.received += chunk
            raw_copy.sendall(BROKEN_RECORD)
            tls.close()


def client(server, certificate, *, trusted: bool) -> chamelaion.ChamelaionClient:
    session = requests.Session()
    session.trust_env = False  # a CA bundle named in the environment would replace the one chosen here
    session.verify = str(certificate[0]) if trusted else True
    return chamelaion.ChamelaionClient(
        base_url=f"https://localhost:{server.port}/api", api_key="k", connect_timeout=2, read_timeout=2, session=session
    )


def test_a_tls_failure_after_the_request_arrived_may_have_created_the_job(certificate):
    server = TlsServer(certificate)
    with pytest.raises(chamelaion.Unreachable) as failure:
        client(server, certificate, trusted=True).generate(
            video_url="https://cdn.example.com/a.mp4", audio_url="https://cdn.example.com/a.wav", reference_id="ep1-de"
        )
    server.thread.join(timeout=5)
    assert b"POST /api/v1/lipsync/generate" in server.received  # it did arrive
    assert failure.value.may_have_reached_server and failure.value.retryable


def test_a_refused_certificate_proves_nothing_was_sent(certificate):
    server = TlsServer(certificate)
    with pytest.raises(chamelaion.Unreachable) as failure:
        client(server, certificate, trusted=False).generate(
            video_url="https://cdn.example.com/a.mp4", audio_url="https://cdn.example.com/a.wav", reference_id="ep1-de"
        )
    server.thread.join(timeout=5)
    assert server.received == b""
    assert not failure.value.may_have_reached_server and "certificate" in failure.value.detail
