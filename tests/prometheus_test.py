#!/usr/bin/python3
"""Metrics reach a real Prometheus server.

Starts Debian's `prometheus` on loopback (own config, temporary storage),
scraping an `ftb coordinator --metrics-listen` and an `ftb worker
--metrics-listen`; runs a small campaign on the `test` backend with a fixed
price per task, whose first attempts fail (so the error panels have data);
while it runs, every query of every panel of deploy/grafana/ftb-dashboard.json
must return data at least once (the ETA panel while cells are pending and
finishing); then asks Prometheus' HTTP API for the completed-task and cost
counters and checks they reached the expected values; last, a cancelled
campaign's cells are counted as cancelled, not pending.

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
DASHBOARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy", "grafana",
                         "ftb-dashboard.json")
SEEDS = 24           # 24 training runs ...
PRICE = 0.25         # ... at $0.25 each
SPEC = """name: metrics
datasets:
  - {source: builtin, name: people, size: 2, seed: 1}
models:
  - name: fixture
    backend: test
    options: {sleep_ms_min: 300, sleep_ms_max: 500, cost_usd_per_task: %s,
              fail_first_attempts: 1}
grid:
  epochs: [1, 2]
  seed: [%s]
retry: {max_attempts: 3, initial_backoff_seconds: 0.2}
""" % (PRICE, ", ".join(str(s) for s in range(SEEDS)))
# Nobody serves `local` here: it stays pending until cancelled.
UNSERVED_SPEC = """name: unserved
datasets:
  - {source: builtin, name: people, size: 2, seed: 1}
models:
  - {name: tiny, backend: local}
grid:
  epochs: [1, 2, 3]
  seed: [0, 1]
"""


def dashboard_queries():
    """(panel title, [expr, ...]) of every panel of the Grafana dashboard."""
    with open(DASHBOARD) as f:
        board = json.load(f)
    return [(p["title"], [t["expr"] for t in p.get("targets", []) if "expr" in t])
            for p in board["panels"] if p.get("targets")]


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
        # While it runs: every panel's queries, until each panel has shown data.
        missing = dict(dashboard_queries())
        self.assertIn("ETA (hours, at the last hour's pace)", missing)
        eta = None
        deadline = time.time() + 90
        while time.time() < deadline:
            for title, exprs in list(missing.items()):
                try:
                    results = [self.query(e) for e in exprs]
                except OSError:
                    continue  # Prometheus still starting
                if any(results):
                    if title.startswith("ETA"):
                        eta = float(results[0][0]["value"][1])
                    del missing[title]
            status = json.loads(self.ftb("status", campaign, "--json", "--coordinator", self.coord))
            if status.get("state") == "CAMPAIGN_STATE_SUCCEEDED" and not missing:
                break
            time.sleep(0.5)
        self.assertEqual(status.get("state"), "CAMPAIGN_STATE_SUCCEEDED", status)
        self.assertEqual(missing, {}, "dashboard panels that never showed data")
        # rate(...[1h]) divides by the whole hour, so in a campaign's first
        # hour the ETA overstates the time left; it must be a finite positive
        # number of hours (it was "No data" before).
        self.assertGreater(eta, 0)
        self.assertLess(eta, 1e6, "ETA in hours")

        self.wait_for_value('sum(ftb_task_completions_total{kind="tune",backend="test"})', SEEDS)
        self.wait_for_value('sum(ftb_cost_usd_total{campaign="%s",backend="test",'
                            'model="fixture",kind="train"})' % campaign, SEEDS * PRICE)
        self.wait_for_value('ftb_cells{state="done"}', 2 * SEEDS)
        self.wait_for_value('sum(ftb_worker_events_total{event="completed"})', SEEDS)
        self.wait_for_value('ftb_workers_connected{role="tune"}', 1)
        # Both targets are up and scraped.
        up = {r["metric"]["job"]: r["value"][1] for r in self.query("up")}
        self.assertEqual(up, {"ftb-coordinator": "1", "ftb-worker": "1"})

        # A cancelled campaign's cells are no longer pending (they kept the
        # ETA panel counting work that will never run).
        unserved = os.path.join(self.dir, "unserved.yaml")
        with open(unserved, "w") as f:
            f.write(UNSERVED_SPEC)
        other = self.ftb("submit", unserved, "--coordinator", self.coord).strip()
        self.wait_for_value('ftb_cells{state="pending"}', 6)
        self.ftb("cancel", other, "--coordinator", self.coord)
        self.wait_for_value('ftb_cells{state="pending"}', 0)
        self.wait_for_value('ftb_cells{state="cancelled"}', 6)
        self.wait_for_value('ftb_campaigns{state="cancelled"}', 1)
        self.wait_for_value('ftb_campaigns{state="paused_provider"}', 0)


if __name__ == "__main__":
    if not os.access(PROMETHEUS, os.X_OK):
        print("SKIP: prometheus not installed at %s (scripts/install-deps.sh --test "
              "installs it)" % PROMETHEUS)
        sys.exit(SKIP)
    unittest.main(argv=[sys.argv[0], "-v"])
