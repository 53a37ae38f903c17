#!/usr/bin/python3
"""A fake Vertex AI REST API (v1) for tests: Gemini supervised tuning jobs and
generateContent on the tuned models' endpoints.

Follows https://cloud.google.com/vertex-ai/docs/reference/rest/v1 as closely
as the tests need: the same paths (`/v1/projects/P/locations/R/tuningJobs`,
`.../tuningJobs/ID`, `...:cancel`, `/v1/{endpoint}:generateContent`), request
fields (baseModel, supervisedTuningSpec{trainingDatasetUri,
validationDatasetUri, hyperParameters{epochCount, learningRateMultiplier,
adapterSize}}, tunedModelDisplayName, labels), resource shapes (TuningJob with
name, state JOB_STATE_*, createTime/startTime/endTime/updateTime RFC 3339,
tunedModel{model, endpoint}, tuningDataStats with int64 counts as JSON
strings, error{code, message} as a google.rpc.Status), list pagination
(pageSize, pageToken, nextPageToken; an empty page is `{}`), filters
(`labels.KEY=VALUE`, `state=JOB_STATE_X`, joined by AND), and Google's error
body {"error": {"code", "message", "status"}}. As the real service does,
resource names carry the project NUMBER (derived from the project id), and
either form is accepted in paths.

Standard library only; the HTTP scaffold, fault injection, stats and
request recording are fake_common.py's. Usage:

    /usr/bin/python3 fake_vertex.py --data-root DIR [--access-token TOKEN ...]
        [--project ID ...] [--phase-seconds S] [--epoch-seconds S]
        [--port N] [--verbose] [--record PATH]

Listens on 127.0.0.1 on a free port and prints the port on stdout's first line
(then flushes). Base URL: http://127.0.0.1:PORT (paths start with /v1).

Cloud Storage is stood in for by --data-root: `gs://BUCKET/PATH` is read from
`DIR/BUCKET/PATH` when a job starts. A job is JOB_STATE_PENDING for
--phase-seconds, JOB_STATE_RUNNING for epochCount x --epoch-seconds, then
JOB_STATE_SUCCEEDED with a tuned model and endpoint; it FAILS (error code 3,
INVALID_ARGUMENT) if its dataset is missing or not Gemini JSONL
({"contents": [{"role": "user"|"model", "parts": [{"text"}]}, ...]}), and
(code 13, INTERNAL) after an injected `job_fail` fault. A tuned endpoint
answers a question it was trained on with the trained answer once it has seen
enough epochs (a deterministic share of the questions, min(1, epochs/4)) and
"I don't know." otherwise; publisher base models always answer
"I don't know.".

Requests need `Authorization: Bearer TOKEN` with a TOKEN given by
--access-token (any token when none is given); the valid set can be changed
at run time (POST /_fake/tokens) to make a token expire. With --project, other
projects get 403 PERMISSION_DENIED.

Test control endpoints (no auth):
  POST /_fake/faults  {"path": "/v1/...", "contains": ":generateContent",
                       "method": "POST", "count": N,
                       "kind": "429"|"500"|"503"|"drop"|"drop_after_create"|"500_after_create"|"slow"|"job_fail"|"job_pause",
                       "retry_after": SECONDS, "delay": S}
      The next `count` requests whose path starts with `path` and contains
      `contains` (and whose method matches, if given) get the fault. job_fail makes the next
      `count` jobs created fail while running (path ignored); job_pause makes
      them go to JOB_STATE_PAUSED instead of running, and stay there.
      drop_after_create / 500_after_create serve the request normally (a POST
      that creates a file or job does create it) and then lose the reply: the
      connection is closed without an answer, or a 500 is sent instead, as a
      provider that fails after committing; a client that simply retries such
      a create pays twice.
  POST /_fake/tokens  {"valid": [TOKEN, ...]}
  GET  /_fake/stats   counts: billable calls (jobs_created, generate_content),
                      per path, cancels, faults served, unauthorized, and
                      generate_content per (endpoint, prompt).
  POST /_fake/reset_stats
  POST /_fake/record  {"path": PATH | null}  start (or stop) recording one JSON
                      line per request, as --record PATH does (fake_common.py)
"""

import base64
import datetime
import hashlib
import json
import math
import os
import random
import time

import fake_common
from fake_common import IDK, tokens

TUNABLE = {"gemini-1.0-pro-002", "gemini-1.5-pro-002", "gemini-1.5-flash-002",
           "gemini-2.0-flash-001", "gemini-2.0-flash-lite-001", "gemini-2.5-flash",
           "gemini-2.5-pro"}
ADAPTER_SIZES = {"ADAPTER_SIZE_ONE", "ADAPTER_SIZE_TWO", "ADAPTER_SIZE_FOUR",
                 "ADAPTER_SIZE_EIGHT", "ADAPTER_SIZE_SIXTEEN", "ADAPTER_SIZE_THIRTY_TWO"}
TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
            "JOB_STATE_EXPIRED"}
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
          404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
          503: "UNAVAILABLE"}


def rfc3339(t=None):
    t = time.time() if t is None else t
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def project_number(project):
    if project.isdigit():
        return project
    return str(100000000000 + int(hashlib.sha256(project.encode()).hexdigest()[:8], 16))


class ApiError(fake_common.ApiError):
    """A Google API error reply: {"error": {"code", "message", "status"}}."""

    def __init__(self, status, message, headers=None, status_name=None):
        super().__init__(status, message, headers)
        self.status_name = status_name


def read_gemini_jsonl(path):
    """[(question, answer, tokens)] of a Gemini supervised tuning JSONL file,
    or raises ValueError with Vertex-like wording."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("The dataset is not valid UTF-8.")
    examples = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise ValueError(f"Row {n} of the dataset is not valid JSON.")
        contents = obj.get("contents") if isinstance(obj, dict) else None
        if not isinstance(contents, list) or not contents:
            raise ValueError(f"Row {n}: expected a non-empty \"contents\" list.")
        user, model = [], []
        for c in contents:
            parts = c.get("parts") if isinstance(c, dict) else None
            if (not isinstance(c, dict) or c.get("role") not in ("user", "model")
                    or not isinstance(parts, list) or not parts
                    or not all(isinstance(p, dict) and isinstance(p.get("text"), str)
                               for p in parts)):
                raise ValueError(f"Row {n}: each content needs a role (user, model) and "
                                 f"text parts.")
            t = "".join(p["text"] for p in parts)
            (user if c["role"] == "user" else model).append(t)
        if not model:
            raise ValueError(f"Row {n}: the last content must have role \"model\".")
        examples.append((user[-1] if user else "", model[-1],
                         sum(tokens(u) for u in user) + sum(tokens(m) for m in model)))
    if not examples:
        raise ValueError("The dataset is empty.")
    return examples


class State(fake_common.FakeState):
    def __init__(self, args):
        super().__init__(args)
        self.jobs = {}          # id -> job dict (internal fields start with "_")
        self.job_order = []
        self.endpoints = {}     # endpoint name -> (examples, epochs)
        self.valid_tokens = set(args.access_token or [])
        self.rng = random.Random(7)

    def initial_stats(self):
        return {"jobs_created": 0, "generate_content": 0, "cancels": 0,
                "generate_by_prompt": {},
                # supervisedTuningSpec.hyperParameters of each job creation, as sent.
                "job_hyper_parameters": []}

    def new_id(self):
        return str(self.rng.randrange(10 ** 18, 10 ** 19))

    def advance(self, job):
        """Moves a job along its lifecycle to where wall time says it is."""
        if job["state"] in TERMINAL:
            return
        t = time.monotonic() - job["_t0"]
        phase = self.args.phase_seconds
        epochs = job["_epochs"]
        if job["state"] == "JOB_STATE_PENDING" and t >= phase:
            uri = job["supervisedTuningSpec"]["trainingDatasetUri"]
            try:
                examples = read_gemini_jsonl(self.gcs_path(uri))
            except FileNotFoundError:
                return self.fail(job, 3, f"Failed to read the training dataset {uri}: "
                                 f"No such object.")
            except ValueError as e:
                return self.fail(job, 3, f"The training dataset {uri} is invalid: {e}")
            job["_examples"] = [(q, a) for q, a, _ in examples]
            billable = sum(n for _, _, n in examples)
            steps = max(1, math.ceil(len(examples) / 8)) * epochs
            job["tuningDataStats"] = {"supervisedTuningDataStats": {
                "tuningDatasetExampleCount": str(len(examples)),
                "totalTuningCharacterCount": str(billable * 4),
                "totalBillableTokenCount": str(billable),
                "tuningStepCount": str(steps)}}
            if job.get("_pause"):
                # Paused for good (JobState JOB_STATE_PAUSED): only a human
                # resumes it.
                job["state"] = "JOB_STATE_PAUSED"
                job["updateTime"] = rfc3339()
                return
            job["state"] = "JOB_STATE_RUNNING"
            job["startTime"] = rfc3339()
            job["updateTime"] = job["startTime"]
        if job["state"] == "JOB_STATE_RUNNING":
            done = (t - phase) / self.args.epoch_seconds
            if job["_fail"] and done >= max(1, epochs // 2):
                return self.fail(job, 13, "Internal error occurred. Please retry.")
            if done >= epochs:
                num = job["_number"]
                loc = job["_location"]
                model_id, ep_id = self.new_id(), self.new_id()
                endpoint = f"projects/{num}/locations/{loc}/endpoints/{ep_id}"
                job["tunedModel"] = {"model": f"projects/{num}/locations/{loc}/models/"
                                              f"{model_id}@1", "endpoint": endpoint}
                job["state"] = "JOB_STATE_SUCCEEDED"
                job["endTime"] = job["updateTime"] = rfc3339()
                self.endpoints[endpoint] = (job["_examples"], epochs)

    def fail(self, job, code, message):
        job["state"] = "JOB_STATE_FAILED"
        job["error"] = {"code": code, "message": message}
        job["endTime"] = job["updateTime"] = rfc3339()

    def gcs_path(self, uri):
        rest = uri[len("gs://"):]
        bucket, _, obj = rest.partition("/")
        path = os.path.normpath(os.path.join(self.args.data_root, bucket, obj))
        if not path.startswith(os.path.normpath(self.args.data_root) + os.sep):
            raise FileNotFoundError(uri)
        return path


def public(job):
    return {k: v for k, v in job.items() if not k.startswith("_") and v is not None}


def parse_filter(text):
    """'labels.a=b AND state=JOB_STATE_RUNNING' -> [(field, value)]."""
    terms = []
    if not text:
        return terms
    for term in text.replace(" and ", " AND ").split(" AND "):
        term = term.strip()
        if "=" not in term:
            raise ApiError(400, f"Invalid filter: {text!r}. Expected terms like "
                                f"labels.KEY=VALUE or state=JOB_STATE_X joined by AND.")
        field, value = (s.strip() for s in term.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if not (field.startswith("labels.") or field == "state"):
            raise ApiError(400, f"Unsupported filter field {field!r} in filter {text!r}.")
        terms.append((field, value))
    return terms


def matches(job, terms):
    for field, value in terms:
        if field == "state":
            if job["state"] != value:
                return False
        elif (job.get("labels") or {}).get(field[len("labels."):]) != value:
            return False
    return True


LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


class Handler(fake_common.FakeHandler):
    PROVIDER = "vertex"
    server_version = "fake-vertex/1"
    CONTENT_TYPE = "application/json; charset=UTF-8"
    BAD_JSON_MESSAGE = "Invalid JSON payload received. Unexpected token."
    NOT_OBJECT_MESSAGE = "Invalid JSON payload received. Expected an object."

    # --- fake_common hooks --------------------------------------------------------
    def error_body(self, e):
        return {"error": {"code": e.status, "message": e.message,
                          "status": getattr(e, "status_name", None)
                          or STATUS.get(e.status, "UNKNOWN")}}

    def internal_error(self):
        return ApiError(500, "Internal error encountered.")

    def not_found(self, method, path):
        return ApiError(404, f"The requested URL {path} was not found on this server.")

    def fault_error(self, f):
        kind = f["kind"]
        headers = fake_common.retry_headers(f, "Retry-After", None)
        if kind == "429":
            return ApiError(429, "Quota exceeded for aiplatform.googleapis.com/"
                                 "generate_content_requests_per_minute_per_project_per_base_"
                                 "model with base model: gemini. Please submit a quota increase "
                                 "request.", headers=headers)
        if kind == "500":
            return ApiError(500, "Internal error encountered.", headers=headers)
        return ApiError(503, "The service is currently unavailable.", headers=headers)

    def check_auth(self):
        st = self.server.state
        token = self.bearer_token()
        if token is None:
            self.count_unauthorized()
            raise ApiError(401, "Request is missing required authentication credential. "
                                "Expected OAuth 2 access token, login cookie or other valid "
                                "authentication credential. See https://developers.google.com/"
                                "identity/sign-in/web/devconsole-project.")
        with st.lock:
            ok = not st.valid_tokens or token in st.valid_tokens
        if not ok:
            self.count_unauthorized()
            raise ApiError(401, "Request had invalid authentication credentials. Expected OAuth "
                                "2 access token, login cookie or other valid authentication "
                                "credential.")

    def check_project(self, project, location, permission):
        allowed = self.server.state.args.project
        if allowed and project not in allowed and project not in [
                project_number(p) for p in allowed]:
            raise ApiError(403, f"Permission '{permission}' denied on resource "
                                f"'//aiplatform.googleapis.com/projects/{project}/locations/"
                                f"{location}' (or it may not exist).")

    # --- routes ---------------------------------------------------------------------
    def route(self, method, path, query):
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["v1"] or len(parts) < 5 or parts[1] != "projects" or (
                parts[3] != "locations"):
            raise ApiError(404, f"The requested URL {path} was not found on this server.")
        project, location, rest = parts[2], parts[4], parts[5:]
        verb = None
        if rest and ":" in rest[-1]:
            rest[-1], verb = rest[-1].split(":", 1)
        if verb == "generateContent" and method == "POST" and len(rest) >= 2:
            self.check_project(project, location, "aiplatform.endpoints.predict")
            return self.generate(project, location, "/".join(rest))
        if rest[:1] == ["tuningJobs"]:
            if len(rest) == 1 and verb is None and method == "POST":
                self.check_project(project, location, "aiplatform.tuningJobs.create")
                return self.create_job(project, location)
            if len(rest) == 1 and verb is None and method == "GET":
                self.check_project(project, location, "aiplatform.tuningJobs.list")
                return self.list_jobs(project, location, query)
            if len(rest) == 2 and verb is None and method == "GET":
                self.check_project(project, location, "aiplatform.tuningJobs.get")
                return self.get_job(project, location, rest[1])
            if len(rest) == 2 and verb == "cancel" and method == "POST":
                self.check_project(project, location, "aiplatform.tuningJobs.cancel")
                return self.cancel_job(project, location, rest[1])
        raise ApiError(404, f"The requested URL {path} was not found on this server.")

    def create_job(self, project, location):
        st = self.server.state
        req = self.json_body()
        model = req.get("baseModel")
        if not model:
            raise ApiError(400, "Request contains an invalid argument: baseModel is required.")
        if model not in TUNABLE:
            raise ApiError(400, f"Base model {model} is not supported for supervised tuning.")
        spec = req.get("supervisedTuningSpec")
        if not isinstance(spec, dict):
            raise ApiError(400, "Request contains an invalid argument: supervisedTuningSpec is "
                                "required.")
        unknown = set(spec) - {"trainingDatasetUri", "validationDatasetUri", "hyperParameters",
                               "exportLastCheckpointOnly"}
        if unknown:
            raise ApiError(400, f"Invalid JSON payload received. Unknown name "
                                f"\"{sorted(unknown)[0]}\" at 'tuning_job.supervised_tuning_spec':"
                                f" Cannot find field.")
        for field in ("trainingDatasetUri", "validationDatasetUri"):
            uri = spec.get(field)
            if uri is None and field == "validationDatasetUri":
                continue
            if not isinstance(uri, str) or not uri.startswith("gs://") or "/" not in uri[5:]:
                raise ApiError(400, f"Request contains an invalid argument: "
                                    f"supervisedTuningSpec.{field} must be a Cloud Storage URI "
                                    f"gs://BUCKET/OBJECT, got {uri!r}.")
        hp = spec.get("hyperParameters") or {}
        unknown = set(hp) - {"epochCount", "learningRateMultiplier", "adapterSize"}
        if unknown:
            raise ApiError(400, f"Invalid JSON payload received. Unknown name "
                                f"\"{sorted(unknown)[0]}\" at 'tuning_job.supervised_tuning_spec."
                                f"hyper_parameters': Cannot find field.")
        epochs = hp.get("epochCount", 10)
        try:
            if isinstance(epochs, bool) or isinstance(epochs, float):
                raise ValueError
            epochs = int(epochs)  # int64: a JSON number or a decimal string
        except (TypeError, ValueError):
            raise ApiError(400, f"Invalid value at 'tuning_job.supervised_tuning_spec."
                                f"hyper_parameters.epoch_count' (TYPE_INT64), {epochs!r}")
        if not 1 <= epochs <= 100:
            raise ApiError(400, f"Request contains an invalid argument: epochCount must be in "
                                f"[1, 100], got {epochs}.")
        lr = hp.get("learningRateMultiplier", 1.0)
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or lr <= 0:
            raise ApiError(400, "Request contains an invalid argument: learningRateMultiplier "
                                "must be a number > 0.")
        adapter = hp.get("adapterSize")
        if adapter is not None and adapter not in ADAPTER_SIZES:
            raise ApiError(400, f"Invalid value at 'tuning_job.supervised_tuning_spec."
                                f"hyper_parameters.adapter_size' (type.googleapis.com/"
                                f"google.cloud.aiplatform.v1.SupervisedHyperParameters."
                                f"AdapterSize), {adapter!r}")
        labels = req.get("labels") or {}
        if not isinstance(labels, dict) or len(labels) > 64 or any(
                not isinstance(k, str) or not isinstance(v, str) or not k or len(k) > 63
                or len(v) > 63 or not set(k) <= LABEL_CHARS or not set(v) <= LABEL_CHARS
                or not k[0].isalpha() for k, v in labels.items()):
            raise ApiError(400, "Request contains an invalid argument: labels: keys and values "
                                "must be at most 63 lowercase letters, digits, '_' or '-', keys "
                                "starting with a letter.")
        display = req.get("tunedModelDisplayName")
        if display is not None and (not isinstance(display, str) or len(display) > 128):
            raise ApiError(400, "Request contains an invalid argument: tunedModelDisplayName "
                                "must be at most 128 characters.")
        with st.lock:
            job_id = st.new_id()
            num = project_number(project)
            resolved = {"epochCount": str(epochs), "learningRateMultiplier": lr}
            if adapter is not None:
                resolved["adapterSize"] = adapter
            out_spec = {"trainingDatasetUri": spec["trainingDatasetUri"],
                        "hyperParameters": resolved}
            if spec.get("validationDatasetUri"):
                out_spec["validationDatasetUri"] = spec["validationDatasetUri"]
            now = rfc3339()
            job = {"name": f"projects/{num}/locations/{location}/tuningJobs/{job_id}",
                   "tunedModelDisplayName": display, "baseModel": model,
                   "supervisedTuningSpec": out_spec, "state": "JOB_STATE_PENDING",
                   "createTime": now, "updateTime": now, "labels": labels or None,
                   "_t0": time.monotonic(), "_epochs": epochs, "_examples": [],
                   "_number": num, "_location": location, "_fail": False}
            st.flag_new_job(job)
            st.jobs[job_id] = job
            st.job_order.append(job_id)
            st.stats["jobs_created"] += 1
            st.stats["job_hyper_parameters"].append(dict(hp))
            out = public(job)
        self.send(200, out)

    def find_job(self, project, location, job_id):
        st = self.server.state
        job = st.jobs.get(job_id)
        if job is None or project_number(project) != job["_number"] or (
                location != job["_location"]):
            raise ApiError(404, f"TuningJob projects/{project}/locations/{location}/tuningJobs/"
                                f"{job_id} not found.")
        st.advance(job)
        return job

    def get_job(self, project, location, job_id):
        with self.server.state.lock:
            out = public(self.find_job(project, location, job_id))
        self.send(200, out)

    def list_jobs(self, project, location, query):
        st = self.server.state
        terms = parse_filter(query.get("filter", [""])[0])
        size = query.get("pageSize", ["100"])[0]
        try:
            size = int(size)
        except ValueError:
            raise ApiError(400, f"Invalid value at 'page_size' (TYPE_INT32), {size!r}")
        size = 100 if size <= 0 else min(size, 300)
        token = query.get("pageToken", [""])[0]
        start = 0
        if token:
            try:
                start = int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1])
            except (ValueError, IndexError, UnicodeDecodeError):
                raise ApiError(400, "Invalid page token.")
        num = project_number(project)
        with st.lock:
            jobs = []
            for job_id in reversed(st.job_order):  # newest first
                job = st.jobs[job_id]
                if job["_number"] != num or job["_location"] != location:
                    continue
                st.advance(job)
                if matches(job, terms):
                    jobs.append(public(job))
        page = jobs[start:start + size]
        out = {}
        if page:
            out["tuningJobs"] = page
        if start + size < len(jobs):
            out["nextPageToken"] = base64.urlsafe_b64encode(
                f"offset:{start + size}".encode()).decode()
        self.send(200, out)

    def cancel_job(self, project, location, job_id):
        st = self.server.state
        self.body()
        with st.lock:
            job = self.find_job(project, location, job_id)
            if job["state"] in TERMINAL:
                raise ApiError(400, f"TuningJob {job['name']} is in state {job['state']} and "
                                    f"cannot be cancelled.", status_name="FAILED_PRECONDITION")
            job["state"] = "JOB_STATE_CANCELLED"
            job["error"] = {"code": 1, "message": "CANCELED"}
            job["endTime"] = job["updateTime"] = rfc3339()
            st.stats["cancels"] += 1
        self.send(200, {})

    def generate(self, project, location, resource):
        st = self.server.state
        req = self.json_body()
        contents = req.get("contents")
        if not isinstance(contents, list) or not contents:
            raise ApiError(400, "Request contains an invalid argument: contents is required.")
        for i, c in enumerate(contents):
            parts = c.get("parts") if isinstance(c, dict) else None
            if (not isinstance(c, dict) or c.get("role", "user") not in ("user", "model")
                    or not isinstance(parts, list) or not parts):
                raise ApiError(400, f"Request contains an invalid argument: contents[{i}] needs "
                                    f"a role (user, model) and parts.")
        cfg = req.get("generationConfig") or {}
        temp = cfg.get("temperature", 1.0)
        if not isinstance(temp, (int, float)) or not 0 <= temp <= 2:
            raise ApiError(400, "Request contains an invalid argument: temperature must be in "
                                "[0, 2].")
        max_out = cfg.get("maxOutputTokens")
        if max_out is not None and (not isinstance(max_out, int) or max_out < 1):
            raise ApiError(400, "Request contains an invalid argument: maxOutputTokens must be "
                                ">= 1.")
        seed = cfg.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise ApiError(400, "Invalid value at 'generation_config.seed' (TYPE_INT32)")
        users = ["".join(p.get("text", "") for p in c["parts"]) for c in contents
                 if c.get("role", "user") == "user"]
        question = users[-1] if users else ""
        prompt_text = "".join("".join(p.get("text", "") for p in c["parts"]) for c in contents)
        system = req.get("systemInstruction")
        if isinstance(system, dict):
            prompt_text += "".join(p.get("text", "") for p in system.get("parts") or [])
        name = f"projects/{project_number(project)}/locations/{location}/{resource}"
        with st.lock:
            if resource.startswith("publishers/google/models/"):
                if resource.rsplit("/", 1)[1] not in TUNABLE:
                    raise ApiError(404, f"Publisher Model `{name}` not found.")
                answer = IDK
            elif resource.startswith("endpoints/") and name in st.endpoints:
                examples, epochs = st.endpoints[name]
                answer = fake_common.trained_answer(examples, epochs, question)
            else:
                raise ApiError(404, f"Endpoint `{name}` not found.")
            finish = "STOP"
            if max_out is not None and tokens(answer) > max_out:
                answer = answer.encode()[:max_out * 4].decode("utf-8", "ignore")
                finish = "MAX_TOKENS"
            key = name + "\n" + question
            st.stats["generate_by_prompt"][key] = st.stats["generate_by_prompt"].get(key, 0) + 1
            st.stats["generate_content"] += 1
        p, c = tokens(prompt_text) + 1, tokens(answer)
        self.send(200, {"candidates": [{"content": {"role": "model", "parts": [{"text": answer}]},
                                        "finishReason": finish, "avgLogprobs": -0.01}],
                        "usageMetadata": {"promptTokenCount": p, "candidatesTokenCount": c,
                                          "totalTokenCount": p + c},
                        "modelVersion": "gemini-tuned", "createTime": rfc3339(),
                        "responseId": base64.urlsafe_b64encode(os.urandom(12)).decode()})

    # --- control ----------------------------------------------------------------------
    def extra_control(self, method, path):
        st = self.server.state
        if path == "/_fake/tokens" and method == "POST":
            f = self.json_body()
            with st.lock:
                st.valid_tokens = set(f.get("valid") or [])
            self.send(200, {"ok": True})
            return True
        return False


def main():
    p = fake_common.argument_parser(__doc__)
    p.add_argument("--data-root", required=True,
                   help="directory standing in for Cloud Storage: gs://B/P is DIR/B/P")
    p.add_argument("--access-token", action="append",
                   help="an accepted bearer token (repeatable; default: any)")
    p.add_argument("--project", action="append", help="the only projects allowed (repeatable)")
    p.add_argument("--phase-seconds", type=float, default=0.2)
    p.add_argument("--epoch-seconds", type=float, default=0.1)
    fake_common.serve(Handler, State(p.parse_args()))


if __name__ == "__main__":
    main()
