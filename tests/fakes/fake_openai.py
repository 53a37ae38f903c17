#!/usr/bin/python3
"""A fake OpenAI REST API for tests: files, fine-tuning jobs and chat completions.

Follows the wire protocol of https://platform.openai.com/docs/api-reference as
closely as the tests need: the same paths, request fields, object shapes,
status codes, error bodies ({"error": {"message", "type", "param", "code"}}),
rate-limit headers (x-ratelimit-{limit,remaining,reset}-{requests,tokens}),
retry-after/retry-after-ms on 429 and x-request-id on every reply.

Standard library only; the HTTP scaffold, fault injection, stats and
request recording are fake_common.py's. Usage:

    /usr/bin/python3 fake_openai.py [--api-key KEY] [--phase-seconds S]
                                    [--epoch-seconds S] [--rpm N] [--tpm N]
                                    [--port N] [--verbose] [--record PATH]

Listens on 127.0.0.1 on a free port and prints the port on stdout's first
line (then flushes). Base URL: http://127.0.0.1:PORT/v1.

The job lifecycle advances with wall time: validating_files for
--phase-seconds, queued for --phase-seconds, running for n_epochs x
--epoch-seconds, then succeeded (or failed: a training file with fewer than
10 examples, or an injected `job_fail` fault). A fine-tuned model (and each
of its checkpoints, the last three epochs) answers a question it was trained
on with the trained answer once it has seen enough epochs (a deterministic
share of the questions per epoch count, all of them from 4 epochs on) and
"I don't know." otherwise; base models always answer "I don't know.".

A model named like "judge*" (e.g. "judge-1") answers prompts holding a
"REFERENCE:" and "ANSWER:" line (values plain, or JSON string literals as
ftb's `llm` grader sends them) with a JSON verdict: {"verdict": "correct" |
"incorrect", "reason": ...}, correct when the answer contains the reference
(case-insensitive), for LLM-as-judge tests. Variants by name prefix:
"judge-noisy*" flips that verdict on a fixed third of the (reference,
answer) pairs (so panels disagree); "judge-upper*" answers "CORRECT" /
"INCORRECT" inside a ```json code fence; "judge-garbled*" always answers
prose that is not JSON; "judge-paper*" reads the FineTuneBench authors'
judge prompt (ftb's `paper` grader: "Answer: <reference>" and "Guess:
<answer>" lines) and answers the one word "Correct" (the guess contains the
reference, case-insensitive) or "Incorrect". Replies queued with
/_fake/judge_script are served first to any judge model, one per call.

Test control endpoints (no auth):
  POST /_fake/faults  {"path": "/v1/...", "method": "POST", "count": N,
                       "kind": "429"|"500"|"503"|"drop"|"drop_after_create"|"500_after_create"|"insufficient_quota"|
                               "slow"|"job_fail"|"job_pause",
                       "retry_after": SECONDS, "retry_after_ms": MS, "delay": S}
      The next `count` requests whose path starts with `path` (and whose
      method matches, if given) get the fault. job_fail makes the next
      `count` jobs created fail while running (path ignored); job_pause makes
      them go to status "paused" instead of running, and stay there.
      drop_after_create / 500_after_create serve the request normally (a POST
      that creates a file or job does create it) and then lose the reply: the
      connection is closed without an answer, or a 500 is sent instead, as a
      provider that fails after committing; a client that simply retries such
      a create pays twice.
  GET  /_fake/stats   counts: billable calls (files_created, jobs_created,
                      chat_completions), per path, cancels, faults served,
                      chat completions per (model, prompt).
  POST /_fake/reset_stats
  POST /_fake/record  {"path": PATH | null}  start (or stop) recording one JSON
                      line per request, as --record PATH does (fake_common.py)
  POST /_fake/judge_script {"replies": ["text", ...]}  queue judge replies
  GET  /_fake/chat_requests  the bodies of the last 200 chat completion
                      requests to judge models, oldest first
"""

import hashlib
import json
import math
import secrets
import time

import fake_common
from fake_common import IDK, tokens

BASE_MODELS = {
    "gpt-4o-mini-2024-07-18", "gpt-4o-mini", "gpt-3.5-turbo-0125", "gpt-3.5-turbo",
    "gpt-4o-2024-08-06", "gpt-4o", "gpt-4.1-mini-2025-04-14", "gpt-4.1-2025-04-14",
}
TUNABLE = {"gpt-4o-mini-2024-07-18", "gpt-3.5-turbo-0125", "gpt-4o-2024-08-06",
           "gpt-4.1-mini-2025-04-14", "gpt-4.1-2025-04-14"}
ORG = "ftb-fake"
MIN_EXAMPLES = 10


def chat_tokens(messages):
    return sum(tokens(m.get("content") or "") + 3 for m in messages) + 3


class ApiError(fake_common.ApiError):
    """An OpenAI error reply: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status, message, type_="invalid_request_error", param=None, code=None,
                 headers=None):
        super().__init__(status, message, headers)
        self.type, self.param, self.code = type_, param, code


def now():
    return int(time.time())


class State(fake_common.FakeState):
    def __init__(self, args):
        super().__init__(args)
        self.files = {}       # id -> (object, examples)
        self.jobs = {}        # id -> job dict (internal fields start with "_")
        self.job_order = []   # creation order
        self.models = {}      # model name -> (examples, epochs)
        self.window = fake_common.RateWindow(args.rpm, args.tpm)
        self.judge_script = []  # replies served to judge models first
        self.chat_requests = []  # bodies of recent judge chat requests

    def initial_stats(self):
        return {"files_created": 0, "jobs_created": 0, "chat_completions": 0,
                "cancels": 0, "chat_by_prompt": {},
                # method.supervised.hyperparameters of each job creation, as sent
                # (before "auto" defaults are filled in), in order.
                "job_hyperparameters": []}

    # --- jobs -----------------------------------------------------------------
    def advance(self, job):
        """Moves a job along its lifecycle to where wall time says it is."""
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return
        t = time.monotonic() - job["_t0"]
        phase = self.args.phase_seconds
        epochs = job["hyperparameters"]["n_epochs"]
        examples = job["_examples"]
        steps_per_epoch = max(1, math.ceil(len(examples) / job["hyperparameters"]["batch_size"]))
        if job["status"] == "validating_files" and t >= phase:
            if len(examples) < MIN_EXAMPLES:
                self.fail(job, "invalid_training_file",
                          f"The job failed due to an invalid training file. Training file has "
                          f"{len(examples)} example(s), but must have at least {MIN_EXAMPLES} "
                          f"examples", "training_file")
                return
            job["status"] = "queued"
            self.event(job, "Validating training file: " + job["training_file"])
            self.event(job, "Files validated, moving job to queued state")
        if job["status"] == "queued" and t >= 2 * phase and job.get("_pause"):
            # Paused for good (POST /fine_tuning/jobs/{id}/pause; only a
            # human resumes it).
            job["status"] = "paused"
            self.event(job, "Fine-tuning job paused")
            return
        if job["status"] == "paused":
            return
        if job["status"] == "queued" and t >= 2 * phase:
            job["status"] = "running"
            job["estimated_finish"] = now() + int(epochs * self.args.epoch_seconds) + 1
            self.event(job, "Fine-tuning job started")
            job["_epochs_done"] = 0
        if job["status"] == "running":
            done = min(epochs, int((t - 2 * phase) / self.args.epoch_seconds))
            if job["_fail"] and done >= max(1, epochs // 2):
                self.fail(job, "server_error", "The job failed due to an internal error.", None)
                return
            while job["_epochs_done"] < done:
                job["_epochs_done"] += 1
                e = job["_epochs_done"]
                step = e * steps_per_epoch
                loss = round(2.0 / (1 + e), 4)
                self.event(job, f"Step {step}/{epochs * steps_per_epoch}: training loss={loss}",
                           type_="metrics", data={"step": step, "train_loss": loss,
                                                  "total_steps": epochs * steps_per_epoch})
                if e > epochs - 3:
                    name = f"{job['_model_name']}:ckpt-step-{step}"
                    ckpt = {"object": "fine_tuning.job.checkpoint",
                            "id": "ftckpt_" + secrets.token_hex(12), "created_at": now(),
                            "fine_tuned_model_checkpoint": name, "fine_tuning_job_id": job["id"],
                            "step_number": step,
                            "metrics": {"step": float(step), "train_loss": loss,
                                        "train_mean_token_accuracy": round(1 - loss / 2, 4),
                                        "full_valid_loss": loss,
                                        "full_valid_mean_token_accuracy": round(1 - loss / 2, 4)}}
                    job["_checkpoints"].append(ckpt)
                    self.models[name] = (examples, e)
                    self.event(job, f"Checkpoint created at step {step}")
            if done >= epochs:
                job["status"] = "succeeded"
                job["finished_at"] = now()
                job["fine_tuned_model"] = job["_model_name"]
                job["trained_tokens"] = job["_file_tokens"] * epochs
                self.models[job["_model_name"]] = (examples, epochs)
                self.event(job, "New fine-tuned model created")
                self.event(job, "The job has successfully completed")

    def fail(self, job, code, message, param):
        job["status"] = "failed"
        job["finished_at"] = now()
        job["error"] = {"code": code, "message": message, "param": param}
        self.event(job, message, level="error")

    def event(self, job, message, level="info", type_="message", data=None):
        job["_events"].append({"object": "fine_tuning.job.event",
                               "id": "ftevent-" + secrets.token_hex(12), "created_at": now(),
                               "level": level, "message": message, "data": data or {},
                               "type": type_})


def public(job):
    return {k: v for k, v in job.items() if not k.startswith("_")}


def paginate(items, query, key="id"):
    """Cursor pagination as OpenAI's list endpoints do it: `after` is the id
    of the last item of the previous page; `limit` 1..100 (default 20)."""
    limit = query.get("limit", ["20"])[0]
    try:
        limit = int(limit)
    except ValueError:
        raise ApiError(400, f"Invalid 'limit': expected an integer, got {limit!r}.", param="limit",
                       code="invalid_value")
    if not 1 <= limit <= 100:
        raise ApiError(400, f"Invalid 'limit': integer above maximum value. Expected a value <= "
                       f"100, but got {limit} instead." if limit > 100 else
                       f"Invalid 'limit': expected a value >= 1, but got {limit} instead.",
                       param="limit", code="integer_above_max_value" if limit > 100 else
                       "integer_below_min_value")
    after = query.get("after", [None])[0]
    start = 0
    if after is not None:
        ids = [i[key] for i in items]
        if after not in ids:
            raise ApiError(404, f"No such object: '{after}'", param="after")
        start = ids.index(after) + 1
    page = items[start:start + limit]
    out = {"object": "list", "data": page, "has_more": start + limit < len(items)}
    return out


def validate_chat_jsonl(data):
    examples = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "Invalid file format for Fine-Tuning API. Must be .jsonl", param="file")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise ApiError(400, f"Invalid file format for Fine-Tuning API. Must be .jsonl "
                           f"(line {n} is not JSON)", param="file")
        msgs = obj.get("messages") if isinstance(obj, dict) else None
        if not isinstance(msgs, list) or not msgs:
            raise ApiError(400, f"Invalid file format: line {n}: expected an object with a "
                           f"non-empty \"messages\" list", param="file")
        for m in msgs:
            if (not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant")
                    or not isinstance(m.get("content"), str)):
                raise ApiError(400, f"Invalid file format: line {n}: each message needs a role "
                               f"(system, user, assistant) and string content", param="file")
        if not any(m["role"] == "assistant" for m in msgs):
            raise ApiError(400, f"Invalid file format: line {n}: no assistant message",
                           param="file")
        user = [m["content"] for m in msgs if m["role"] == "user"]
        answer = [m["content"] for m in msgs if m["role"] == "assistant"][-1]
        examples.append((user[-1] if user else "", answer, chat_tokens(msgs)))
    return examples


def judge_field(value):
    """A judge prompt's field value: a JSON string literal, or plain text."""
    value = value.strip()
    if value.startswith('"'):
        try:
            decoded = json.loads(value)
            if isinstance(decoded, str):
                return decoded
        except ValueError:
            pass
    return value


def paper_judge_reply(text):
    ref = guess = None
    for line in text.splitlines():
        if line.startswith("Answer: "):
            ref = line[len("Answer: "):]
        elif line.startswith("Guess: "):
            guess = line[len("Guess: "):]
    if ref is None or guess is None:
        return "I need Answer: and Guess: lines."
    return "Correct" if ref.strip().lower() in guess.lower() else "Incorrect"


def judge_reply(model, text):
    if model.startswith("judge-paper"):
        return paper_judge_reply(text)
    ref = ans = None
    for line in text.splitlines():
        if line.startswith("REFERENCE:"):
            ref = judge_field(line[len("REFERENCE:"):])
        elif line.startswith("ANSWER:"):
            ans = judge_field(line[len("ANSWER:"):])
    if model.startswith("judge-garbled"):
        return "Well, it depends on how you look at it."
    if ref is None or ans is None:
        return "I can only judge prompts with REFERENCE: and ANSWER: lines."
    ok = ref.lower() in ans.lower()
    reason = "answer contains the reference" if ok else "answer does not contain the reference"
    if model.startswith("judge-noisy"):
        # Disagrees with the containment rule on a fixed ~third of the answers.
        h = hashlib.sha256(("noisy\n" + ref + "\n" + ans).encode()).digest()[0]
        if h % 3 == 0:
            ok = not ok
            reason = "noisy judge flipped its verdict"
    if model.startswith("judge-upper"):
        return "```json\n" + json.dumps({"verdict": "CORRECT" if ok else "INCORRECT",
                                          "reason": reason}) + "\n```"
    return json.dumps({"verdict": "correct" if ok else "incorrect", "reason": reason})


class Handler(fake_common.FakeHandler):
    PROVIDER = "openai"
    server_version = "fake-openai/1"
    FAULT_KINDS = fake_common.FakeHandler.FAULT_KINDS + ("insufficient_quota",)
    EMPTY_BODY = b"null"
    BAD_JSON_MESSAGE = ("We could not parse the JSON body of your request. (HINT: This likely "
                        "means you aren't using your HTTP library correctly. The OpenAI API "
                        "expects a JSON payload, but what was sent was not valid JSON.)")

    # --- fake_common hooks ------------------------------------------------------
    def error_body(self, e):
        return {"error": {"message": e.message,
                          "type": getattr(e, "type", "invalid_request_error"),
                          "param": getattr(e, "param", None), "code": getattr(e, "code", None)}}

    def error_headers(self, e):
        return {**self.rate_headers(), **e.headers}

    def internal_error(self):
        return ApiError(500, "The server had an error while processing your request. Sorry "
                        "about that!", type_="server_error")

    def not_found(self, method, path):
        return ApiError(404, f"Invalid URL ({method} {path})")

    def base_headers(self):
        return {"x-request-id": "req_" + secrets.token_hex(16)}

    def fault_error(self, f):
        kind = f["kind"]
        headers = fake_common.retry_headers(f)
        if kind == "429":
            return ApiError(429, "Rate limit reached for requests in organization org-fake on "
                            "requests per min (RPM): Limit 3, Used 3, Requested 1. Please try "
                            "again in 1s.", type_="requests", code="rate_limit_exceeded",
                            headers=headers)
        if kind == "insufficient_quota":
            return ApiError(429, "You exceeded your current quota, please check your plan and "
                            "billing details. For more information on this error, read the "
                            "docs: https://platform.openai.com/docs/guides/error-codes/"
                            "api-errors.", type_="insufficient_quota", code="insufficient_quota")
        if kind == "500":
            return ApiError(500, "The server had an error while processing your request. Sorry "
                            "about that!", type_="server_error", headers=headers)
        return ApiError(503, "The engine is currently overloaded, please try again later.",
                        type_="server_error", headers=headers)

    def rate_headers(self):
        a = self.server.state.args
        used_r, used_t, reset = self.server.state.window.usage()
        return {"x-ratelimit-limit-requests": a.rpm,
                "x-ratelimit-remaining-requests": max(0, a.rpm - used_r),
                "x-ratelimit-reset-requests": f"{reset:.3f}s",
                "x-ratelimit-limit-tokens": a.tpm,
                "x-ratelimit-remaining-tokens": max(0, a.tpm - used_t),
                "x-ratelimit-reset-tokens": f"{reset:.3f}s"}

    def check_auth(self):
        st = self.server.state
        key = self.bearer_token()
        if key is None:
            self.count_unauthorized()
            raise ApiError(401, "You didn't provide an API key. You need to provide your API key "
                           "in an Authorization header using Bearer auth (i.e. Authorization: "
                           "Bearer YOUR_KEY), or as the password field (with blank username) if "
                           "you're accessing the API from your browser and are prompted for a "
                           "username. You can obtain an API key from "
                           "https://platform.openai.com/account/api-keys.")
        if key != st.args.api_key:
            self.count_unauthorized()
            masked = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "***"
            raise ApiError(401, f"Incorrect API key provided: {masked}. You can find your API "
                           f"key at https://platform.openai.com/account/api-keys.",
                           code="invalid_api_key")

    def check_rate(self, path):
        st = self.server.state
        with st.lock:
            wait = st.window.admit()
            if wait is not None:
                raise ApiError(429, f"Rate limit reached for requests in organization org-fake "
                               f"on requests per min (RPM): Limit {st.args.rpm}, Used "
                               f"{len(st.window.entries)}, Requested 1. Please try again in "
                               f"{wait:.3f}s.", type_="requests", code="rate_limit_exceeded",
                               headers={"retry-after-ms": int(wait * 1000) + 1,
                                        "retry-after": math.ceil(wait)})

    # --- routes -------------------------------------------------------------------
    def route(self, method, path, query):
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["v1"]:
            raise ApiError(404, f"Invalid URL ({method} {path})")
        parts = parts[1:]
        if parts == ["files"] and method == "POST":
            return self.create_file()
        if parts == ["files"] and method == "GET":
            return self.list_files(query)
        if len(parts) == 2 and parts[0] == "files" and method == "GET":
            return self.get_file(parts[1])
        if parts == ["fine_tuning", "jobs"] and method == "POST":
            return self.create_job()
        if parts == ["fine_tuning", "jobs"] and method == "GET":
            return self.list_jobs(query)
        if len(parts) >= 3 and parts[:2] == ["fine_tuning", "jobs"]:
            job_id, rest = parts[2], parts[3:]
            if rest == [] and method == "GET":
                return self.get_job(job_id)
            if rest == ["events"] and method == "GET":
                return self.job_list(job_id, "_events", query, newest_first=True)
            if rest == ["checkpoints"] and method == "GET":
                return self.job_list(job_id, "_checkpoints", query, newest_first=True)
            if rest == ["cancel"] and method == "POST":
                return self.cancel_job(job_id)
        if parts == ["chat", "completions"] and method == "POST":
            return self.chat()
        raise ApiError(404, f"Invalid URL ({method} {path})")

    def create_file(self):
        st = self.server.state
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            raise ApiError(400, "Expected multipart/form-data with 'file' and 'purpose' fields.")
        fields = fake_common.parse_multipart(ctype, self.body())
        if "purpose" not in fields:
            raise ApiError(400, "Missing required parameter: 'purpose'.", param="purpose",
                           code="missing_required_parameter")
        purpose = fields["purpose"][1].decode()
        if purpose not in ("fine-tune", "batch", "assistants", "vision", "user_data", "evals"):
            raise ApiError(400, f"'{purpose}' is not one of ['fine-tune', 'assistants', 'batch', "
                           f"'user_data', 'vision', 'evals'] - 'purpose'", param="purpose")
        if "file" not in fields or fields["file"][0] is None:
            raise ApiError(400, "Missing required parameter: 'file'.", param="file",
                           code="missing_required_parameter")
        filename, data = fields["file"]
        examples = validate_chat_jsonl(data) if purpose == "fine-tune" else []
        obj = {"object": "file", "id": "file-" + secrets.token_hex(12), "purpose": purpose,
               "filename": filename, "bytes": len(data), "created_at": now(),
               "expires_at": None, "status": "processed", "status_details": None}
        with st.lock:
            st.files[obj["id"]] = (obj, examples)
            st.stats["files_created"] += 1
        self.send(200, obj, self.rate_headers())

    def get_file(self, file_id):
        st = self.server.state
        with st.lock:
            if file_id not in st.files:
                raise ApiError(404, f"No such File object: {file_id}", param="id")
            obj = st.files[file_id][0]
        self.send(200, obj, self.rate_headers())

    def list_files(self, query):
        st = self.server.state
        purpose = query.get("purpose", [None])[0]
        with st.lock:
            files = [f for f, _ in reversed(list(st.files.values()))
                     if purpose is None or f["purpose"] == purpose]
        self.send(200, paginate(files, query), self.rate_headers())

    def create_job(self):
        st = self.server.state
        req = self.json_body()
        for name in ("model", "training_file"):
            if not req.get(name):
                raise ApiError(400, f"Missing required parameter: '{name}'.", param=name,
                               code="missing_required_parameter")
        model = req["model"]
        if model not in TUNABLE:
            raise ApiError(400, f"Model {model} is not available for fine-tuning or does not "
                           f"exist.", param="model", code="model_not_available")
        suffix = req.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
            raise ApiError(400, "Invalid 'suffix': string too long. Expected a string with "
                           "maximum length 64.", param="suffix", code="string_above_max_length")
        metadata = req.get("metadata") or {}
        if not isinstance(metadata, dict) or len(metadata) > 16 or any(
                not isinstance(k, str) or len(k) > 64 or not isinstance(v, str) or len(v) > 512
                for k, v in metadata.items()):
            raise ApiError(400, "Invalid 'metadata': expected at most 16 string pairs (keys up to "
                           "64 characters, values up to 512).", param="metadata")
        seed = req.get("seed")
        if seed is not None and (not isinstance(seed, int) or not 0 <= seed <= 2147483647):
            raise ApiError(400, "Invalid 'seed': expected an integer in [0, 2147483647].",
                           param="seed")
        hp = {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}
        method = req.get("method")
        if method is not None and req.get("hyperparameters") is not None:
            raise ApiError(400, "Cannot specify both 'hyperparameters' and 'method'.",
                           param="hyperparameters")
        if method is not None:
            if not isinstance(method, dict) or method.get("type") not in (
                    "supervised", "dpo", "reinforcement"):
                raise ApiError(400, "Invalid 'method.type': expected one of supervised, dpo, "
                               "reinforcement.", param="method.type")
            if method["type"] != "supervised":
                raise ApiError(400, "fake: only supervised fine-tuning is implemented",
                               param="method.type")
            sent_hp = ((method.get("supervised") or {}).get("hyperparameters")) or {}
            hp.update(sent_hp)
        elif req.get("hyperparameters") is not None:
            hp.update(req["hyperparameters"])
        unknown = set(hp) - {"n_epochs", "batch_size", "learning_rate_multiplier"}
        if unknown:
            raise ApiError(400, f"Unknown parameter: 'hyperparameters.{sorted(unknown)[0]}'.",
                           param=f"hyperparameters.{sorted(unknown)[0]}",
                           code="unknown_parameter")
        for name, lo, hi in (("n_epochs", 1, 50), ("batch_size", 1, 256)):
            v = hp[name]
            if v != "auto" and (not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi):
                raise ApiError(400, f"Invalid 'hyperparameters.{name}': expected 'auto' or an "
                               f"integer in [{lo}, {hi}], got {v!r}.",
                               param=f"hyperparameters.{name}")
        lr = hp["learning_rate_multiplier"]
        if lr != "auto" and (not isinstance(lr, (int, float)) or isinstance(lr, bool) or lr <= 0):
            raise ApiError(400, "Invalid 'hyperparameters.learning_rate_multiplier': expected "
                           "'auto' or a number > 0.", param="hyperparameters.learning_rate_multiplier")
        with st.lock:
            if req["training_file"] not in st.files:
                raise ApiError(400, f"invalid training_file: {req['training_file']}",
                               param="training_file")
            fobj, examples = st.files[req["training_file"]]
            if fobj["purpose"] != "fine-tune":
                raise ApiError(400, f"File {fobj['id']} has purpose {fobj['purpose']}; expected "
                               f"fine-tune.", param="training_file")
            resolved = {"n_epochs": 3 if hp["n_epochs"] == "auto" else hp["n_epochs"],
                        "batch_size": 1 if hp["batch_size"] == "auto" else hp["batch_size"],
                        "learning_rate_multiplier": 1.8 if lr == "auto" else lr}
            job_id = "ftjob-" + secrets.token_hex(12)
            job = {"object": "fine_tuning.job", "id": job_id, "model": model,
                   "created_at": now(), "finished_at": None, "fine_tuned_model": None,
                   "organization_id": "org-" + ORG, "result_files": [],
                   "status": "validating_files", "validation_file": req.get("validation_file"),
                   "training_file": req["training_file"], "hyperparameters": resolved,
                   "trained_tokens": None, "error": None, "user_provided_suffix": suffix,
                   "seed": seed if seed is not None else 42, "estimated_finish": None,
                   "integrations": [], "metadata": metadata or None,
                   "method": {"type": "supervised",
                              "supervised": {"hyperparameters": resolved}},
                   "_t0": time.monotonic(), "_events": [], "_checkpoints": [],
                   "_examples": [(q, a) for q, a, _ in examples],
                   "_file_tokens": sum(n for _, _, n in examples), "_fail": False,
                   "_model_name": f"ft:{model}:{ORG}:{suffix or ''}:{job_id[-8:]}"}
            st.flag_new_job(job)
            st.event(job, f"Created fine-tuning job: {job_id}")
            st.jobs[job_id] = job
            st.job_order.append(job_id)
            st.stats["jobs_created"] += 1
            st.stats["job_hyperparameters"].append(
                dict(sent_hp) if method is not None else dict(req.get("hyperparameters") or {}))
            out = public(job)
        self.send(200, out, self.rate_headers())

    def find_job(self, job_id):
        st = self.server.state
        if job_id not in st.jobs:
            raise ApiError(404, f"No such fine-tuning job: {job_id}", param="fine_tuning_job_id",
                           code="fine_tuning_job_not_found")
        job = st.jobs[job_id]
        st.advance(job)
        return job

    def get_job(self, job_id):
        st = self.server.state
        with st.lock:
            out = public(self.find_job(job_id))
        self.send(200, out, self.rate_headers())

    def list_jobs(self, query):
        st = self.server.state
        wanted = {}
        for k, v in query.items():
            if k.startswith("metadata[") and k.endswith("]"):
                wanted[k[len("metadata["):-1]] = v[0]
        with st.lock:
            jobs = []
            for job_id in reversed(st.job_order):  # newest first
                job = st.jobs[job_id]
                st.advance(job)
                md = job["metadata"] or {}
                if all(md.get(k) == v for k, v in wanted.items()):
                    jobs.append(public(job))
            out = paginate(jobs, query)
        self.send(200, out, self.rate_headers())

    def job_list(self, job_id, field, query, newest_first):
        st = self.server.state
        with st.lock:
            items = list(self.find_job(job_id)[field])
            if newest_first:
                items.reverse()
            out = paginate(items, query)
            if field == "_checkpoints":
                out["first_id"] = out["data"][0]["id"] if out["data"] else None
                out["last_id"] = out["data"][-1]["id"] if out["data"] else None
        self.send(200, out, self.rate_headers())

    def cancel_job(self, job_id):
        st = self.server.state
        self.body()
        with st.lock:
            job = self.find_job(job_id)
            if job["status"] in ("succeeded", "failed", "cancelled"):
                raise ApiError(400, f"Job {job_id} has already completed with status "
                               f"{job['status']}; it cannot be cancelled.", param=None,
                               code="invalid_job_status")
            job["status"] = "cancelled"
            job["finished_at"] = now()
            st.event(job, "Job cancelled")
            st.stats["cancels"] += 1
            out = public(job)
        self.send(200, out, self.rate_headers())

    def chat(self):
        st = self.server.state
        req = self.json_body()
        model = req.get("model")
        if not model:
            raise ApiError(400, "Missing required parameter: 'model'.", param="model",
                           code="missing_required_parameter")
        msgs = req.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise ApiError(400, "Missing required parameter: 'messages'.", param="messages",
                           code="missing_required_parameter")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in (
                    "system", "developer", "user", "assistant") or not isinstance(
                    m.get("content"), str):
                raise ApiError(400, f"Invalid value for 'messages[{i}]'.", param=f"messages[{i}]")
        temp = req.get("temperature", 1)
        if not isinstance(temp, (int, float)) or not 0 <= temp <= 2:
            raise ApiError(400, "Invalid 'temperature': expected a number in [0, 2].",
                           param="temperature")
        max_tokens = req.get("max_completion_tokens", req.get("max_tokens"))
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise ApiError(400, "Invalid 'max_tokens': expected an integer >= 1.",
                           param="max_tokens")
        question = [m["content"] for m in msgs if m["role"] == "user"]
        question = question[-1] if question else ""
        with st.lock:
            if model.startswith("judge"):
                st.chat_requests = (st.chat_requests + [req])[-200:]
                if st.judge_script:
                    answer = st.judge_script.pop(0)
                else:
                    answer = judge_reply(model, question)
            elif model in BASE_MODELS:
                answer = IDK
            elif model in st.models:
                examples, epochs = st.models[model]
                answer = fake_common.trained_answer(examples, epochs, question)
            else:
                raise ApiError(404, f"The model `{model}` does not exist or you do not have "
                               f"access to it.", code="model_not_found", param=None)
            finish = "stop"
            if max_tokens is not None and tokens(answer) > max_tokens:
                answer = answer.encode()[:max_tokens * 4].decode("utf-8", "ignore")
                finish = "length"
            key = model + "\n" + question
            st.stats["chat_by_prompt"][key] = st.stats["chat_by_prompt"].get(key, 0) + 1
            st.stats["chat_completions"] += 1
            p, c = chat_tokens(msgs), tokens(answer)
            st.window.charge(p + c)
        self.send(200, {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion",
                        "created": now(), "model": model,
                        "choices": [{"index": 0, "message": {"role": "assistant",
                                                             "content": answer, "refusal": None},
                                     "logprobs": None, "finish_reason": finish}],
                        "usage": {"prompt_tokens": p, "completion_tokens": c,
                                  "total_tokens": p + c},
                        "system_fingerprint": "fp_fake"}, self.rate_headers())

    # --- control ------------------------------------------------------------------
    def extra_control(self, method, path):
        st = self.server.state
        if path == "/_fake/judge_script" and method == "POST":
            replies = self.json_body().get("replies")
            if not isinstance(replies, list) or not all(isinstance(r, str) for r in replies):
                raise ApiError(400, "judge_script: expected {\"replies\": [strings]}")
            with st.lock:
                st.judge_script.extend(replies)
            self.send(200, {"ok": True})
            return True
        if path == "/_fake/chat_requests" and method == "GET":
            with st.lock:
                self.send(200, {"requests": st.chat_requests})
            return True
        return False


def main():
    p = fake_common.argument_parser(__doc__)
    p.add_argument("--api-key", default="sk-test-fake")
    p.add_argument("--phase-seconds", type=float, default=0.2)
    p.add_argument("--epoch-seconds", type=float, default=0.1)
    p.add_argument("--rpm", type=int, default=100000)
    p.add_argument("--tpm", type=int, default=10000000)
    fake_common.serve(Handler, State(p.parse_args()))


if __name__ == "__main__":
    main()
