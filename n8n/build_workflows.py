"""Writes the n8n workflow files in n8n/workflows/ from one description, so the three share their nodes.

    python n8n/build_workflows.py          # rewrite the JSON files
    python n8n/build_workflows.py --check  # exit 1 if a file differs from what this script writes

The JSON files are what users import and what tests run; this script only keeps them consistent. After
editing a workflow in n8n, either port the change here or stop using this script for that file.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "workflows"

CREDENTIAL = {"httpHeaderAuth": {"id": "avatarApiKeyCred", "name": "Avatar Generator API key"}}
DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
TAG = {"id": "avatarGenerator1", "name": "Avatar Generator"}

CFG = "$('Config').first().json"

# ------------------------------------------------------------------------------------------------ JavaScript

FNV = """\
// FNV-1a (32 bit): a short, stable fingerprint of the request for the Idempotency-Key.
function fingerprint(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}
"""

PROBLEM = """\
// The server's errors are RFC 9457 problem+json ({title, detail}); n8n may hand them over as text.
function parse(body) {
  if (typeof body !== 'string') return body;
  try { return JSON.parse(body); } catch (error) { return body; }
}
function detail(body) {
  body = parse(body);
  if (body && typeof body === 'object') return body.detail || body.title || JSON.stringify(body).slice(0, 500);
  return String(body ?? '').slice(0, 500) || 'no details';
}
"""

TEXT_INPUT = """\
// One clip per incoming item. Fields: text (what the avatar says, required), image_url (a reference photo
// anywhere n8n can download it, optional), profile (a trained face profile's name, optional), options (more
// fields of the API's input, optional, e.g. {"speed": 1.25, "seed": 7, "width": 1024, "height": 576}).
// Started with no input at all (the editor's "Execute workflow" button, `n8n execute`), it speaks SAMPLE_TEXT.
const SAMPLE_TEXT = 'Hello! I am your avatar. This clip was made by an n8n workflow.';
const FIELDS = ['text', 'image_url', 'profile', 'options'];
const blank = (value) => value === undefined || value === null || String(value).trim() === '';

function asOptions(value) {
  if (blank(value)) return {};
  if (typeof value === 'string') {
    try { value = JSON.parse(value); } catch (error) { throw new Error(`options is not JSON: ${value}`); }
  }
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error('options must be an object');
  return value;
}

return $input.all().map((item, index) => {
  const source = %(source)s;
  const empty = FIELDS.every((name) => blank(source[name]) || (name === 'options' && typeof source[name] === 'object'
    && !Array.isArray(source[name]) && Object.keys(source[name]).length === 0));
  let text = blank(source.text) ? '' : String(source.text).trim();
  if (!text) {
    if (empty && %(allow_sample)s) text = SAMPLE_TEXT;
    else throw new Error('"text" is required (what the avatar says)');
  }
  return {
    json: {
      index,
      text,
      image_url: blank(source.image_url) ? '' : String(source.image_url).trim(),
      profile: blank(source.profile) ? '' : String(source.profile).trim(),
      options: asOptions(source.options),
    },
    pairedItem: index,
  };
});
"""

CHAT_INPUT = """\
// The chat message. From the Chat Trigger: chatInput and sessionId. Called by another workflow: the same
// fields. Started with no input at all (`n8n execute`, the editor's "Execute workflow" button): SAMPLE.
const SAMPLE = 'Hi there! What can you do?';
return $input.all().map((item, index) => {
  const message = String(item.json.chatInput ?? '').trim();
  const sessionId = String(item.json.sessionId ?? '') || `n8n-${$execution.id}`;
  return { json: { index, chatInput: message || SAMPLE, sessionId }, pairedItem: index };
});
"""

COMPOSE_REPLY = """\
// THE STEP TO SWAP FOR YOUR LLM. Takes chatInput, returns { reply } -- the text the avatar speaks.
// As shipped it answers from a few rules, with no external service, so the workflow runs anywhere.
// To use a model: replace this node with e.g. an "AI Agent" or "OpenAI > Message a model" node and make
// sure the next node ("Build request") finds the answer in $json.reply (add a Set node: reply = {{ $json.output }}).
// Keep replies short: one clip holds about 20 seconds of speech (~50 words).
const MAX_WORDS = 45;

function compose(message) {
  const text = message.trim();
  const lower = text.toLowerCase();
  if (/^(hi|hello|hey|good (morning|afternoon|evening))\\b/.test(lower)) {
    return 'Hello, and welcome! I am your video avatar. Ask me anything, and I will answer you in a short clip.';
  }
  if (/what can you do|who are you|help/.test(lower)) {
    return 'I turn text into a talking video of a face. Right now my answers come from a simple script; '
      + 'connect a language model in the Compose reply step and I will say whatever it answers.';
  }
  if (/thank/.test(lower)) return 'You are very welcome. It was a pleasure talking to you!';
  const quoted = text.split(/\\s+/).slice(0, 12).join(' ');
  if (text.endsWith('?')) {
    return `That is a good question: ${quoted} I do not have a language model yet, so I cannot answer it properly, `
      + 'but once one is connected I will.';
  }
  return `You said: ${quoted}. Thank you for telling me. Ask me a question and I will answer on video.`;
}

return $input.all().map((item, index) => {
  const words = compose(item.json.chatInput).split(/\\s+/);
  const reply = words.length > MAX_WORDS ? words.slice(0, MAX_WORDS).join(' ') + '...' : words.join(' ');
  return { json: { ...item.json, reply }, pairedItem: index };
});
"""

BUILD_REQUEST = (
    FNV
    + PROBLEM
    + """\
// The API request for each item (POST /v1/predictions {"input": {...}}) and its Idempotency-Key: the same
// execution, item and request give the same key, so a retry of "Create job" never makes a second job.
const config = $('Config').first().json;
return $input.all().map((item, position) => {
  const input = $('Input').itemMatching(position).json;
  const body = { input: { ...config.clip_options, ...input.options, text: %(text)s } };
  if (input.profile) body.input.profile = input.profile;
  if (input.image_url) {
    // This item came through "Upload reference image": its answer holds the file id.
    const answer = item.json;
    if (!(answer.statusCode >= 200 && answer.statusCode < 300)) {
      throw new Error(`Uploading the reference image to the Avatar Generator failed (HTTP ${answer.statusCode}): ${detail(answer.body ?? answer.data)}`);
    }
    body.input.image = parse(answer.body).id;
  }
%(extra)s  const key = `n8n-${$workflow.id}-${$execution.id}-${input.index}-${fingerprint(JSON.stringify(body))}`;
  return { json: { index: input.index, body, idempotency_key: key }, pairedItem: position };
}).sort((a, b) => a.json.index - b.json.index);  // back in input order after the image branch
"""
)

CHECK_JOB = (
    PROBLEM
    + """\
// Where each job stands, from the server's answers (full responses: statusCode, body). Sets `next` on every
// item: "download" (succeeded), "wait" (look again later) or "error" (with `message`, for "Stop and Error").
const config = %(cfg)s;
const POLICY = '%(policy)s';  // what a job that is still running means here: poll | created | callback

function classify(response) {
  const { statusCode } = response;
  // JSON answers arrive parsed in `body`; problem+json ones (errors) as text in `data`.
  const job = parse(response.body ?? response.data);
  const state = (next, message) => ({ next, message: message ?? null, job: job && typeof job === 'object' ? job : null });
  if (!(statusCode >= 200 && statusCode < 300)) {
    const why = statusCode === 401
      ? 'the API key was refused: check the "Avatar Generator API key" credential (Header Auth, name Authorization, value Bearer <key>)'
      : detail(job);
    return state('error', `Avatar Generator answered HTTP ${statusCode}: ${why}`);
  }
  if (job.status === 'succeeded') {
    if (!job.output || !job.output.video) return state('error', `Avatar job ${job.id} succeeded but has no video in its output`);
    return state('download');
  }
  if (job.status === 'failed') {
    return state('error', `Avatar job ${job.id} failed${job.error_code ? ` (${job.error_code})` : ''}: ${job.error || 'no error message'}`);
  }
  if (job.status === 'canceled') {
    // Not "canceled": n8n files an execution whose error message contains that word as canceled by a user
    // (status "canceled", not "error"), which would hide this failure from error workflows.
    return state('error', `Avatar job ${job.id} was cancelled on the server before it finished${job.error ? `: ${job.error}` : ''}`);
  }
  return state('wait');
}

const states = $input.all().map((item) => classify(item.json));
const timedOut = Date.now() > config.started_at + config.timeout_s * 1000;
const pending = states.some((state) => state.next === 'wait');
return states.map((state, index) => {
  const job = state.job || {};
  if (state.next === 'wait' && POLICY === 'callback') {
    // The Wait node resumed on the server's "completed" callback, or when its time limit ran out.
    state = { ...state, next: 'error', message: `Avatar job ${job.id} did not finish within ${config.timeout_s} s `
      + `(it is ${job.status}; no completion callback arrived; see ${config.server_url}/v1/predictions/${job.id})` };
  } else if (state.next === 'wait' && POLICY === 'poll' && timedOut) {
    state = { ...state, next: 'error', message: `Avatar job ${job.id} did not finish within ${config.timeout_s} s `
      + `(it is ${job.status}; see ${config.server_url}/v1/predictions/${job.id})` };
  } else if (state.next === 'download' && POLICY === 'poll' && pending && !timedOut) {
    // Finished items stay in the loop until every item is done: a workflow hands back only the last pass
    // of a loop, so all videos must come out of one pass.
    state = { ...state, next: 'wait' };
  }
  return { json: state, pairedItem: index };
});
"""
)

SERVER_URL_EXPR = (
    "={{ (() => { try { return $env.AVATAR_SERVER_URL } catch (error) { return '' } })() || '"
    + DEFAULT_SERVER_URL
    + "' }}"
)

CLIP_OPTIONS_EXPR = (
    "={{ (() => { let raw = ''; try { raw = $env.AVATAR_CLIP_OPTIONS || '' } catch (error) {} "
    "return raw ? JSON.parse(raw) : {} })() }}"
)

# ------------------------------------------------------------------------------------------------ nodes


class Flow:
    def __init__(self, name: str, wf_id: str, description: str):
        self.name, self.wf_id, self.description = name, wf_id, description
        self.nodes: list[dict] = []
        self.connections: dict[str, dict] = {}

    def node(self, name: str, type_: str, version: float, params: dict, pos: tuple[int, int], **extra) -> str:
        node = {
            "parameters": params,
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"avatar-generator/{self.wf_id}/{name}")),
            "name": name,
            "type": type_,
            "typeVersion": version,
            "position": [pos[0], pos[1]],
        }
        node.update(extra)
        self.nodes.append(node)
        return name

    def link(self, src: str, dst: str, output: int = 0, dst_input: int = 0) -> None:
        outputs = self.connections.setdefault(src, {"main": []})["main"]
        while len(outputs) <= output:
            outputs.append([])
        outputs[output].append({"node": dst, "type": "main", "index": dst_input})

    def chain(self, *names: str) -> None:
        for a, b in zip(names, names[1:]):
            self.link(a, b)

    def document(self) -> dict:
        return {
            "id": self.wf_id,
            "name": self.name,
            "nodes": self.nodes,
            "connections": self.connections,
            "settings": {"executionOrder": "v1", "callerPolicy": "workflowsFromSameOwner"},
            "staticData": None,
            "pinData": {},
            "meta": {"templateCredsSetupCompleted": False},
            "tags": [TAG],
            "active": False,
            "versionId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"avatar-generator/{self.wf_id}/version-1")),
        }


def sticky(flow: Flow, name: str, content: str, pos, width=420, height=300) -> None:
    flow.node(name, "n8n-nodes-base.stickyNote", 1, {"content": content, "height": height, "width": width}, pos)


def code(flow: Flow, name: str, js: str, pos, per_item: bool = False) -> str:
    params = {"jsCode": js}
    if per_item:
        params = {"mode": "runOnceForEachItem", "jsCode": js}
    return flow.node(name, "n8n-nodes-base.code", 2, params, pos)


def config(flow: Flow, pos, extra: list[tuple[str, str, object]] = ()) -> str:
    fields = [
        # The one place that says where the server is: AVATAR_SERVER_URL from n8n's environment when n8n lets
        # expressions read it (N8N_BLOCK_ENV_ACCESS_IN_NODE=false), else the URL written here.
        ("server_url", "string", SERVER_URL_EXPR),
        # Input fields every clip gets unless the item sets them (e.g. {"speed": 1.25, "width": 1024}):
        # AVATAR_CLIP_OPTIONS (JSON) from n8n's environment when readable, else what is written here.
        ("clip_options", "object", CLIP_OPTIONS_EXPR),
        ("poll_interval_s", "number", 2),
        ("poll_wait_s", "number", 20),
        ("timeout_s", "number", 1800),
        *extra,
        ("started_at", "number", "={{ $now.toMillis() }}"),
    ]
    assignments = [
        {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{flow.wf_id}/config/{n}")), "name": n, "value": v, "type": t}
        for n, t, v in fields
    ]
    return flow.node("Config", "n8n-nodes-base.set", 3.4,
                     {"assignments": {"assignments": assignments}, "includeOtherFields": True, "options": {}}, pos)


def http(flow: Flow, name: str, pos, method: str, url: str, *, auth: bool = True, headers=None, json_body=None,
         multipart_file: str | None = None, full: bool = True, file_out: str | None = None,
         timeout_ms: str | int = 60000, retry: bool = True) -> str:
    params: dict = {"method": method, "url": url}
    if auth:
        params.update(authentication="genericCredentialType", genericAuthType="httpHeaderAuth")
    if headers:
        params.update(sendHeaders=True, headerParameters={"parameters": [{"name": k, "value": v} for k, v in headers]})
    if json_body is not None:
        params.update(sendBody=True, specifyBody="json", jsonBody=json_body)
    if multipart_file is not None:
        params.update(sendBody=True, contentType="multipart-form-data", bodyParameters={"parameters": [
            {"parameterType": "formBinaryData", "name": "file", "inputDataFieldName": multipart_file}]})
    response: dict = {}
    if full:
        # Every answer comes back as {statusCode, headers, body}: the next node turns errors into our messages.
        response = {"fullResponse": True, "neverError": True}
    if file_out:
        response = {"responseFormat": "file", "outputPropertyName": file_out}
    params["options"] = {"response": {"response": response}, "timeout": timeout_ms}
    extra = {"credentials": CREDENTIAL} if auth else {}
    if retry:  # transport errors (connection refused, reset) are retried; with the Idempotency-Key that is safe
        extra.update(retryOnFail=True, maxTries=3, waitBetweenTries=2000)
    return flow.node(name, "n8n-nodes-base.httpRequest", 4.2, params, pos, **extra)


def switch(flow: Flow, name: str, pos, outputs: list[str]) -> str:
    rules = []
    for key in outputs:
        rules.append({
            "conditions": {
                "options": {"caseSensitive": True, "leftValue": "", "typeValidation": "strict", "version": 2},
                "conditions": [{
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{flow.wf_id}/{name}/{key}")),
                    "leftValue": "={{ $json.next }}",
                    "rightValue": key,
                    "operator": {"type": "string", "operation": "equals"},
                }],
                "combinator": "and",
            },
            "renameOutput": True,
            "outputKey": key,
        })
    return flow.node(name, "n8n-nodes-base.switch", 3.2, {"rules": {"values": rules}, "options": {}}, pos)


def if_image(flow: Flow, pos) -> str:
    return flow.node("Reference image?", "n8n-nodes-base.if", 2.2, {
        "conditions": {
            "options": {"caseSensitive": True, "leftValue": "", "typeValidation": "strict", "version": 2},
            "conditions": [{
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{flow.wf_id}/if-image")),
                "leftValue": "={{ $json.image_url }}",
                "rightValue": "",
                "operator": {"type": "string", "operation": "notEmpty", "singleValue": True},
            }],
            "combinator": "and",
        },
        "options": {},
    }, pos)


# The message of an item that reports an error: ours (`message`), or n8n's error output of a failed node
# (`error` as text from a Code node, or an object with `message` from an HTTP Request node).
ERROR_OF_ITEM = "$json.message || ($json.error && $json.error.message) || $json.error || 'the request failed'"


def stop(flow: Flow, name: str, pos, message: str = "={{ $json.message }}") -> str:
    return flow.node(name, "n8n-nodes-base.stopAndError", 1, {"errorType": "errorMessage", "errorMessage": message},
                     pos)


def image_branch(flow: Flow, x: int, y: int) -> tuple[str, str]:
    """Input → (image? download + upload) → Merge. Returns (entry node, the Merge to connect after).

    Both branches meet in one Merge so the items go on together: split across two passes, they would loop
    separately and only the last pass's videos would come out of the workflow."""
    cond = if_image(flow, (x, y))
    down = http(flow, "Download reference image", (x + 240, y - 120), "GET", "={{ $json.image_url }}", auth=False,
                full=False, file_out="image", timeout_ms=60000)
    up = http(flow, "Upload reference image", (x + 480, y - 120), "POST", f"={{{{ {CFG}.server_url }}}}/v1/files",
              multipart_file="image", timeout_ms=120000)
    merge = flow.node("Together again", "n8n-nodes-base.merge", 3, {}, (x + 720, y))
    flow.link(cond, down, 0)
    flow.link(down, up)
    flow.link(up, merge, 0, 0)
    flow.link(cond, merge, 1, 1)
    return cond, merge


def result_node(flow: Flow, pos, extra: list[tuple[str, str, str]] = (), job: str = "$('Check job').item.json.job") -> str:
    fields = [
        ("id", "string", f"={{{{ {job}.id }}}}"),
        ("status", "string", f"={{{{ {job}.status }}}}"),
        ("text", "string", f"={{{{ {job}.input.text }}}}"),
        ("video_url", "string", f"={{{{ {CFG}.server_url }}}}/download/{{{{ encodeURIComponent({job}.output.video) }}}}"),
        ("file_name", "string", f"={{{{ {job}.output.video }}}}"),
        ("size", "number", f"={{{{ {job}.output.size }}}}"),
        ("sha256", "string", f"={{{{ {job}.output.sha256 }}}}"),
        ("predict_time_s", "number", f"={{{{ {job}.metrics.predict_time }}}}"),
        *extra,
    ]
    assignments = [
        {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{flow.wf_id}/result/{n}")), "name": n, "value": v, "type": t}
        for n, t, v in fields
    ]
    # The MP4 stays attached as binary `video` (Set keeps binary data only with other fields included and
    # "Strip Binary Data" off); the job document itself is dropped.
    return flow.node("Result", "n8n-nodes-base.set", 3.4, {
        "assignments": {"assignments": assignments}, "includeOtherFields": True, "include": "except",
        "excludeFields": "job, next, message", "options": {"stripBinary": False}}, pos)


def download(flow: Flow, job_node: str, pos) -> str:
    return http(flow, "Download video", pos, "GET",
                f"={{{{ {CFG}.server_url }}}}/download/{{{{ encodeURIComponent($json.job.output.video) }}}}",
                full=False, file_out="video", timeout_ms=300000)


def build_request(flow: Flow, pos, *, text: str = "input.text", extra: str = "", on_error: str | None = None) -> str:
    js = BUILD_REQUEST % {"text": text, "extra": extra}
    name = code(flow, "Build request", js, pos)
    if on_error:
        flow.nodes[-1]["onError"] = on_error
    return name


def create_job(flow: Flow, pos) -> str:
    return http(flow, "Create job", pos, "POST", f"={{{{ {CFG}.server_url }}}}/v1/predictions",
                headers=[("Idempotency-Key", "={{ $json.idempotency_key }}")],
                json_body="={{ JSON.stringify($json.body) }}", timeout_ms=60000)


def polling_loop(flow: Flow, x: int, y: int, after: str) -> str:
    """after → Create job → Check job → Switch(download | wait → Wait → Get job → Check job | error → Stop)."""
    create = create_job(flow, (x, y))
    check = code(flow, "Check job", CHECK_JOB % {"cfg": CFG, "policy": "poll"}, (x + 240, y))
    route = switch(flow, "Route", (x + 480, y), ["download", "wait", "error"])
    wait = flow.node("Wait", "n8n-nodes-base.wait", 1.1,
                     {"amount": f"={{{{ {CFG}.poll_interval_s }}}}", "unit": "seconds"}, (x + 720, y + 140),
                     webhookId=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{flow.wf_id}/wait")))
    get = http(flow, "Get job", (x + 960, y + 140), "GET",
               f"={{{{ {CFG}.server_url }}}}/v1/predictions/{{{{ $json.job.id }}}}",
               # The server holds the answer until the job finishes or poll_wait_s pass (at most 60).
               headers=[("Prefer", f"=wait={{{{ {CFG}.poll_wait_s }}}}")],
               timeout_ms=f"={{{{ ({CFG}.poll_wait_s + 30) * 1000 }}}}")
    fail = stop(flow, "Stop and Error", (x + 720, y + 320))
    dl = download(flow, check, (x + 720, y - 140))
    flow.chain(after, create, check, route)
    flow.link(route, dl, 0)
    flow.link(route, wait, 1)
    flow.link(route, fail, 2)
    flow.chain(wait, get, check)
    return dl


# ------------------------------------------------------------------------------------------------ workflows

SUBWORKFLOW_INPUTS = {"inputSource": "workflowInputs", "workflowInputs": {"values": [
    {"name": "text"}, {"name": "image_url"}, {"name": "profile"}, {"name": "options", "type": "object"}]}}


def text_to_avatar() -> dict:
    flow = Flow("Avatar Generator: text to avatar (polling)", "avatarTextToVideo",
                "Text (+ optional reference image URL or face profile) in, the spoken MP4 out as binary data.")
    sticky(flow, "About", (
        "## Text to avatar (polling)\n"
        "Creates a job on the Avatar Generator (`POST /v1/predictions`), checks it every few seconds until it "
        "finishes (bounded by `timeout_s` in **Config**), then downloads the MP4 as binary data `video`.\n\n"
        "**Set up:** the server URL in **Config** (or `AVATAR_SERVER_URL`), and the Header Auth credential "
        "**Avatar Generator API key** (`Authorization` / `Bearer <key>`).\n\n"
        "**Use:** call it from another workflow (*Execute Workflow*: text, image_url, profile, options), or run "
        "it here for a sample sentence. A failed or canceled job stops with the server's error message."),
        (-420, -260), width=520, height=320)
    trigger = flow.node("When called by another workflow", "n8n-nodes-base.executeWorkflowTrigger", 1.1,
                        SUBWORKFLOW_INPUTS, (0, 100))
    cfg = config(flow, (220, 100))
    inp = code(flow, "Input", TEXT_INPUT % {"source": "item.json", "allow_sample": "true"}, (440, 100))
    cond, merge = image_branch(flow, 660, 100)
    build = build_request(flow, (1600, 100))
    flow.chain(trigger, cfg, inp, cond)
    flow.link(merge, build)
    dl = polling_loop(flow, 1840, 100, build)
    res = result_node(flow, (2800, -40))
    flow.link(dl, res)
    return flow.document()


def text_to_avatar_webhook() -> dict:
    flow = Flow("Avatar Generator: text to avatar (webhook callback)", "avatarTextToVideoHook",
                "POST text to this workflow's webhook; the job calls back when done, no polling.")
    sticky(flow, "About", (
        "## Text to avatar (webhook callback, no polling)\n"
        "`POST /webhook/avatar/text-to-avatar` with JSON `{\"text\": \"…\", \"image_url\": \"…\", \"profile\": \"…\", "
        "\"options\": {…}}` (only text is required). It answers at once with `{job_id, execution_id}` "
        "(202), then waits: the job's `webhook` is this execution's resume URL, so the server's signed "
        "`completed` callback continues it. It then reads the job again (the callback body is not trusted) "
        "and downloads the MP4 as binary data `video`. Add your own delivery step after **Result**.\n\n"
        "**Set up:** server URL in **Config** (or `AVATAR_SERVER_URL`), credential **Avatar Generator API key**; "
        "n8n's `WEBHOOK_URL` must be an address the Avatar server can reach. Publish (activate) the workflow."),
        (-420, -300), width=560, height=360)
    hook = flow.node("Webhook", "n8n-nodes-base.webhook", 2, {
        "httpMethod": "POST", "path": "avatar/text-to-avatar", "responseMode": "responseNode", "options": {}},
        (0, 100), webhookId=str(uuid.uuid5(uuid.NAMESPACE_URL, "avatarTextToVideoHook/webhook")))
    cfg = config(flow, (220, 100))
    inp = code(flow, "Input", TEXT_INPUT % {"source": "(item.json.body ?? {})", "allow_sample": "false"}, (440, 100))
    cond, merge = image_branch(flow, 660, 100)
    # Errors before the job exists (bad input, image not downloadable) also answer the caller (422).
    for name in (inp, "Download reference image", "Upload reference image"):
        next(n for n in flow.nodes if n["name"] == name)["onError"] = "continueErrorOutput"
    build = build_request(flow, (1600, 100), on_error="continueErrorOutput", extra=(
        "  // No polling: the server POSTs the finished job to this execution's resume URL (the Wait node).\n"
        "  body.webhook = $execution.resumeUrl;\n"
        "  body.webhook_events_filter = ['completed'];\n"))
    flow.chain(hook, cfg, inp, cond)
    flow.link(merge, build)
    create = create_job(flow, (1840, 100))
    check1 = code(flow, "Check created job", CHECK_JOB % {"cfg": CFG, "policy": "created"},
                  (2080, 100))
    route1 = switch(flow, "Created?", (2320, 100), ["download", "wait", "error"])
    accepted = flow.node("Respond: accepted", "n8n-nodes-base.respondToWebhook", 1.1, {
        "respondWith": "json",
        "responseBody": "={{ JSON.stringify({ job_id: $json.job.id, status: $json.job.status, "
                        "execution_id: $execution.id }) }}",
        "options": {"responseCode": 202}}, (2560, 40))
    rejected = flow.node("Respond: rejected", "n8n-nodes-base.respondToWebhook", 1.1, {
        "respondWith": "json",
        "responseBody": f"={{{{ JSON.stringify({{ error: {ERROR_OF_ITEM} }}) }}}}",
        "options": {"responseCode": 422}}, (2560, 320))
    fail1 = stop(flow, "Stop: not created", (2800, 320), message=f"={{{{ {ERROR_OF_ITEM} }}}}")
    already = flow.node("Finished already?", "n8n-nodes-base.if", 2.2, {
        "conditions": {
            "options": {"caseSensitive": True, "leftValue": "", "typeValidation": "strict", "version": 2},
            "conditions": [{
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "avatarTextToVideoHook/already")),
                "leftValue": "={{ $json.next }}", "rightValue": "download",
                "operator": {"type": "string", "operation": "equals"}}],
            "combinator": "and"},
        "options": {}}, (2800, 40))
    wait = flow.node("Wait for the callback", "n8n-nodes-base.wait", 1.1, {
        "resume": "webhook", "httpMethod": "POST", "limitWaitTime": True, "limitType": "afterTimeInterval",
        "resumeAmount": f"={{{{ {CFG}.timeout_s }}}}", "resumeUnit": "seconds", "options": {}},
        (3040, 140), webhookId=str(uuid.uuid5(uuid.NAMESPACE_URL, "avatarTextToVideoHook/wait")))
    get = http(flow, "Get job", (3280, 40), "GET",
               f"={{{{ {CFG}.server_url }}}}/v1/predictions/{{{{ $('Check created job').first().json.job.id }}}}",
               timeout_ms=60000)
    check2 = code(flow, "Check finished job", CHECK_JOB % {"cfg": CFG, "policy": "callback"},
                  (3520, 40))
    route2 = switch(flow, "Succeeded?", (3760, 40), ["download", "error"])
    dl = download(flow, check2, (4000, -60))
    fail2 = stop(flow, "Stop and Error", (4000, 160))
    # One item per webhook call: .first() needs no item pairing across the Wait node's resume.
    res = result_node(flow, (4240, -60), job="$('Check finished job').first().json.job")
    flow.chain(build, create, check1, route1)
    flow.link(route1, accepted, 0)
    flow.link(route1, accepted, 1)
    flow.link(route1, rejected, 2)
    flow.chain(rejected, fail1)
    for name in (inp, "Download reference image", "Upload reference image", build):
        flow.link(name, rejected, 1)
    flow.chain(accepted, already)
    flow.link(already, get, 0)
    flow.link(already, wait, 1)
    flow.chain(wait, get, check2, route2)
    flow.link(route2, dl, 0)
    flow.link(route2, fail2, 1)
    flow.chain(dl, res)
    return flow.document()


def chat_to_avatar() -> dict:
    flow = Flow("Avatar Generator: chat to avatar", "avatarChatToVideo",
                "A chat message in, a reply spoken by the avatar out (video URL + MP4).")
    sticky(flow, "About", (
        "## Chat to avatar\n"
        "A chat message comes in (**When chat message received**: open the chat in the editor; or from another "
        "workflow with `chatInput`). **Compose reply** writes the answer — swap it for your LLM node (it must "
        "leave the answer in `reply`). The avatar speaks it; the chat gets the reply text and the video link, "
        "the item carries the MP4 as binary data `video`.\n\n"
        "**Face:** set `avatar_image_url` or `avatar_profile` in **Config**. **Set up:** server URL in **Config** "
        "(or `AVATAR_SERVER_URL`), credential **Avatar Generator API key**."),
        (-420, -300), width=540, height=320)
    chat = flow.node("When chat message received", "@n8n/n8n-nodes-langchain.chatTrigger", 1.1,
                     {"public": False, "options": {}}, (0, 0),
                     webhookId=str(uuid.uuid5(uuid.NAMESPACE_URL, "avatarChatToVideo/chat")))
    sub = flow.node("When called by another workflow", "n8n-nodes-base.executeWorkflowTrigger", 1.1,
                    {"inputSource": "workflowInputs", "workflowInputs": {"values": [
                        {"name": "chatInput"}, {"name": "sessionId"}]}}, (0, 200))
    cfg = config(flow, (220, 100), extra=[
        ("avatar_image_url", "string", ""),
        ("avatar_profile", "string", ""),
    ])
    msg = code(flow, "Message", CHAT_INPUT, (440, 100))
    reply = code(flow, "Compose reply", COMPOSE_REPLY, (660, 100))
    # The same request-building steps as text-to-avatar, with the reply as the text and the face from Config.
    inp = code(flow, "Input", (
        "// What the avatar says (the reply) and its face (from Config).\n"
        f"const config = {CFG};\n"
        "return $input.all().map((item, index) => ({\n"
        "  json: { index, text: item.json.reply, chatInput: item.json.chatInput, sessionId: item.json.sessionId,\n"
        "          image_url: config.avatar_image_url || '', profile: config.avatar_profile || '', options: {} },\n"
        "  pairedItem: index,\n"
        "}));\n"), (880, 100))
    cond, merge = image_branch(flow, 1100, 100)
    build = build_request(flow, (2040, 100))
    flow.chain(chat, cfg)
    flow.chain(sub, cfg)
    flow.chain(cfg, msg, reply, inp, cond)
    flow.link(merge, build)
    dl = polling_loop(flow, 2280, 100, build)
    res = result_node(flow, (3240, -40), extra=[
        ("reply", "string", "={{ $('Input').item.json.text }}"),
        # The Chat Trigger shows `output` as the answer (markdown).
        ("output", "string", "={{ $('Input').item.json.text }}\n\n[Watch the reply]("
                              f"{{{{ {CFG}.server_url }}}}/download/{{{{ encodeURIComponent("
                              "$('Check job').item.json.job.output.video) }})"),
    ])
    flow.link(dl, res)
    return flow.document()


WORKFLOWS = {
    "text-to-avatar.json": text_to_avatar,
    "text-to-avatar-webhook.json": text_to_avatar_webhook,
    "chat-to-avatar.json": chat_to_avatar,
}


def render(builder) -> str:
    return json.dumps(builder(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, builder in WORKFLOWS.items():
        text, path = render(builder), OUT / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date (run python n8n/build_workflows.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
