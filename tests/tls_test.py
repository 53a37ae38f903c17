#!/usr/bin/python3
"""TLS, mutual TLS, the token and health probes across real processes.

Generates a CA, a server certificate (SAN 127.0.0.1 and localhost), a client
certificate and a rogue CA's client certificate with `openssl` at test time,
then runs `ftb coordinator` with TLS and with mutual TLS and drives it with
the ftb CLI (submit, status, worker) and with Python grpcio (the standard
grpc.health.v1 protocol, stubs generated from tests/proto). Checks:

  - a TLS client (worker, submit, status) works; a plaintext client and a
    client trusting another CA fail; under mutual TLS a client without a
    certificate, or with one from another CA, is refused;
  - a missing token is UNAUTHENTICATED while the health service answers
    without one: SERVING after start, NOT_SERVING once shutdown begins;
  - GET /healthz on the metrics port of the coordinator and of a worker
    answers 200 (curl);
  - --max-submissions-per-minute refuses the third quick submission with
    RESOURCE_EXHAUSTED.

usage: tls_test.py FTB_BINARY SOURCE_DIR
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

FTB, SOURCE = sys.argv[1], sys.argv[2]
WORK = tempfile.mkdtemp(prefix="ftb-tls-")
TOKEN = "tls-test-token-6b1d0e"

SPEC = """name: tls
datasets:
  - {source: builtin, name: people, size: 2, seed: 3}
models:
  - {name: fixture, backend: test}
grid:
  epochs: [1, 2]
  seed: [0, 1, 2]
"""


def generate_stubs():
    out = os.path.join(WORK, "gen")
    os.makedirs(out)
    plugin = shutil.which("grpc_python_plugin")
    subprocess.run(["protoc", "-I", os.path.join(SOURCE, "tests", "proto"),
                    "--python_out", out, "--grpc_python_out", out,
                    "--plugin=protoc-gen-grpc_python=" + plugin,
                    "health.proto"], check=True)
    sys.path.insert(0, out)


generate_stubs()
import grpc  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402


def path(name):
    return os.path.join(WORK, name)


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_ca(name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=%s" % name, "-keyout", path(name + ".key"), "-out", path(name + ".pem"))


def make_cert(name, ca, cn, san=None):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % cn,
            "-keyout", path(name + ".key"), "-out", path(name + ".csr"))
    ext = path(name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
        if san:
            f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % san)
        else:
            f.write("extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", path(name + ".csr"), "-CA", path(ca + ".pem"),
            "-CAkey", path(ca + ".key"), "-CAcreateserial", "-days", "2", "-extfile", ext,
            "-out", path(name + ".pem"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read(name):
    with open(path(name), "rb") as f:
        return f.read()


def ftb(*args, env_token=False):
    env = dict(os.environ)
    env.pop("FTB_AUTH_TOKEN", None)
    env.pop("FTB_COORDINATOR", None)
    if env_token:
        env["FTB_AUTH_TOKEN"] = TOKEN
    return subprocess.run([FTB] + list(args), env=env, capture_output=True, text=True,
                          timeout=60)


def wait_health(channel, timeout=30):
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.time() + timeout
    while True:
        try:
            return stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def curl_status(port, uri):
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "http://127.0.0.1:%d%s" % (port, uri)], capture_output=True, text=True)
    return r.stdout.strip()


class Coordinator:
    def __init__(self, name, *extra):
        self.addr = "127.0.0.1:%d" % free_port()
        self.metrics_port = free_port()
        self.log_path = path(name + ".log")
        self.log = open(self.log_path, "w")
        with open(path("token"), "w") as f:
            f.write(TOKEN + "\n")
        self.proc = subprocess.Popen(
            [FTB, "coordinator", "--listen", self.addr, "--state", path(name + "-state"),
             "--metrics-listen", "127.0.0.1:%d" % self.metrics_port,
             "--auth-token-file", path("token")] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.log.close()


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        make_ca("ca")
        make_ca("rogue-ca")
        make_cert("server", "ca", "ftb-coordinator", san="IP:127.0.0.1,DNS:localhost")
        make_cert("client", "ca", "ftb-worker-1")
        make_cert("rogue-client", "rogue-ca", "intruder")

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("FTB_KEEP_TEST_DIR"):
            shutil.rmtree(WORK, ignore_errors=True)

    def tls_channel(self, addr, ca="ca", cert=None):
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(ca + ".pem"),
            private_key=read(cert + ".key") if cert else None,
            certificate_chain=read(cert + ".pem") if cert else None)
        return grpc.secure_channel(addr, creds)

    def test_tls_token_health_and_healthz(self):
        c = Coordinator("tls", "--tls-cert", path("server.pem"), "--tls-key", path("server.key"),
                        "--max-submissions-per-minute", "2")
        worker = None
        try:
            channel = self.tls_channel(c.addr)
            # Health needs no token.
            self.assertEqual(wait_health(channel).status,
                             health_pb2.HealthCheckResponse.SERVING)
            health = health_pb2_grpc.HealthStub(channel)
            self.assertEqual(health.Check(health_pb2.HealthCheckRequest(
                service="ftb.v1.Coordinator"), timeout=5).status,
                health_pb2.HealthCheckResponse.SERVING)
            self.assertEqual(curl_status(c.metrics_port, "/healthz"), "200")
            self.assertEqual(curl_status(c.metrics_port, "/metrics"), "200")

            tls = ["--coordinator", c.addr, "--tls-ca", path("ca.pem")]
            spec = path("tls.yaml")
            with open(spec, "w") as f:
                f.write(SPEC)
            # TLS + token (from the environment) works.
            r = ftb("submit", spec, *tls, env_token=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            campaign = r.stdout.strip()
            # TLS + token file works too.
            r = ftb("status", campaign, *tls, "--auth-token-file", path("token"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("cells 0/6 done", r.stdout)
            # No token: UNAUTHENTICATED, with a hint and never the token.
            r = ftb("status", *tls)
            self.assertEqual(r.returncode, 1)
            self.assertIn("requires a token", r.stderr)
            self.assertNotIn(TOKEN, r.stderr + r.stdout)
            # Plaintext client against a TLS server: fails.
            r = ftb("status", "--coordinator", c.addr, "--deadline", "3", env_token=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("unreachable", r.stderr)
            # A client trusting another CA: fails (the server is not verified).
            r = ftb("status", "--coordinator", c.addr, "--tls-ca", path("rogue-ca.pem"),
                    "--deadline", "3", env_token=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("unreachable", r.stderr)

            # Rate limit: the first submission used one of two; the next
            # goes through, the one after is refused.
            r = ftb("submit", spec, *tls, env_token=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = ftb("submit", spec, *tls, env_token=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("too many campaign submissions", r.stderr)
            second = ftb("status", *tls, env_token=True)
            self.assertEqual(len(second.stdout.strip().splitlines()), 2, second.stdout)

            # A TLS worker with the token runs every task; its /healthz answers.
            worker_metrics = free_port()
            wlog = open(path("tls-worker.log"), "w")
            env = dict(os.environ, FTB_AUTH_TOKEN=TOKEN)
            worker = subprocess.Popen(
                [FTB, "worker", "--coordinator", c.addr, "--tls-ca", path("ca.pem"),
                 "--backends", "test", "--slots", "2",
                 "--metrics-listen", "127.0.0.1:%d" % worker_metrics],
                stdout=wlog, stderr=subprocess.STDOUT, env=env)
            deadline = time.time() + 60
            while True:
                r = ftb("status", campaign, *tls, env_token=True)
                if "succeeded" in r.stdout or time.time() > deadline:
                    break
                time.sleep(0.3)
            self.assertIn("succeeded", r.stdout)
            self.assertIn("cells 6/6 done", r.stdout)
            self.assertEqual(curl_status(worker_metrics, "/healthz"), "200")

            # Shutdown: a health Watch opened before SIGTERM sees NOT_SERVING.
            stream = health.Watch(health_pb2.HealthCheckRequest(), timeout=20)
            first = next(stream)
            self.assertEqual(first.status, health_pb2.HealthCheckResponse.SERVING)
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
            worker = None
            c.proc.send_signal(signal.SIGTERM)
            statuses = []
            try:
                for msg in stream:
                    statuses.append(msg.status)
            except grpc.RpcError:
                pass  # the server went away after saying so
            self.assertIn(health_pb2.HealthCheckResponse.NOT_SERVING, statuses)
            c.proc.wait(timeout=30)
            self.assertEqual(c.proc.returncode, 0)
            channel.close()
        finally:
            if worker is not None:
                worker.kill()
                worker.wait()
            c.stop()

    def test_mutual_tls(self):
        c = Coordinator("mtls", "--tls-cert", path("server.pem"), "--tls-key", path("server.key"),
                        "--tls-client-ca", path("ca.pem"))
        try:
            channel = self.tls_channel(c.addr, cert="client")
            self.assertEqual(wait_health(channel).status,
                             health_pb2.HealthCheckResponse.SERVING)
            channel.close()
            mtls = ["--coordinator", c.addr, "--tls-ca", path("ca.pem"),
                    "--tls-cert", path("client.pem"), "--tls-key", path("client.key")]
            spec = path("mtls.yaml")
            with open(spec, "w") as f:
                f.write(SPEC)
            r = ftb("submit", spec, *mtls, env_token=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = ftb("status", *mtls, env_token=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(len(r.stdout.strip().splitlines()), 1)
            # No client certificate: the handshake is refused.
            r = ftb("status", "--coordinator", c.addr, "--tls-ca", path("ca.pem"),
                    "--deadline", "3", env_token=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("unreachable", r.stderr)
            # A certificate from another CA: refused.
            r = ftb("submit", spec, "--coordinator", c.addr, "--tls-ca", path("ca.pem"),
                    "--tls-cert", path("rogue-client.pem"), "--tls-key", path("rogue-client.key"),
                    "--deadline", "3", env_token=True)
            self.assertEqual(r.returncode, 1)
            # Same from Python, and health is refused too (no TLS session).
            bare = self.tls_channel(c.addr)
            with self.assertRaises(grpc.RpcError) as err:
                health_pb2_grpc.HealthStub(bare).Check(health_pb2.HealthCheckRequest(), timeout=3)
            self.assertEqual(err.exception.code(), grpc.StatusCode.UNAVAILABLE)
            bare.close()
            # Nothing the refused clients sent was stored.
            r = ftb("status", *mtls, env_token=True)
            self.assertEqual(len(r.stdout.strip().splitlines()), 1, r.stdout)
            # A client cert without --tls-ca is a usage error naming the flags.
            r = ftb("status", "--coordinator", c.addr, "--tls-cert", path("client.pem"),
                    "--tls-key", path("client.key"), env_token=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("--tls-ca", r.stderr)
        finally:
            c.stop()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
