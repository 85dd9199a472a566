// Drives the official Replicate JS client (replicate@1.4.0, unchanged) against this server's /v1.
// Called by tests/e2e/test_replicate_clients.py: node replicate_client.cjs SCENARIO; settings come from the
// environment (REPLICATE_MODULE, BASE_URL, KEY, MODEL, VERSION, INPUT as JSON, WEBHOOK as JSON, OUT_FILE).
// Prints one JSON line with what the client returned; the Python test judges it.
const fs = require("fs");
const Replicate = require(process.env.REPLICATE_MODULE);
const { createFileOutput } = require(`${process.env.REPLICATE_MODULE}/lib/stream`);

const replicate = new Replicate({ auth: process.env.KEY, baseUrl: `${process.env.BASE_URL}/v1` });
const model = process.env.MODEL;
const version = process.env.VERSION;
const input = JSON.parse(process.env.INPUT || "{}");

async function download(url) {
  // The client's own file object: it fetches without the key, so the URL's signature must open it.
  const blob = await createFileOutput({ url, fetch: globalThis.fetch }).blob();
  const bytes = Buffer.from(await blob.arrayBuffer());
  fs.writeFileSync(process.env.OUT_FILE, bytes);
  return { bytes: bytes.length, type: blob.type };
}

const scenarios = {
  async run() {
    const output = await replicate.run(model, { input, wait: { mode: "block", timeout: 1 } });
    return { output, file: await download(output.video_url) };
  },
  async run_version() {
    const output = await replicate.run(`${model}:${version}`, { input });
    return { output };
  },
  async create_by_model() {
    return await replicate.predictions.create({ model, input, wait: 60 });
  },
  async create_by_version() {
    return await replicate.predictions.create({ version, input, wait: 60 });
  },
  async unknown_version() {
    try {
      await replicate.predictions.create({ version: "0".repeat(64), input });
      return { error: null };
    } catch (err) {
      return { error: err.message, status: err.response && err.response.status };
    }
  },
  async get() {
    return await replicate.predictions.get(process.env.PREDICTION);
  },
  async paginate() {
    const pages = [];
    for await (const page of replicate.paginate(replicate.predictions.list)) {
      pages.push(page.map((p) => p.id));
    }
    return { pages };
  },
  async cancel() {
    return await replicate.predictions.cancel(process.env.PREDICTION);
  },
  async stream() {
    const events = [];
    for await (const event of replicate.stream(model, { input })) {
      events.push({ event: event.event, data: String(event.data), id: event.id });
    }
    const output = events.find((e) => e.event === "output");
    return { events, file: output ? await download(output.data) : null };
  },
  async files() {
    const photo = fs.readFileSync(process.env.PHOTO);
    const created = await replicate.files.create(new Blob([photo], { type: "image/png" }), { person: "me" });
    const got = await replicate.files.get(created.id);
    const listed = (await replicate.files.list()).results.map((f) => f.id);
    // A Buffer in the input: the client uploads it with files.create and sends the file's URL.
    const prediction = await replicate.predictions.create({ model, input: { ...input, image: photo }, wait: 60 });
    const deleted = await replicate.files.delete(created.id);
    return { created, got, listed, prediction, deleted };
  },
  async model() {
    const m = await replicate.models.get(...model.split("/"));
    const versions = await replicate.models.versions.list(...model.split("/"));
    const one = await replicate.models.versions.get(...model.split("/"), version);
    return { model: m, versions, version: one };
  },
  async webhook() {
    const { key } = await replicate.webhooks.default.secret.get();
    const hook = JSON.parse(process.env.WEBHOOK);
    const valid = await Replicate.validateWebhook({ headers: hook.headers, body: hook.body }, key);
    const tampered = await Replicate.validateWebhook({ headers: hook.headers, body: hook.body + " " }, key);
    return { valid, tampered };
  },
};

scenarios[process.argv[2]]()
  .then((result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  })
  .catch((err) => {
    process.stdout.write(`${JSON.stringify({ thrown: String(err && err.stack ? err.stack : err) })}\n`);
    process.exitCode = 1;
  });
