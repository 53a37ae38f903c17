#!/usr/bin/python3
"""A campaign on the fake OpenAI service survives SIGKILLs without paying twice.

Starts tests/fakes/fake_openai.py, an `ftb coordinator` (RocksDB state), a
tune worker offering the `openai` backend and a judge worker, and submits a
campaign of two training runs (epochs 1, 3, 5: two provider jobs each). While
the jobs run, the tune worker is SIGKILLed and restarted; later the
coordinator is SIGKILLed and restarted on the same state. Then checks:

  - the campaign succeeds;
  - exactly one training file per run and one job per planned job were
    created at the provider (the fake counts billable calls);
  - a chat completion was asked again only if it may have been in flight at a
    kill (answers are cached as they arrive);
  - the reported cost is positive and matches usage-based pricing bounds;
  - the worker's Prometheus endpoint counts provider requests;
  - the API key appears nowhere in the state directory or any log.

usage: openai_campaign_test.py FTB_BINARY SOURCE_DIR
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
import urllib.request

FTB = sys.argv[1]
SRC = sys.argv[2]
KEY = "sk-campaign-test-SECRET-9f3e2a7c"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


class OpenAiCampaign(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ftb-openai-")
        self.procs = {}
        self.logs = []
        with open(os.path.join(self.dir, "fake.err"), "w") as fake_log:
            self.fake = subprocess.Popen(
                ["/usr/bin/python3", os.path.join(SRC, "tests/fakes/fake_openai.py"),
                 "--api-key", KEY, "--phase-seconds", "0.3", "--epoch-seconds", "0.5"],
                stdout=subprocess.PIPE, stderr=fake_log, text=True)
        self.port = int(self.fake.stdout.readline())
        self.coord = "127.0.0.1:%d" % free_port()
        self.metrics = "127.0.0.1:%d" % free_port()
        self.state = os.path.join(self.dir, "state")
        self.env = dict(os.environ, OPENAI_API_KEY=KEY,
                        OPENAI_BASE_URL="http://127.0.0.1:%d/v1" % self.port,
                        FTB_ARTIFACT_DIR=os.path.join(self.dir, "artifacts"))

    def tearDown(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        self.fake.kill()
        self.fake.wait()
        self.fake.stdout.close()
        if not hasattr(self, "_failed") and not os.environ.get("FTB_KEEP_TEST_DIR"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, name, args):
        log = os.path.join(self.dir, "%s.%d.log" % (name, len(self.logs)))
        self.logs.append(log)
        with open(log, "w") as out:
            self.procs[name] = subprocess.Popen([FTB] + args, env=self.env, stdout=out,
                                                stderr=subprocess.STDOUT)

    def start_coordinator(self):
        self.start("coordinator", ["coordinator", "--listen", self.coord, "--state", self.state])

    def start_tune_worker(self, metrics=False):
        args = ["worker", "--role", "tune", "--backends", "openai", "--slots", "2",
                "--coordinator", self.coord]
        if metrics:
            args += ["--metrics-listen", self.metrics]
        self.start("tune", args)

    def kill(self, name):
        p = self.procs[name]
        p.send_signal(signal.SIGKILL)
        p.wait()

    def fake_stats(self):
        return get_json("http://127.0.0.1:%d/_fake/stats" % self.port)

    def status(self):
        out = subprocess.run([FTB, "status", "--json", "--coordinator", self.coord],
                             capture_output=True, text=True, env=self.env, timeout=30)
        if out.returncode != 0:
            return None
        data = json.loads(out.stdout)
        campaigns = data.get("campaigns", data) if isinstance(data, dict) else data
        return campaigns[0] if campaigns else None

    def coordinator_up(self):
        out = subprocess.run([FTB, "status", "--json", "--coordinator", self.coord],
                             capture_output=True, text=True, env=self.env, timeout=30)
        return out.returncode == 0

    def wait_for(self, what, predicate, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if predicate():
                    return
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
            time.sleep(0.1)
        self._failed = True
        self.fail("timed out waiting for %s; logs in %s" % (what, self.dir))

    def test_kills_do_not_pay_twice(self):
        spec = os.path.join(self.dir, "spec.yaml")
        with open(spec, "w") as f:
            f.write("""name: openai-crash
datasets:
  - {source: builtin, name: people, size: 3, seed: 1, question_types: [memorization, rephrased]}
models:
  - name: gpt-4o-mini-2024-07-18
    backend: openai
    options: {base_url: "${OPENAI_BASE_URL}", poll_seconds: 0.1, max_poll_seconds: 0.3,
              http_backoff_ms: 20}
grid:
  epochs: [1, 3, 5]
  batch_size: [4]
  seed: [0, 1]
judge: {grader: rules}
retry: {max_attempts: 5, lease_seconds: 3, initial_backoff_seconds: 0.1}
""")
        self.start_coordinator()
        self.start_tune_worker()
        self.start("judge", ["worker", "--role", "judge", "--coordinator", self.coord])
        self.wait_for("coordinator", self.coordinator_up)
        sub = subprocess.run([FTB, "submit", spec, "--coordinator", self.coord],
                             capture_output=True, text=True, env=self.env, timeout=60)
        self.assertEqual(sub.returncode, 0, sub.stdout + sub.stderr)

        # Kill the tune worker while jobs run, then bring up another.
        self.wait_for("a job", lambda: self.fake_stats()["jobs_created"] >= 2)
        self.kill("tune")
        self.start_tune_worker(metrics=True)
        # Kill the coordinator once every job exists (some still running).
        self.wait_for("all jobs", lambda: self.fake_stats()["jobs_created"] >= 4, timeout=60)
        self.kill("coordinator")
        time.sleep(0.5)
        self.start_coordinator()

        def ended():
            s = self.status()
            return s is not None and s.get("state") in (
                "CAMPAIGN_STATE_SUCCEEDED", "CAMPAIGN_STATE_FAILED", "SUCCEEDED", "FAILED")
        self.wait_for("the campaign to end", ended, timeout=180)
        final = self.status()
        self.assertIn("SUCCEEDED", final["state"], final)

        stats = self.fake_stats()
        adopted = 0
        for log in self.logs:
            with open(log) as f:
                adopted += f.read().count("openai: adopted job")
        print("provider stats: files %d, jobs %d, chat completions %d; jobs adopted %d"
              % (stats["files_created"], stats["jobs_created"], stats["chat_completions"],
                 adopted), file=sys.stderr)
        # The killed worker's running jobs were adopted by later attempts.
        self.assertGreaterEqual(adopted, 1)
        # 2 training runs: one file each; epochs [1,3,5] -> jobs of 1 and 5 epochs.
        self.assertEqual(stats["files_created"], 2, stats)
        self.assertEqual(stats["jobs_created"], 4, stats)
        self.assertEqual(stats["cancels"], 0, stats)
        # Asked again only if in flight at a kill: at most one per slot per kill.
        repeats = sum(n - 1 for n in stats["chat_by_prompt"].values())
        self.assertLessEqual(repeats, 2 * 2, stats["chat_by_prompt"])
        self.assertGreater(final.get("cost_usd", final.get("costUsd", 0)), 0, final)

        # Provider calls counted by the worker that finished the work.
        # (mirrored into Prometheus once a second).
        want = 'ftb_provider_requests_total{provider="openai",status="200"}'

        def scraped():
            with urllib.request.urlopen("http://%s/metrics" % self.metrics, timeout=10) as r:
                return want in r.read().decode()
        self.wait_for("provider metrics", scraped, timeout=10)

        # The key is nowhere on disk but in our environment.
        for root, _, files in os.walk(self.dir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(KEY.encode(), f.read(), os.path.join(root, name))


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1])
