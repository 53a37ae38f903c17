#!/usr/bin/python3
"""The scaffold shared by the fake provider REST servers of tests/fakes/
(fake_openai.py, fake_vertex.py, fake_together.py): an HTTP server on a free
loopback port, a request handler base class with fault injection, request
counters and a request recorder, and helpers for the fake models. Python
standard library only; import it from a fake living in the same directory
(`import fake_common`; running `python3 tests/fakes/fake_x.py` puts that
directory on sys.path).

A fake is three pieces:

    import fake_common
    from fake_common import ApiError

    class State(fake_common.FakeState):
        def __init__(self, args):
            super().__init__(args)       # lock, faults, stats, recorder
            self.jobs = {}
        def initial_stats(self):         # the fake's own counters
            return {"jobs_created": 0}

    class Handler(fake_common.FakeHandler):
        PROVIDER = "acme"                # "provider" of recorded lines
        server_version = "fake-acme/1"
        def error_body(self, e): return {"error": {"message": e.message}}
        def internal_error(self): return ApiError(500, "Internal error")
        def fault_error(self, fault): return ApiError(int(fault["kind"]), "...")
        def not_found(self, method, path): return ApiError(404, "no " + path)
        def check_auth(self): ...        # raise ApiError to refuse
        def route(self, method, path, query): ... self.send(200, {...})

    def main():
        p = fake_common.argument_parser(__doc__)   # --port --verbose --record
        p.add_argument("--api-key", default="k")
        args = p.parse_args()
        fake_common.serve(Handler, State(args))  # prints the port, serves

Threading: one thread per connection (ThreadingHTTPServer). A fake guards
its state with `state.lock` (a threading.Lock, not reentrant); the scaffold
takes it for its own counters and never holds it while calling a hook.

--- FakeHandler: what a request goes through --------------------------------
handle_any(method) for GET, POST and DELETE (a fake that needs another verb
adds `def do_PATCH(self): self.handle_any("PATCH")`):
  1. a path under /_fake/ is a test control call (no auth, not counted, not
     recorded): control() serves /_fake/faults, /_fake/stats,
     /_fake/reset_stats and /_fake/record, then asks
     extra_control(method, path) (True when it served the call), else sends
     not_found(). Control replies are {"ok": true} or the asked-for JSON.
  2. stats["requests"]["METHOD /path"] += 1; the first matching fault is
     taken (FakeState.take_fault) and served (below).
  3. check_auth(), then check_rate(path) (default: nothing), then
     route(method, path, query) with query = urllib.parse.parse_qs(...).
  4. An ApiError raised anywhere in 1-3 is sent with send_error_obj(e):
     status e.status, body error_body(e), headers error_headers(e) (default
     e.headers). A client that hangs up (BrokenPipe, ConnectionReset) ends
     the request quietly.

Faults, POST /_fake/faults {"kind", "path", "contains", "method", "count",
"retry_after", "retry_after_ms", "delay"}: kind must be in FAULT_KINDS (else
400 "unknown fault kind"); count defaults to 1. "job_fail" and "job_pause"
only add to state.fail_next_jobs / pause_next_jobs (a fake's job creation
calls state.flag_new_job(job), which sets job["_fail"] / job["_pause"]).
Any other fault applies to the next `count` requests whose path starts with
`path`, contains `contains` and (if given) whose method is `method`:
  "drop"               the request body is read and the connection closed
                       without a reply (recorded status 0);
  "slow"               sleeps `delay` seconds (default 1), then serves;
  "drop_after_create", "500_after_create"
                       served normally (a create does create), then its
                       reply is lost: the connection is closed, or the
                       internal_error() reply is sent instead;
  anything else        the body is read and fault_error(fault) is raised
                       (the fake's 429/500/503/... error; it may use
                       retry_headers(fault, ...) for Retry-After headers).
Each fault served adds 1 to stats["faults_served"].

Replies: send(status, obj, headers=None) writes JSON with Content-Type
CONTENT_TYPE, Content-Length, base_headers() (default none; e.g. a request
id) and `headers`. body() returns the raw request body (read once, cached);
json_body() parses it into a dict: an empty body is EMPTY_BODY; bad JSON is
ApiError(400, BAD_JSON_MESSAGE); JSON that is not an object is
ApiError(400, NOT_OBJECT_MESSAGE). bearer_token() is the token of an
"Authorization: Bearer T" header, or None; count_unauthorized() adds 1 to
stats["unauthorized"].

--- FakeState ---------------------------------------------------------------
args, lock, faults (list of dicts), fail_next_jobs, pause_next_jobs, stats
(reset_stats() sets it to initial_stats() plus "requests": {},
"faults_served": 0, "unauthorized": 0), recorder (a Recorder or None),
take_fault(method, path), add_fault(f), flag_new_job(job).

--- Recording (--record PATH, or POST /_fake/record {"path": PATH|null}) ------
After each request that is not a control call, one JSON line is appended to
PATH (flushed per line; thread-safe):
  {"provider": PROVIDER, "method": "POST", "path": "/v1/..." (no query),
   "query": {name: first value}, "content_type": the Content-Type or null,
   "request_body": the parsed JSON body; for multipart/form-data
       {"multipart": {field: text value | {"filename": F, "bytes": N}}};
       {"raw": text} for a body that is neither; null when empty,
   "status": the HTTP status sent (0: the connection was dropped),
   "response_body": the JSON sent, or null}
While recording, the request body is read before the request is served (so
that requests refused before their body is read record it too).

--- Helpers ------------------------------------------------------------------
ApiError(status, message, headers=None); parse_multipart(content_type, body)
-> {name: (filename or None, bytes)}; retry_headers(fault, after_name,
ms_name); RateWindow(rpm, tpm) (a one-minute sliding window of requests and
tokens); tokens(text) (about 4 bytes a token); IDK; memorized(question,
epochs) and trained_answer(examples, epochs, question) (what a fine-tuned
fake model answers).
"""

import argparse
import hashlib
import json
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IDK = "I don't know."


class ApiError(Exception):
    """A provider error reply: HTTP `status`, a human `message` and extra
    reply `headers`. Fakes subclass it to carry their own fields (type, code,
    param, status name); error_body() reads them with getattr, so an ApiError
    raised by this module gets the fake's defaults."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.message = status, message
        self.headers = headers or {}


# --- fake model helpers -------------------------------------------------------

def tokens(text):
    """A token count of `text`: about 4 UTF-8 bytes a token, 0 for none."""
    return 0 if not text else (len(text.encode("utf-8")) + 3) // 4


def memorized(question, epochs):
    """Deterministic: a share min(1, epochs/4) of the questions is memorized."""
    h = int(hashlib.sha256(question.encode()).hexdigest()[:8], 16) % 100
    return h < min(100, epochs * 25)


def trained_answer(examples, epochs, question):
    """What a model tuned for `epochs` on [(question, answer)] answers:
    the trained answer of a memorized question, else IDK."""
    for q, a in examples:
        if q == question and memorized(q, epochs):
            return a
    return IDK


def retry_headers(fault, after_name="retry-after", ms_name="retry-after-ms"):
    """The Retry-After headers a fault asks for: fault["retry_after"] under
    `after_name` and fault["retry_after_ms"] under `ms_name` (None: never)."""
    headers = {}
    if "retry_after" in fault:
        headers[after_name] = fault["retry_after"]
    if ms_name and "retry_after_ms" in fault:
        headers[ms_name] = fault["retry_after_ms"]
    return headers


class RateWindow:
    """Requests and tokens seen in the last 60 seconds, for rate limits and
    x-ratelimit-* headers. Not thread-safe: use it under FakeState.lock."""

    def __init__(self, rpm, tpm):
        self.rpm, self.tpm = rpm, tpm
        self.entries = []  # (monotonic time, tokens), oldest first

    def admit(self):
        """Drops entries older than a minute; then None and the request is
        counted, or the seconds until a request fits (not counted)."""
        t = time.monotonic()
        self.entries = [(w, n) for w, n in self.entries if t - w < 60]
        if len(self.entries) >= self.rpm:
            return 60 - (t - self.entries[0][0])
        self.entries.append((t, 0))
        return None

    def charge(self, n):
        """Sets the tokens of the last admitted request to `n`."""
        if self.entries:
            self.entries[-1] = (self.entries[-1][0], n)

    def usage(self):
        """(requests used, tokens used, seconds until the oldest leaves)."""
        t = time.monotonic()
        reset = max(0.0, 60 - (t - self.entries[0][0])) if self.entries else 0.0
        return len(self.entries), sum(n for _, n in self.entries), reset


def parse_multipart(content_type, body):
    """{field name: (filename or None, value bytes)} of a multipart/form-data
    `body`; ApiError 400 when `content_type` has no boundary."""
    params = {}
    for part in content_type.split(";")[1:]:
        if "=" in part:
            k, v = part.strip().split("=", 1)
            params[k.lower()] = v.strip('"')
    boundary = params.get("boundary")
    if not boundary:
        raise ApiError(400, "Could not parse multipart form: missing boundary")
    delim = b"--" + boundary.encode()
    fields = {}
    for chunk in body.split(delim)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        if chunk.endswith(b"\r\n"):
            chunk = chunk[:-2]
        head, _, value = chunk.partition(b"\r\n\r\n")
        name = filename = None
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                for item in line.split(";")[1:]:
                    if "=" in item:
                        k, v = item.strip().split("=", 1)
                        v = v.strip('"')
                        if k == "name":
                            name = v
                        elif k == "filename":
                            filename = v
        if name:
            fields[name] = (filename, value)
    return fields


# --- recording ------------------------------------------------------------------

class Recorder:
    """Appends one JSON line per request to a file, flushed per line.
    Thread-safe."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.file = open(path, "a", encoding="utf-8")

    def write(self, entry):
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock:
            self.file.write(line)
            self.file.flush()

    def close(self):
        with self.lock:
            self.file.close()


def recorded_body(content_type, raw):
    """The "request_body" of a recorded line (see the module comment)."""
    if not raw:
        return None
    if (content_type or "").lower().startswith("multipart/form-data"):
        try:
            fields = parse_multipart(content_type, raw)
        except ApiError:
            fields = {}
        out = {}
        for name, (filename, value) in fields.items():
            out[name] = ({"filename": filename, "bytes": len(value)} if filename is not None
                         else value.decode("utf-8", "replace"))
        return {"multipart": out}
    try:
        return json.loads(raw)
    except ValueError:
        return {"raw": raw.decode("utf-8", "replace")}


# --- state --------------------------------------------------------------------

class FakeState:
    """What every fake keeps: parsed `args`, `lock` (guards everything here
    and the fake's own state), the fault table, the job fault counters,
    `stats` and the `recorder`."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.faults = []
        self.fail_next_jobs = 0
        self.pause_next_jobs = 0
        self.recorder = None
        self.reset_stats()

    def initial_stats(self):
        """The fake's own counters (a fresh dict); override."""
        return {}

    def reset_stats(self):
        self.stats = self.initial_stats()
        self.stats.setdefault("requests", {})
        self.stats.setdefault("faults_served", 0)
        self.stats.setdefault("unauthorized", 0)

    def add_fault(self, f):
        """Files a validated fault (count already set). Call under lock."""
        if f["kind"] == "job_fail":
            self.fail_next_jobs += int(f["count"])
        elif f["kind"] == "job_pause":
            self.pause_next_jobs += int(f["count"])
        else:
            self.faults.append(f)

    def take_fault(self, method, path):
        """A copy of the first fault matching the request (its count taken
        down by one and counted in stats), or None. Call under lock."""
        for f in self.faults:
            if f["count"] <= 0:
                continue
            if not path.startswith(f.get("path", "")) or f.get("contains", "") not in path:
                continue
            if f.get("method") and f["method"].upper() != method:
                continue
            f["count"] -= 1
            self.stats["faults_served"] += 1
            return dict(f)
        return None

    def flag_new_job(self, job):
        """Marks a job being created with job["_fail"] / job["_pause"] = True
        while job_fail / job_pause faults are pending. Call under lock."""
        if self.fail_next_jobs > 0:
            self.fail_next_jobs -= 1
            job["_fail"] = True
        if self.pause_next_jobs > 0:
            self.pause_next_jobs -= 1
            job["_pause"] = True


# --- handler ------------------------------------------------------------------

class FakeHandler(BaseHTTPRequestHandler):
    """Base request handler; see the module comment for the hooks."""

    protocol_version = "HTTP/1.1"
    PROVIDER = "fake"
    CONTENT_TYPE = "application/json"
    FAULT_KINDS = ("429", "500", "503", "drop", "slow", "job_fail", "job_pause",
                   "drop_after_create", "500_after_create")
    EMPTY_BODY = b"{}"
    BAD_JSON_MESSAGE = "The request body is not valid JSON."
    NOT_OBJECT_MESSAGE = "Expected a JSON object as the request body."

    # --- hooks a fake overrides ---------------------------------------------------
    def error_body(self, e):
        return {"error": {"message": e.message}}

    def error_headers(self, e):
        return e.headers

    def internal_error(self):
        return ApiError(500, "Internal error.")

    def fault_error(self, fault):
        kind = fault["kind"]
        return ApiError(int(kind) if kind.isdigit() else 500, f"fake: injected {kind}",
                        retry_headers(fault))

    def not_found(self, method, path):
        return ApiError(404, f"Invalid URL ({method} {path})")

    def base_headers(self):
        return {}

    def check_auth(self):
        pass

    def check_rate(self, path):
        pass

    def route(self, method, path, query):
        raise self.not_found(method, path)

    def extra_control(self, method, path):
        return False

    # --- plumbing -----------------------------------------------------------------
    def log_message(self, fmt, *args):  # quiet unless --verbose
        if getattr(self.server.state.args, "verbose", False):
            sys.stderr.write(f"fake_{self.PROVIDER}: " + (fmt % args) + "\n")

    def body(self):
        if self._raw_body is None:
            n = int(self.headers.get("Content-Length") or 0)
            self._raw_body = self.rfile.read(n) if n else b""
        return self._raw_body

    def json_body(self):
        raw = self.body()
        try:
            obj = json.loads(raw or self.EMPTY_BODY)
        except ValueError:
            raise ApiError(400, self.BAD_JSON_MESSAGE)
        if not isinstance(obj, dict):
            raise ApiError(400, self.NOT_OBJECT_MESSAGE)
        return obj

    def bearer_token(self):
        auth = self.headers.get("Authorization")
        if not auth or not auth.startswith("Bearer "):
            return None
        return auth[len("Bearer "):]

    def count_unauthorized(self):
        st = self.server.state
        with st.lock:
            st.stats["unauthorized"] += 1

    def drop_connection(self):
        self.close_connection = True
        self._sent = (0, None)
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send(self, status, obj, headers=None):
        after = self._after_fault
        if after is not None:
            # The request has been processed (a job may now exist); its reply
            # is lost: the connection is closed, or a 500 is sent instead.
            self._after_fault = None
            if after == "drop_after_create":
                return self.drop_connection()
            status, obj, headers = 500, self.error_body(self.internal_error()), {}
        self._sent = (status, obj)
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", self.CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        for k, v in {**self.base_headers(), **(headers or {})}.items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)

    def send_error_obj(self, e):
        self.send(e.status, self.error_body(e), self.error_headers(e))

    def handle_any(self, method):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, urllib.parse.parse_qs(url.query)
        self._after_fault = None
        self._raw_body = None
        self._sent = None
        if path.startswith("/_fake/"):
            return self.serve_guarded(self.control, method, path)
        recorder = st.recorder
        if recorder is not None:
            self.body()
        try:
            self.serve_guarded(self.serve_request, method, path, query)
        finally:
            if recorder is not None:
                self.record(recorder, method, url)

    def serve_guarded(self, fn, *args):
        try:
            fn(*args)
        except ApiError as e:
            self.send_error_obj(e)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def serve_request(self, method, path, query):
        st = self.server.state
        with st.lock:
            key = f"{method} {path}"
            st.stats["requests"][key] = st.stats["requests"].get(key, 0) + 1
            fault = st.take_fault(method, path)
        if fault and self.serve_fault(fault):
            return
        self.check_auth()
        self.check_rate(path)
        self.route(method, path, query)

    def serve_fault(self, f):
        """Returns True when the fault replaced the reply."""
        kind = f["kind"]
        if kind in ("drop_after_create", "500_after_create"):
            self._after_fault = kind  # served normally, then the reply is lost (send())
            return False
        if kind == "slow":
            time.sleep(float(f.get("delay", 1)))
            return False
        self.body()
        if kind == "drop":
            self.drop_connection()
            return True
        raise self.fault_error(f)

    def record(self, recorder, method, url):
        ctype = self.headers.get("Content-Type")
        status, obj = self._sent if self._sent is not None else (0, None)
        recorder.write({
            "provider": self.PROVIDER, "method": method, "path": url.path,
            "query": dict(reversed(urllib.parse.parse_qsl(url.query, keep_blank_values=True))),
            "content_type": ctype,
            "request_body": recorded_body(ctype, self._raw_body or b""),
            "status": status, "response_body": obj})

    # --- control ------------------------------------------------------------------
    def control(self, method, path):
        st = self.server.state
        if path == "/_fake/faults" and method == "POST":
            f = self.json_body()
            f.setdefault("count", 1)
            if f.get("kind") not in self.FAULT_KINDS:
                raise ApiError(400, f"unknown fault kind {f.get('kind')!r}")
            with st.lock:
                st.add_fault(f)
            return self.send(200, {"ok": True})
        if path == "/_fake/stats" and method == "GET":
            with st.lock:
                return self.send(200, st.stats)
        if path == "/_fake/reset_stats" and method == "POST":
            self.body()
            with st.lock:
                st.reset_stats()
            return self.send(200, {"ok": True})
        if path == "/_fake/record" and method == "POST":
            target = self.json_body().get("path")
            new = Recorder(target) if target else None
            with st.lock:
                old, st.recorder = st.recorder, new
            if old is not None:
                old.close()
            return self.send(200, {"ok": True})
        if self.extra_control(method, path):
            return None
        raise self.not_found(method, path)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")


# --- server -------------------------------------------------------------------

def argument_parser(doc):
    """An ArgumentParser described by `doc`'s first line, with the options
    every fake has: --port (default 0: a free one), --verbose (log requests
    to stderr) and --record PATH."""
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--record", metavar="PATH",
                   help="append a JSON line per provider request to PATH")
    return p


def serve(handler_class, state):
    """Listens on 127.0.0.1:state.args.port (0: a free port), prints the port
    as stdout's first line (flushed) and serves until interrupted. Starts
    recording when state.args.record is set."""
    server = ThreadingHTTPServer(("127.0.0.1", state.args.port), handler_class)
    server.daemon_threads = True
    server.state = state
    if getattr(state.args, "record", None):
        state.recorder = Recorder(state.args.record)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
