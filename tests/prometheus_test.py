#!/usr/bin/python3
"""Metrics reach a real Prometheus server.

Starts Debian's `prometheus` on loopback (own config, temporary storage),
scraping an `ftb coordinator --metrics-listen` and an `ftb worker
--metrics-listen`; runs a small campaign on the `test` backend with a fixed
price per task; then asks Prometheus' HTTP API for the completed-task and
cost counters and checks they reached the expected values.

usage: prometheus_test.py FTB_BINARY

Exits 77 (registered as SKIP_RETURN_CODE, so ctest reports it skipped, not
passed) when prometheus is not installed, printing why.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

FTB = sys.argv[1]
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SKIP = 77            # SKIP_RETURN_CODE in tests/CMakeLists.txt
SEEDS = 20           # 20 training runs ...
PRICE = 0.25         # ... at $0.25 each
SPEC = """name: metrics
datasets:
  - {source: builtin, name: people, size: 2, seed: 1}
models:
  - name: fixture
    backend: test
    options: {sleep_ms_min: 10, sleep_ms_max: 30, cost_usd_per_task: %s}
grid:
  epochs: [1, 2]
  seed: [%s]
""" % (PRICE, ", ".join(str(s) for s in range(SEEDS)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MetricsInPrometheus(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ftb-prom-")
        self.procs = []
        self.coord = "127.0.0.1:%d" % free_port()
        self.coord_metrics = "127.0.0.1:%d" % free_port()
        self.worker_metrics = "127.0.0.1:%d" % free_port()
        self.prom = "127.0.0.1:%d" % free_port()

    def tearDown(self):
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, name, argv):
        log = open(os.path.join(self.dir, name + ".log"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def ftb(self, *args):
        return subprocess.run([FTB] + list(args), check=True, capture_output=True,
                              text=True).stdout

    def query(self, expr):
        url = "http://%s/api/v1/query?query=%s" % (self.prom, urllib.parse.quote(expr))
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        self.assertEqual(body["status"], "success", body)
        return body["data"]["result"]

    def wait_for_value(self, expr, want, timeout=90):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                result = self.query(expr)
                if result:
                    last = float(result[0]["value"][1])
                    if abs(last - want) < 1e-9:
                        return last
            except OSError:
                pass  # Prometheus still starting
            time.sleep(1)
        self.fail("%s: last value %s, want %s; prometheus log:\n%s" % (
            expr, last, want, open(os.path.join(self.dir, "prometheus.log")).read()[-3000:]))

    def test_completions_and_cost_reach_prometheus(self):
        self.start("coordinator", [FTB, "coordinator", "--listen", self.coord, "--state",
                                   os.path.join(self.dir, "state"),
                                   "--metrics-listen", self.coord_metrics])
        self.start("worker", [FTB, "worker", "--coordinator", self.coord, "--backends", "test",
                              "--slots", "2", "--metrics-listen", self.worker_metrics])
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ftb-coordinator
    static_configs: [{targets: ['%s']}]
  - job_name: ftb-worker
    static_configs: [{targets: ['%s']}]
""" % (self.coord_metrics, self.worker_metrics))
        self.start("prometheus", [PROMETHEUS, "--config.file", config,
                                  "--storage.tsdb.path", os.path.join(self.dir, "tsdb"),
                                  "--web.listen-address", self.prom])
        spec = os.path.join(self.dir, "metrics.yaml")
        with open(spec, "w") as f:
            f.write(SPEC)
        for _ in range(100):  # the coordinator may still be starting
            try:
                campaign = self.ftb("submit", spec, "--coordinator", self.coord).strip()
                break
            except subprocess.CalledProcessError:
                time.sleep(0.2)
        deadline = time.time() + 60
        while time.time() < deadline:
            status = json.loads(self.ftb("status", campaign, "--json", "--coordinator", self.coord))
            if status.get("state") == "CAMPAIGN_STATE_SUCCEEDED":
                break
            time.sleep(0.5)
        self.assertEqual(status.get("state"), "CAMPAIGN_STATE_SUCCEEDED", status)

        self.wait_for_value('sum(ftb_task_completions_total{kind="tune",backend="test"})', SEEDS)
        self.wait_for_value('sum(ftb_cost_usd_total{campaign="%s",backend="test",'
                            'model="fixture",kind="train"})' % campaign, SEEDS * PRICE)
        self.wait_for_value('ftb_cells{state="done"}', 2 * SEEDS)
        self.wait_for_value('sum(ftb_worker_events_total{event="completed"})', SEEDS)
        self.wait_for_value('ftb_workers_connected{role="tune"}', 1)
        # Both targets are up and scraped.
        up = {r["metric"]["job"]: r["value"][1] for r in self.query("up")}
        self.assertEqual(up, {"ftb-coordinator": "1", "ftb-worker": "1"})


if __name__ == "__main__":
    if not os.access(PROMETHEUS, os.X_OK):
        print("SKIP: prometheus not installed at %s (scripts/install-deps.sh --test "
              "installs it)" % PROMETHEUS)
        sys.exit(SKIP)
    unittest.main(argv=[sys.argv[0], "-v"])
