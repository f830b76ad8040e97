// Sends bodies that are answered before they are read with Node's fetch (undici), which writes
// the whole body before reading the answer, and prints one JSON line per request, as
// early_answers.py does. Environment: HUME_ACTION_URL, HUME_ACTION_TOKEN, UPLOAD_BYTES.
const base = process.env.HUME_ACTION_URL;
const token = process.env.HUME_ACTION_TOKEN;
const upload = new Uint8Array(Number(process.env.UPLOAD_BYTES)).fill(97);
const bigJson = JSON.stringify({ text: ["z".repeat(5 * 1024 * 1024)] });

function multipart() {
  const form = new FormData();
  form.append("json", "{}");
  form.append("file", new Blob([upload], { type: "text/plain" }), "big.txt");
  return form;
}

const cases = [
  ["json_5mb", () => bigJson, { "Content-Type": "application/json" }, true],
  ["upload_over_cap", multipart, {}, true],
  ["upload_without_token", multipart, {}, false],
];

for (const [name, body, headers, withToken] of cases) {
  const line = { client: "fetch", case: name };
  try {
    const auth = withToken ? { Authorization: `Bearer ${token}` } : {};
    const response = await fetch(`${base}/v0/batch/jobs`, {
      method: "POST",
      body: body(),
      headers: { ...headers, ...auth },
      signal: AbortSignal.timeout(60_000),
    });
    line.status = response.status;
    line.code = (await response.json()).error.code;
  } catch (e) {
    line.error = `${e.name}: ${e.message}${e.cause ? ` (${e.cause.code ?? e.cause.message})` : ""}`;
  }
  console.log(JSON.stringify(line));
}
