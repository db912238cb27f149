#!/usr/bin/env node
// A Relay webhook receiver in plain Node.js (no dependencies; Node 18 or newer).
//
// Run:  RELAY_WEBHOOK_SECRET=<the instance's signing secret> node webhook_receiver.mjs --port 8080
// then set the instance's webhookUrl to http://<this host>:8080/webhook.
//
// It verifies X-Webhook-Signature (HMAC-SHA256 of `timestamp + "." + raw body` with the
// instance's secret) over the raw bytes in constant time, refuses timestamps more than
// five minutes away (replays), checks `Authorization: Bearer <token>` when
// RELAY_WEBHOOK_TOKEN is set, answers 200 at once and drops duplicates by X-Webhook-Id
// (Relay retries until it gets a 2xx). One JSON line per accepted notification goes to
// stdout: replace handle() with your logic, and keep it fast (Relay sends an instance's
// next notification only after this one was answered).
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const MAX_SKEW_SECONDS = 300;
const MAX_BODY_BYTES = 10 * 1024 * 1024;
const SEEN_MAX = 10000;

export function verify(secret, timestamp, signature, body, now = Date.now() / 1000) {
  if (!/^[0-9]+$/.test(timestamp)) return false;
  if (Math.abs(now - Number(timestamp)) > MAX_SKEW_SECONDS) return false;
  const mac = createHmac("sha256", secret).update(timestamp + ".").update(body).digest("hex");
  const expected = Buffer.from("sha256=" + mac);
  const got = Buffer.from(signature);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

function handle(notification, webhookId) {
  console.log(JSON.stringify({ id: webhookId, typeWebhook: notification.typeWebhook, body: notification }));
}

function answer(res, status, text) {
  const data = JSON.stringify({ result: text });
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
  res.end(data);
}

function argument(name, fallback) {
  const at = process.argv.indexOf(name);
  return at > 0 && process.argv[at + 1] ? process.argv[at + 1] : fallback;
}

const secret = process.env.RELAY_WEBHOOK_SECRET || "";
const token = process.env.RELAY_WEBHOOK_TOKEN || "";
if (!secret) {
  console.error("set RELAY_WEBHOOK_SECRET to the instance's signing secret (cabinet: Webhooks)");
  process.exit(1);
}
const seen = new Set();

const server = createServer((req, res) => {
  if (req.method !== "POST") return answer(res, 405, "POST only");
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      answer(res, 413, "too large");
      req.destroy();
    } else {
      chunks.push(chunk);
    }
  });
  req.on("end", () => {
    if (res.writableEnded) return;
    const body = Buffer.concat(chunks);
    if (token && req.headers["authorization"] !== `Bearer ${token}`) return answer(res, 401, "bad token");
    const timestamp = String(req.headers["x-webhook-timestamp"] || "");
    const signature = String(req.headers["x-webhook-signature"] || "");
    if (!verify(secret, timestamp, signature, body)) return answer(res, 401, "bad signature");
    const webhookId = String(req.headers["x-webhook-id"] || "");
    if (seen.has(webhookId)) return answer(res, 200, "duplicate");
    let notification;
    try {
      notification = JSON.parse(body.toString("utf8"));
    } catch {
      return answer(res, 400, "not json");
    }
    handle(notification, webhookId);
    seen.add(webhookId);
    if (seen.size > SEEN_MAX) seen.delete(seen.values().next().value);
    answer(res, 200, "ok");
  });
});

const host = argument("--host", "127.0.0.1");
server.listen(Number(argument("--port", "8080")), host, () => {
  console.error(`listening on http://${host}:${server.address().port}/webhook`);
});
