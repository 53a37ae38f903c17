#!/usr/bin/python3
"""The coordinator API from a client we did not write: Python grpcio.

Generates Python stubs from proto/ with protoc and grpc_python_plugin (Debian
packages protobuf-compiler, protobuf-compiler-grpc), starts a real
`ftb coordinator` on loopback, then submits a campaign, reads its status and
checks that malformed requests get INVALID_ARGUMENT. Run by ctest with
Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf).

usage: client_test.py FTB_BINARY SOURCE_DIR
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
WORK = tempfile.mkdtemp(prefix="ftb-py-")


def generate_stubs():
    out = os.path.join(WORK, "gen")
    os.makedirs(out)
    plugin = shutil.which("grpc_python_plugin")
    protos = [os.path.join("ftb/v1", p) for p in
              ("dataset.proto", "campaign.proto", "state.proto", "coordinator.proto")]
    subprocess.run(["protoc", "-I", os.path.join(SOURCE, "proto"),
                    "--python_out", out, "--grpc_python_out", out,
                    "--plugin=protoc-gen-grpc_python=" + plugin] + protos, check=True)
    sys.path.insert(0, out)


generate_stubs()
import grpc  # noqa: E402
from ftb.v1 import coordinator_pb2, coordinator_pb2_grpc, state_pb2  # noqa: E402

SPEC = """name: from-python
datasets:
  - {source: builtin, name: people, size: 3, seed: 4}
models:
  - {name: fixture, backend: test}
grid:
  epochs: [1, 5]
  seed: [0, 1, 2]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CoordinatorFromPython(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.addr = "127.0.0.1:%d" % free_port()
        cls.log = open(os.path.join(WORK, "coordinator.log"), "w")
        cls.proc = subprocess.Popen(
            [FTB, "coordinator", "--listen", cls.addr, "--state", os.path.join(WORK, "state")],
            stdout=cls.log, stderr=subprocess.STDOUT)
        cls.channel = grpc.insecure_channel(cls.addr)
        grpc.channel_ready_future(cls.channel).result(timeout=30)
        cls.stub = coordinator_pb2_grpc.CoordinatorStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.proc.send_signal(signal.SIGTERM)
        cls.proc.wait(timeout=30)
        cls.log.close()
        shutil.rmtree(WORK, ignore_errors=True)

    def test_submit_then_status(self):
        resp = self.stub.SubmitCampaign(
            coordinator_pb2.SubmitCampaignRequest(spec_yaml=SPEC, spec_filename="py.yaml"),
            timeout=10)
        self.assertTrue(resp.campaign_id)
        self.assertEqual(resp.cells, 6)   # 2 epochs x 3 seeds
        self.assertEqual(resp.tasks, 3)   # one training run per seed
        got = self.stub.GetCampaign(
            coordinator_pb2.GetCampaignRequest(campaign_id=resp.campaign_id), timeout=10)
        self.assertEqual(got.progress.name, "from-python")
        self.assertEqual(got.progress.state, state_pb2.CAMPAIGN_STATE_RUNNING)
        self.assertEqual(got.progress.cells_total, 6)
        self.assertEqual(got.progress.tasks_pending, 3)
        self.assertEqual(list(got.spec.grid.epochs), [1, 5])
        listed = self.stub.ListCampaigns(coordinator_pb2.ListCampaignsRequest(), timeout=10)
        self.assertIn(resp.campaign_id, [c.campaign_id for c in listed.campaigns])

    def test_malformed_spec_is_invalid_argument_with_location(self):
        with self.assertRaises(grpc.RpcError) as err:
            self.stub.SubmitCampaign(coordinator_pb2.SubmitCampaignRequest(
                spec_yaml=SPEC.replace("epochs: [1, 5]", "epochs: [1, ten]"),
                spec_filename="py.yaml"), timeout=10)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn('py.yaml:7:15: grid.epochs: expected a list of non-negative integers (0 = the base model), got "ten"',
                      err.exception.details())

    def test_malformed_worker_requests_are_rejected(self):
        with self.assertRaises(grpc.RpcError) as err:
            self.stub.LeaseTasks(coordinator_pb2.LeaseTasksRequest(max_tasks=1), timeout=10)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(err.exception.details(), "worker_id: required")
        with self.assertRaises(grpc.RpcError) as err:
            self.stub.GetCampaign(coordinator_pb2.GetCampaignRequest(campaign_id="nope"),
                                  timeout=10)
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)
        # The server is still up and answering.
        self.stub.ListCampaigns(coordinator_pb2.ListCampaignsRequest(), timeout=10)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
