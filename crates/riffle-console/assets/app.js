// Riffle console: the router, the API client, the metrics sampler and the
// pages. Every DOM node is built with `h` (text as text, never HTML).
import { shardMap } from "/views.js";

const main = document.getElementById("main");
const who = document.getElementById("who");

// ---------- DOM and formatting helpers ----------
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}
const bytes = (n) => {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i || (n < 10 && !Number.isInteger(n)) ? 1 : 0)} ${units[i]}`;
};
const duration = (s) => {
  const d = Math.floor(s / 86400), hh = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return d ? `${d}d ${hh}h` : hh ? `${hh}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
};
const when = (secs) => secs ? new Date(secs * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "–";
const enc = encodeURIComponent;

// ---------- the API ----------
class ApiError extends Error {
  constructor(type, message, status) { super(message || type); this.type = type; this.status = status; }
}
async function post(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-riffle-console": "1" },
    body: JSON.stringify(body),
  });
  return answer(r);
}
async function get(path) { return answer(await fetch(path)); }
async function answer(r) {
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    if (body.__type === "NotLoggedIn") { showLogin(); }
    throw new ApiError(body.__type || `HTTP ${r.status}`, body.message, r.status);
  }
  return body;
}
export const call = (service, operation, input = {}) => post("/api/call", { service, operation, input });

// An error shown inline: AWS's `__type` and message, verbatim.
function errorBox() { return h("p", { class: "error", role: "alert", "aria-live": "assertive" }); }
function showError(box, err) {
  box.replaceChildren(h("code", {}, err.type || "Error"), ": ", err.message || "");
}

// A form that runs `run(data)` and shows AWS's error or `done` text.
function actionForm(title, fields, label, run, opts = {}) {
  const err = errorBox();
  const ok = h("p", { class: "ok", role: "status" });
  const button = h("button", { type: "submit", class: opts.danger ? "danger" : "" }, label);
  const form = h("form", { class: "action", "aria-label": title }, h("h3", {}, title), ...fields, button, err, ok);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.replaceChildren(); ok.replaceChildren();
    if (opts.confirm && !window.confirm(opts.confirm)) return;
    button.disabled = true;
    try {
      const done = await run(new FormData(form));
      ok.textContent = done || "Done.";
      if (opts.after) opts.after();
    } catch (e2) { showError(err, e2); } finally { button.disabled = false; }
  });
  return form;
}
function field(label, name, attrs = {}) {
  return h("label", {}, label, h("input", { name, ...attrs }));
}
function select(label, name, options, attrs = {}) {
  return h("label", {}, label, h("select", { name, ...attrs },
    options.map(([v, t]) => h("option", { value: v }, t ?? v))));
}

// ---------- the metrics sampler: polls /api/metrics, keeps 5 minutes ----------
const HISTORY = 150, POLL_MS = 2000, CHART_WINDOW_S = 120;
const history = new Map(); // "name|label=value,…" → [[t, value], …]
let sampling = null;
const listeners = new Set();
function seriesKey(name, labels) { return name + "|" + labels.map(([k, v]) => `${k}=${v}`).join(","); }
async function sample() {
  try {
    const m = await get("/api/metrics");
    const t = m.at / 1000;
    const seen = new Set();
    for (const s of m.samples) {
      const key = seriesKey(s.name, s.labels);
      seen.add(key);
      let points = history.get(key);
      if (!points) history.set(key, points = []);
      points.push([t, s.value]);
      if (points.length > HISTORY) points.shift();
    }
    // A series that went away (a consumer with no subscription, a deleted
    // stream) has no value now: a gap, not its last value repeated; it is
    // forgotten once its whole history is gaps.
    for (const [key, points] of history) {
      if (seen.has(key)) continue;
      points.push([t, null]);
      if (points.length > HISTORY) points.shift();
      if (points.every((p) => p[1] === null)) history.delete(key);
    }
    for (const l of listeners) l();
  } catch (_) { /* a missed poll leaves a gap */ }
}
function startSampling() {
  if (sampling) return;
  sample();
  sampling = setInterval(sample, POLL_MS);
}
// Per-second rates of a counter: [times, values].
function rates(key) {
  const p = history.get(key) || [];
  const ts = [], vs = [];
  for (let i = 1; i < p.length; i++) {
    const dt = p[i][0] - p[i - 1][0];
    if (p[i][1] === null || p[i - 1][1] === null) continue;
    if (dt > 0) { ts.push(p[i][0]); vs.push(Math.max(0, (p[i][1] - p[i - 1][1]) / dt)); }
  }
  return [ts, vs];
}
function gauge(key) {
  const p = history.get(key) || [];
  return [p.map((x) => x[0]), p.map((x) => x[1])];
}
function latest(key) { const p = history.get(key); return p && p.length ? p[p.length - 1][1] : undefined; }

function sparkline(key) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 120 24");
  svg.setAttribute("role", "img");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  svg.append(line);
  const draw = () => {
    const [, vs] = rates(key);
    const max = Math.max(1, ...vs);
    const n = Math.max(1, vs.length - 1);
    line.setAttribute("points", vs.map((v, i) => `${(i / n) * 120},${22 - (v / max) * 20}`).join(" "));
    svg.setAttribute("aria-label", `incoming ${bytes(vs[vs.length - 1] || 0)}/s`);
  };
  draw();
  return [svg, draw];
}

// A live uPlot chart of one or more series; `series` are [label, fn → [ts, vs]].
function chart(title, unit, series) {
  const box = h("div", { class: "chart", "data-chart": title }, h("h3", {}, title));
  let plot = null, lastT = 0;
  const draw = () => {
    const data = series.map(([, f]) => f());
    const ts = data.reduce((a, d) => (d[0].length > a.length ? d[0] : a), []);
    lastT = ts.length ? ts[ts.length - 1] : 0;
    const aligned = [ts, ...data.map(([t, v]) => ts.map((x) => { const i = t.indexOf(x); return i < 0 ? null : v[i]; }))];
    const width = Math.max(260, box.clientWidth - 10);
    if (!plot) {
      plot = new uPlot({
        width, height: 170,
        series: [{}, ...series.map(([label], i) => ({ label, stroke: PALETTE[i % PALETTE.length], width: 2 }))],
        axes: [{}, { values: (u, vals) => vals.map((v) => unit === "bytes" ? bytes(v) + "/s" : unit === "size" ? bytes(v) : unit === "ms" ? `${v} ms` : `${v}/s`), size: unit === "bytes" ? 84 : 70 }],
        // A fixed window ending now, so one sample does not fill the axis.
        scales: { x: { time: true, range: () => { const end = Math.max(Date.now() / 1000, lastT); return [end - CHART_WINDOW_S, end]; } },
          // From zero, and an axis even before the first sample.
          y: { range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.1)] } },
        legend: { show: true },
      }, aligned, box);
    } else {
      if (Math.abs(plot.width - width) > 20) plot.setSize({ width, height: 170 });
      plot.setData(aligned);
    }
    box.dataset.points = String(ts.length);
    box.dataset.last = String(aligned.slice(1).map((v) => v[v.length - 1] ?? 0).reduce((a, b) => a + (b || 0), 0));
    // Each series' latest sample (null: none yet), by label.
    box.dataset.series = JSON.stringify(Object.fromEntries(series.map(([label], i) => {
      const [, vs] = data[i];
      return [label, vs.length ? vs[vs.length - 1] : null];
    })));
  };
  return [box, draw];
}
// Line colours, distinct and dark enough on the panel's background.
const PALETTE = ["#0b5cad", "#a40e26", "#116329", "#7a4e00", "#6f42c1", "#1b7c83", "#b35900", "#4d5560"];

// ---------- session ----------
let session = { verifies: false, accessKeyId: null };
async function loadSession() {
  session = await get("/api/session");
  who.replaceChildren();
  if (session.verifies && session.accessKeyId) {
    who.append(`Signed in as ${session.accessKeyId}`,
      h("button", { type: "button", class: "secondary", onclick: async () => { await post("/api/logout", {}); await loadSession(); showLogin(); } }, "Sign out"));
  }
}
function showLogin() {
  const err = errorBox();
  const form = h("form", { class: "action login", "aria-label": "Sign in" },
    h("h3", {}, "Sign in with an access key"),
    h("p", { class: "legend" }, "This server verifies signatures: calls run as your key, under its policy, and are audited."),
    field("Access key ID", "accessKeyId", { autocomplete: "username", required: true }),
    field("Secret access key", "secretAccessKey", { type: "password", autocomplete: "current-password", required: true }),
    h("button", { type: "submit" }, "Sign in"), err);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const d = new FormData(form);
    try {
      await post("/api/login", { accessKeyId: d.get("accessKeyId"), secretAccessKey: d.get("secretAccessKey") });
      await loadSession();
      route();
    } catch (e2) { showError(err, e2); }
  });
  main.replaceChildren(h("h1", {}, "Sign in"), form);
  form.querySelector("input").focus();
}

// ---------- pages ----------
const PAGE_ROWS = 100;

async function listAll(service, operation, input, pick, next) {
  const out = [];
  let req = { ...input };
  for (;;) {
    const a = await call(service, operation, req);
    out.push(...pick(a));
    const n = next(a, req);
    if (!n) return out;
    req = n;
  }
}

async function overview() {
  const [server, streams, delivery, mappings, functions] = await Promise.all([
    get("/api/server"),
    listAll("kinesis", "ListStreams", { Limit: 1000 }, (a) => a.StreamSummaries || [],
      (a) => a.HasMoreStreams && a.NextToken ? { NextToken: a.NextToken, Limit: 1000 } : null),
    listAll("firehose", "ListDeliveryStreams", { Limit: 10000 }, (a) => a.DeliveryStreamNames || [],
      (a, r) => a.HasMoreDeliveryStreams ? { Limit: 10000, ExclusiveStartDeliveryStreamName: a.DeliveryStreamNames.at(-1) } : null),
    listAll("lambda", "ListEventSourceMappings", { MaxItems: 100 }, (a) => a.EventSourceMappings || [],
      (a) => a.NextMarker ? { MaxItems: 100, Marker: a.NextMarker } : null),
    // A key whose policy denies lambda:ListFunctions still sees the rest.
    get("/api/functions").then((a) => a.functions, (e) => e),
  ]);
  const facts = h("dl", { class: "cards" },
    ...[["Version", server.version], ["Data directory", server.dataDir], ["fsync", server.fsync],
      ["Uptime", duration(server.uptimeSeconds)], ["Disk used", bytes(server.diskUsedBytes)],
      ["Region", `${server.region} · ${server.accountId}`], ["API endpoint", server.endpoint]]
      .map(([k, v]) => h("div", { class: "card" }, h("dt", {}, k), h("dd", {}, v))));
  const filter = h("input", { type: "search", id: "stream-filter", name: "filter", placeholder: "name contains…" });
  const tbody = h("tbody");
  const pager = h("div", { class: "pager" });
  let page = 0;
  const draws = [];
  const render = () => {
    const q = filter.value.trim();
    const shown = streams.filter((s) => s.StreamName.includes(q));
    const rows = shown.slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS);
    draws.length = 0;
    tbody.replaceChildren(...rows.map((s) => {
      const [spark, draw] = sparkline(seriesKey("riffle_kinesis_incoming_bytes_total", [["stream", s.StreamName]]));
      draws.push(draw);
      return h("tr", { "data-stream": s.StreamName },
        h("td", {}, h("a", { href: `#/stream/${enc(s.StreamName)}` }, s.StreamName)),
        h("td", { class: `status-${s.StreamStatus}` }, s.StreamStatus),
        h("td", {}, s.StreamModeDetails?.StreamMode || "PROVISIONED"),
        h("td", { class: "num", "data-col": "shards" }, "…"),
        h("td", { class: "num hide-narrow", "data-col": "retention" }, "…"),
        h("td", {}, spark),
        h("td", { class: "hide-narrow" }, h("a", { href: `#/records/${enc(s.StreamName)}` }, "records")));
    }));
    pager.replaceChildren(...[
      h("span", {}, `${shown.length} of ${streams.length} streams`),
      page > 0 && h("button", { type: "button", class: "secondary", onclick: () => { page--; render(); } }, "Previous"),
      (page + 1) * PAGE_ROWS < shown.length && h("button", { type: "button", class: "secondary", onclick: () => { page++; render(); } }, "Next"),
    ].filter(Boolean));
    summaries(rows.map((s) => s.StreamName), tbody);
  };
  filter.addEventListener("input", () => { page = 0; render(); });
  const create = actionForm("Create a stream", [
    field("Stream name", "name", { required: true, id: "create-name" }),
    select("Capacity mode", "mode", [["PROVISIONED"], ["ON_DEMAND"]]),
    field("Shards", "shards", { type: "number", value: "1", min: "1" }),
  ], "Create", async (d) => {
    const input = { StreamName: d.get("name"), StreamModeDetails: { StreamMode: d.get("mode") } };
    if (d.get("mode") === "PROVISIONED") input.ShardCount = Number(d.get("shards"));
    await call("kinesis", "CreateStream", input);
    return `Creating ${d.get("name")}…`;
  }, { after: () => setTimeout(route, 600) });
  const dtable = h("tbody", {}, delivery.map((name) => h("tr", { "data-delivery": name },
    h("td", {}, h("a", { href: `#/delivery/${enc(name)}` }, name)),
    h("td", { "data-col": "status" }, "…"), h("td", { "data-col": "source" }, "…"), h("td", { "data-col": "destination", class: "hide-narrow" }, "…"))));
  main.replaceChildren(
    h("h1", {}, "Overview"), facts,
    h("h2", { id: "streams" }, "Data streams"),
    h("label", { class: "inline" }, "Filter streams ", filter),
    pager,
    h("div", { class: "scroll" }, h("table", { "aria-labelledby": "streams" },
      h("thead", {}, h("tr", {}, ...["Name", "Status", "Mode"].map((t) => h("th", {}, t)), h("th", { class: "num" }, "Shards"),
        h("th", { class: "num hide-narrow" }, "Retention (h)"), h("th", {}, "Incoming"), h("th", { class: "hide-narrow" }, ""))),
      tbody)),
    create,
    h("h2", { id: "delivery" }, "Delivery streams"),
    delivery.length ? h("div", { class: "scroll" }, h("table", { "aria-labelledby": "delivery" },
      h("thead", {}, h("tr", {}, ...["Name", "Status", "Source", "Destination"].map((t) => h("th", {}, t)))), dtable))
      : h("p", {}, "No delivery streams."),
    h("h2", { id: "mappings" }, "Event source mappings"),
    mappings.length ? h("div", { class: "scroll" }, h("table", { "aria-labelledby": "mappings" },
      h("thead", {}, h("tr", {}, ...["Function", "Source stream", "State", "Batch size", "UUID"].map((t) => h("th", {}, t)))),
      h("tbody", {}, mappings.map((m) => {
        const source = (m.EventSourceArn || "").split(":stream/")[1];
        return h("tr", { "data-mapping": m.UUID },
          h("td", {}, (m.FunctionArn || "").split(":function:")[1] || m.FunctionArn),
          h("td", {}, source ? h("a", { href: `#/stream/${enc(source)}` }, source) : m.EventSourceArn),
          h("td", {}, m.State), h("td", { class: "num" }, m.BatchSize), h("td", { class: "hide-narrow" }, m.UUID));
      }))))
      : h("p", {}, "No event source mappings."),
    h("h2", { id: "functions" }, "Functions"),
    functionsTable(functions));
  render();
  deliverySummaries(delivery, dtable);
  startSampling();
  return () => draws.forEach((d) => d());
}

// The `[functions]` of the config file: how each runs and its instances now.
function functionsTable(functions) {
  if (functions instanceof Error) { const box = errorBox(); showError(box, functions); return box; }
  if (!functions.length) return h("p", {}, "No functions in the config file's [functions].");
  return h("div", { class: "scroll" }, h("table", { "aria-labelledby": "functions" },
    h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Kind"), h("th", {}, "Runs"),
      h("th", { class: "num" }, "Instances running"), h("th", { class: "hide-narrow" }, "ARN"))),
    h("tbody", {}, functions.map((f) => h("tr", { "data-function": f.name },
      h("td", {}, f.name),
      h("td", { "data-col": "kind" }, f.kind === "url" ? "URL" : "command"),
      h("td", {}, h("code", {}, f.target)),
      h("td", { class: "num", "data-col": "instances" }, f.maxInstances == null ? "–" : `${f.instancesRunning} of ${f.maxInstances}`),
      h("td", { class: "hide-narrow" }, f.arn))))));
}

// Shard counts and retention of the streams on the current page: one
// request for the page (in-process DescribeStreamSummary calls), not one per row.
async function summaries(names, tbody) {
  if (!names.length) return;
  const answers = await post("/api/calls", names.map((n) => ({ service: "kinesis", operation: "DescribeStreamSummary", input: { StreamName: n } })));
  answers.forEach((a, i) => {
    const row = tbody.querySelector(`tr[data-stream="${CSS.escape(names[i])}"]`);
    if (!row || !a.ok) return;
    const d = a.ok.StreamDescriptionSummary;
    row.querySelector('[data-col="shards"]').textContent = d.OpenShardCount;
    row.querySelector('[data-col="retention"]').textContent = d.RetentionPeriodHours;
  });
}
async function deliverySummaries(names, tbody) {
  for (let i = 0; i < names.length; i += PAGE_ROWS) {
    const chunk = names.slice(i, i + PAGE_ROWS);
    const answers = await post("/api/calls", chunk.map((n) => ({ service: "firehose", operation: "DescribeDeliveryStream", input: { DeliveryStreamName: n } })));
    answers.forEach((a, j) => {
      const row = tbody.querySelector(`tr[data-delivery="${CSS.escape(chunk[j])}"]`);
      if (!row || !a.ok) return;
      const d = a.ok.DeliveryStreamDescription;
      row.querySelector('[data-col="status"]').textContent = d.DeliveryStreamStatus;
      row.querySelector('[data-col="source"]').textContent = d.DeliveryStreamType;
      const dest = d.Destinations?.[0] || {};
      const s3 = dest.ExtendedS3DestinationDescription || dest.S3DestinationDescription;
      row.querySelector('[data-col="destination"]').textContent = s3 ? s3.BucketARN : Object.keys(dest).find((k) => k.endsWith("Description")) || "–";
    });
  }
}

async function streamPage(name) {
  const [summary, shards, tags] = await Promise.all([
    call("kinesis", "DescribeStreamSummary", { StreamName: name }),
    listAll("kinesis", "ListShards", { StreamName: name }, (a) => a.Shards || [], (a) => a.NextToken ? { NextToken: a.NextToken } : null),
    call("kinesis", "ListTagsForStream", { StreamName: name }),
  ]);
  const d = summary.StreamDescriptionSummary;
  const consumerList = (await call("kinesis", "ListStreamConsumers", { StreamARN: d.StreamARN })).Consumers || [];
  const open = shards.filter((s) => !s.SequenceNumberRange.EndingSequenceNumber);
  const facts = h("dl", { class: "cards" }, ...[
    ["Status", d.StreamStatus], ["Capacity mode", d.StreamModeDetails?.StreamMode], ["Open shards", d.OpenShardCount],
    ["All shards", shards.length], ["Retention", `${d.RetentionPeriodHours} h`],
    ["Encryption", d.EncryptionType === "KMS" ? `KMS (${d.KeyId})` : "none"],
    ["Enhanced monitoring", (d.EnhancedMonitoring?.[0]?.ShardLevelMetrics || []).join(", ") || "off"],
    ["Consumers", consumerList.length], ["Created", when(d.StreamCreationTimestamp)],
  ].map(([k, v]) => h("div", { class: "card" }, h("dt", {}, k), h("dd", {}, v))));
  const key = (m) => seriesKey(`riffle_kinesis_${m}`, [["stream", name]]);
  const consumerKey = (consumer) => seriesKey("riffle_kinesis_consumer_millis_behind_latest", [["stream", name], ["consumer", consumer]]);
  const charts = [
    chart("Incoming bytes", "bytes", [["IncomingBytes", () => rates(key("incoming_bytes_total"))]]),
    chart("Incoming records", "count", [["IncomingRecords", () => rates(key("incoming_records_total"))]]),
    chart("Outgoing bytes", "bytes", [["GetRecords.Bytes", () => rates(key("outgoing_bytes_total"))]]),
    chart("Throttled", "count", [["Writes (records)", () => rates(key("write_provisioned_throughput_exceeded_total"))],
      ["Reads (calls)", () => rates(key("read_provisioned_throughput_exceeded_total"))]]),
    // Per consumer: the polling readers' GetRecords age, and each
    // enhanced fan-out consumer's SubscribeToShardEvent.MillisBehindLatest.
    chart("Iterator age", "ms", [["Polling (GetRecords)", () => gauge(key("iterator_age_milliseconds"))],
      ...consumerList.map((c) => [`${c.ConsumerName} (enhanced fan-out)`, () => gauge(consumerKey(c.ConsumerName))])]),
  ];
  const behindCells = consumerList.map((c) => [c.ConsumerName, h("td", { class: "num", "data-col": "behind" }, "–")]);
  const drawBehind = () => behindCells.forEach(([consumer, td]) => {
    const v = latest(consumerKey(consumer));
    td.textContent = v == null ? "not subscribed" : `${v} ms`;
  });
  const after = () => setTimeout(route, 700);
  const openOptions = open.map((s) => [s.ShardId]);
  const actions = [
    actionForm("Split a shard", [
      select("Shard", "shard", openOptions),
      field("New starting hash key (empty: the midpoint)", "key", { inputmode: "numeric", pattern: "[0-9]*" }),
    ], "Split", async (f) => {
      const shard = open.find((s) => s.ShardId === f.get("shard"));
      let at = f.get("key");
      if (!at && shard) {
        const lo = BigInt(shard.HashKeyRange.StartingHashKey), hi = BigInt(shard.HashKeyRange.EndingHashKey);
        at = ((lo + hi + 1n) / 2n).toString();
      }
      await call("kinesis", "SplitShard", { StreamName: name, ShardToSplit: f.get("shard"), NewStartingHashKey: at });
      return `Splitting ${f.get("shard")} at ${at}…`;
    }, { after }),
    actionForm("Merge adjacent shards", [
      select("Shard", "shard", openOptions),
      select("Adjacent shard", "adjacent", [...openOptions.slice(1), ...openOptions.slice(0, 1)]),
    ], "Merge", async (f) => {
      await call("kinesis", "MergeShards", { StreamName: name, ShardToMerge: f.get("shard"), AdjacentShardToMerge: f.get("adjacent") });
      return "Merging…";
    }, { after }),
    actionForm("Update shard count", [field("Target shard count", "count", { type: "number", value: String(d.OpenShardCount) })],
      "Update", async (f) => {
        await call("kinesis", "UpdateShardCount", { StreamName: name, TargetShardCount: Number(f.get("count")), ScalingType: "UNIFORM_SCALING" });
        return "Resharding…";
      }, { after }),
    actionForm("Retention period", [field("Retention (hours)", "hours", { type: "number", value: String(d.RetentionPeriodHours), id: "retention-hours" })],
      "Set retention", async (f) => {
        const hours = Number(f.get("hours"));
        const op = hours >= d.RetentionPeriodHours ? "IncreaseStreamRetentionPeriod" : "DecreaseStreamRetentionPeriod";
        await call("kinesis", op, { StreamName: name, RetentionPeriodHours: hours });
        return `Retention set to ${hours} hours.`;
      }, { after }),
    actionForm("Capacity mode", [select("Mode", "mode", [["PROVISIONED"], ["ON_DEMAND"]])], "Switch", async (f) => {
      await call("kinesis", "UpdateStreamMode", { StreamARN: d.StreamARN, StreamModeDetails: { StreamMode: f.get("mode") } });
      return "Switching…";
    }, { after }),
    actionForm("Delete this stream", [], "Delete stream", async () => {
      await call("kinesis", "DeleteStream", { StreamName: name, EnforceConsumerDeletion: true });
      setTimeout(() => { location.hash = "#/"; }, 500);
      return "Deleting…";
    }, { danger: true, confirm: `Delete the stream ${name} and its records?` }),
  ];
  main.replaceChildren(
    h("div", { class: "crumbs" }, h("a", { href: "#/" }, "Overview"), " / ", name),
    h("h1", {}, name),
    h("p", {}, h("a", { href: `#/records/${enc(name)}` }, "Browse records")),
    facts,
    h("h2", {}, "Shard map"),
    h("p", { class: "legend" }, "The hash-key space, 0 to 2¹²⁸−1, left to right; each row a generation. Solid: open shards; dashed: closed. Lines join parents to children."),
    h("div", { class: "scroll" }, shardMap(shards)),
    h("h2", {}, "Live metrics"),
    h("div", { class: "charts" }, charts.map(([box]) => box)),
    h("h2", {}, "Consumers"),
    consumerList.length ? h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Status"), h("th", {}, "Registered"), h("th", { class: "num" }, "Behind latest"))),
      h("tbody", {}, consumerList.map((c, i) => h("tr", { "data-consumer": c.ConsumerName }, h("td", {}, c.ConsumerName), h("td", {}, c.ConsumerStatus),
        h("td", {}, when(c.ConsumerCreationTimestamp)), behindCells[i][1])))))
      : h("p", {}, "No enhanced fan-out consumers."),
    h("h2", {}, "Tags"),
    (tags.Tags || []).length ? h("ul", {}, tags.Tags.map((t) => h("li", {}, `${t.Key} = ${t.Value ?? ""}`))) : h("p", {}, "No tags."),
    h("h2", {}, "Actions"),
    ...actions);
  startSampling();
  return () => { charts.forEach(([, draw]) => draw()); drawBehind(); };
}

async function recordsPage(name) {
  const shards = await listAll("kinesis", "ListShards", { StreamName: name }, (a) => a.Shards || [], (a) => a.NextToken ? { NextToken: a.NextToken } : null);
  const err = errorBox();
  const tbody = h("tbody");
  const status = h("p", { role: "status", class: "legend" });
  let iterators = null, timer = null, shown = [];
  const form = h("form", { class: "action", "aria-label": "Read records" },
    h("h3", {}, "Read"),
    select("Shard", "shard", [["", "All shards"], ...shards.map((s) => [s.ShardId])]),
    select("Start at", "position", [["TRIM_HORIZON"], ["LATEST"], ["AT_SEQUENCE_NUMBER"], ["AT_TIMESTAMP"]]),
    field("Sequence number", "sequence", { inputmode: "numeric" }),
    field("Time", "time", { type: "datetime-local", step: "1" }),
    select("Show data as", "format", [["text", "Text"], ["json", "Pretty JSON"], ["hex", "Hex"]]),
    h("label", { class: "inline" }, h("input", { type: "checkbox", name: "follow" }), " Follow live"),
    h("button", { type: "submit" }, "Read"), err);
  const fmt = () => form.elements.format.value;
  const render = () => {
    tbody.replaceChildren(...shown.map((r) => h("tr", {},
      h("td", {}, r.shardId.replace("shardId-", "")),
      h("td", { class: "hide-narrow" }, r.sequenceNumber + (r.aggregated ? ` #${r.subSequenceNumber}` : "")),
      h("td", {}, r.partitionKey),
      h("td", { class: "hide-narrow" }, when(r.arrival)),
      h("td", {}, h("pre", { class: "data" }, showData(r.data, fmt()))))));
    status.textContent = `${shown.length} records`;
  };
  const read = async (fresh) => {
    const f = new FormData(form);
    const req = { stream: name, limit: 100 };
    if (fresh) {
      iterators = null; shown = [];
      Object.assign(req, { shard: f.get("shard") || undefined, position: f.get("position") });
      if (f.get("position") === "AT_SEQUENCE_NUMBER") req.sequenceNumber = f.get("sequence");
      if (f.get("position") === "AT_TIMESTAMP") req.timestamp = new Date(f.get("time")).getTime() / 1000;
    } else req.iterators = iterators;
    const a = await post("/api/records", req);
    iterators = a.iterators;
    shown = shown.concat(a.records).slice(-1000);
    render();
  };
  const follow = () => {
    clearTimeout(timer);
    if (!form.elements.follow.checked || !document.body.contains(form)) return;
    timer = setTimeout(async () => {
      try { await read(false); } catch (e) { showError(err, e); }
      follow();
    }, 1000);
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault(); err.replaceChildren();
    try { await read(true); follow(); } catch (e2) { showError(err, e2); }
  });
  form.elements.follow.addEventListener("change", follow);
  form.elements.format.addEventListener("change", render);
  const put = actionForm("Put a test record", [
    field("Partition key", "key", { required: true, value: "test" }),
    h("label", {}, "Data", h("textarea", { name: "data", rows: "2", cols: "40" }, '{"hello":"riffle"}')),
  ], "Put record", async (f) => {
    const data = btoa(String.fromCharCode(...new TextEncoder().encode(f.get("data"))));
    const a = await call("kinesis", "PutRecord", { StreamName: name, PartitionKey: f.get("key"), Data: data });
    return `Put into ${a.ShardId} at ${a.SequenceNumber}.`;
  });
  main.replaceChildren(
    h("div", { class: "crumbs" }, h("a", { href: "#/" }, "Overview"), " / ", h("a", { href: `#/stream/${enc(name)}` }, name), " / records"),
    h("h1", {}, `Records of ${name}`), form, put, status,
    h("div", { class: "scroll" }, h("table", { "aria-label": "Records" },
      h("thead", {}, h("tr", {}, h("th", {}, "Shard"), h("th", { class: "hide-narrow" }, "Sequence number"), h("th", {}, "Partition key"),
        h("th", { class: "hide-narrow" }, "Arrival"), h("th", {}, "Data"))), tbody)));
  return null;
}
function showData(b64, format) {
  const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  if (format === "hex") return Array.from(raw, (b) => b.toString(16).padStart(2, "0")).join(" ");
  const text = new TextDecoder().decode(raw);
  if (format === "json") { try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return text; } }
  return text;
}

async function deliveryPage(name) {
  const a = await call("firehose", "DescribeDeliveryStream", { DeliveryStreamName: name });
  const d = a.DeliveryStreamDescription;
  const dest = d.Destinations?.[0] || {};
  const s3 = dest.ExtendedS3DestinationDescription || dest.S3DestinationDescription;
  const source = d.Source?.KinesisStreamSourceDescription?.KinesisStreamARN || d.DeliveryStreamType;
  const facts = h("dl", { class: "cards" }, ...[
    ["Status", d.DeliveryStreamStatus], ["Source", source], ["Destination", s3 ? s3.BucketARN : Object.keys(dest).filter((k) => k !== "DestinationId").join(", ")],
    ["Prefix", s3?.Prefix || "(default)"], ["Error prefix", s3?.ErrorOutputPrefix || "(default)"],
    ["Buffering", s3 ? `${s3.BufferingHints?.SizeInMBs} MiB / ${s3.BufferingHints?.IntervalInSeconds} s` : "–"],
    ["Compression", s3?.CompressionFormat || "–"],
    ["Processing", (s3?.ProcessingConfiguration?.Enabled ? (s3.ProcessingConfiguration.Processors || []).map((p) => p.Type).join(", ") : "off")],
    ["Created", when(d.CreateTimestamp)],
  ].map(([k, v]) => h("div", { class: "card" }, h("dt", {}, k), h("dd", {}, v))));
  const key = (m) => seriesKey(`riffle_firehose_${m}`, [["delivery_stream", name]]);
  const charts = [
    chart("Incoming records", "count", [["IncomingRecords", () => rates(key("incoming_records_total"))]]),
    chart("Buffered", "size", [["Bytes buffered", () => gauge(key("delivery_to_s3_buffered_bytes"))]]),
    chart("Delivered to S3", "bytes", [["DeliveryToS3.Bytes", () => rates(key("delivery_to_s3_bytes_total"))]]),
    chart("Deliveries", "count", [["Objects stored", () => rates(key("delivery_to_s3_object_count_total"))],
      ["Failed puts", () => rates(key("delivery_to_s3_failed_puts_total"))]]),
    chart("Data freshness", "ms", [["DeliveryToS3.DataFreshness", () => gauge(key("delivery_to_s3_data_freshness_milliseconds"))]]),
  ];
  const buffer = bufferPanel(key, s3?.BufferingHints || dest.HttpEndpointDestinationDescription?.BufferingHints);
  const objects = h("div", {}, h("p", {}, "Loading objects…"));
  main.replaceChildren(
    h("div", { class: "crumbs" }, h("a", { href: "#/" }, "Overview"), " / ", name),
    h("h1", {}, name), facts,
    h("h2", { id: "buffer" }, "Buffer"), buffer.box,
    h("h2", {}, "Delivery metrics"), h("div", { class: "charts" }, charts.map(([box]) => box)),
    h("h2", {}, "Last objects delivered"), objects);
  startSampling();
  const loadObjects = async () => {
    const bucket = s3.BucketARN.replace(/^arn:[^:]+:s3:::/, "");
    const list = async (prefix) => (await get(`/api/s3/objects?bucket=${enc(bucket)}&prefix=${enc(prefix)}&recursive=1`)).objects;
    try {
      const errPrefix = (s3.ErrorOutputPrefix || "").split("!{")[0];
      const all = await list((s3.Prefix || "").split("!{")[0]);
      const isErr = (o) => errPrefix ? o.key.startsWith(errPrefix) : /(^|\/)(processing-failed|format-conversion-failed|elasticsearch-failed|http-endpoint-failed|splunk-failed)\//.test(o.key);
      const table = (rows) => h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Key"), h("th", { class: "num" }, "Size"), h("th", { class: "hide-narrow" }, "Delivered"))),
        h("tbody", {}, rows.map((o) => h("tr", {},
          h("td", {}, h("a", { href: `#/s3/${enc(bucket)}?key=${enc(o.key)}` }, o.key)),
          h("td", { class: "num" }, bytes(o.size)), h("td", { class: "hide-narrow" }, when(o.lastModified / 1000)))))));
      const recent = (xs) => xs.sort((x, y) => y.lastModified - x.lastModified).slice(0, 20);
      const delivered = recent(all.filter((o) => !isErr(o)));
      const failed = recent((errPrefix ? await list(errPrefix) : all).filter(isErr));
      objects.replaceChildren(
        delivered.length ? table(delivered) : h("p", {}, "Nothing delivered yet."),
        h("h2", {}, "Recent error-prefix objects"),
        failed.length ? table(failed) : h("p", {}, "No error objects."));
    } catch (e) { objects.replaceChildren(errorBox()); showError(objects.firstChild, e); }
  };
  if (s3) await loadObjects();
  else objects.replaceChildren(h("p", {}, "This destination does not deliver to S3."));
  // The lists again whenever the count of objects stored moves on.
  const storedKey = key("delivery_to_s3_object_count_total");
  let listedAt = latest(storedKey);
  return () => {
    charts.forEach(([, draw]) => draw());
    buffer.draw();
    const stored = latest(storedKey);
    if (s3 && stored != null && stored !== listedAt) {
      if (listedAt !== undefined) loadObjects();
      listedAt = stored;
    }
  };
}

// What the delivery lane's buffer holds now against the buffering hints
// (flushed at SizeInMBs or IntervalInSeconds, whichever comes first), and
// what was delivered so far.
function bufferPanel(key, hints) {
  const sizeMax = (hints?.SizeInMBs || 0) * 1024 * 1024, intervalS = hints?.IntervalInSeconds;
  const bar = h("progress", { max: String(sizeMax || 1), value: "0", "aria-label": "Buffer fill" });
  const cell = (col) => h("dd", { "data-col": col }, "–");
  const cells = { records: cell("records"), bytes: cell("bytes"), age: cell("age"), delivered: cell("delivered"), objects: cell("objects") };
  const box = h("div", { class: "buffer", "data-buffer": "" },
    h("p", { class: "legend" }, `Flushed at ${sizeMax ? bytes(sizeMax) : "–"} or ${intervalS ?? "–"} s after its first record, whichever comes first.`),
    bar,
    h("dl", { class: "cards" }, ...[["Records buffered", cells.records], ["Bytes buffered", cells.bytes], ["Oldest waited", cells.age],
      ["Records delivered", cells.delivered], ["Objects delivered", cells.objects]]
      .map(([k, v]) => h("div", { class: "card" }, h("dt", {}, k), v))));
  const draw = () => {
    const buffered = latest(key("delivery_to_s3_buffered_bytes"));
    if (buffered == null) return;
    const age = latest(key("delivery_to_s3_buffer_age_milliseconds")) || 0;
    bar.value = Math.min(buffered, sizeMax || 1);
    cells.records.textContent = String(latest(key("delivery_to_s3_buffered_records")) ?? 0);
    cells.bytes.textContent = sizeMax ? `${bytes(buffered)} of ${bytes(sizeMax)} (${(100 * buffered / sizeMax).toFixed(buffered && buffered < sizeMax / 1000 ? 3 : 1)} %)` : bytes(buffered);
    cells.age.textContent = `${(age / 1000).toFixed(1)} s of ${intervalS ?? "–"} s`;
    cells.delivered.textContent = String(latest(key("delivery_to_s3_records_total")) ?? 0);
    cells.objects.textContent = String(latest(key("delivery_to_s3_object_count_total")) ?? 0);
  };
  return { box, draw };
}

async function s3Page(bucket, params) {
  if (!bucket) {
    const { buckets } = await get("/api/s3/buckets");
    main.replaceChildren(h("h1", {}, "S3 buckets"),
      buckets.length ? h("ul", {}, buckets.map((b) => h("li", {}, h("a", { href: `#/s3/${enc(b.name)}` }, b.name)))) : h("p", {}, "No buckets."));
    return null;
  }
  const prefix = params.get("prefix") || "";
  const key = params.get("key");
  const crumbs = h("div", { class: "crumbs" }, h("a", { href: "#/s3" }, "S3"), " / ", h("a", { href: `#/s3/${enc(bucket)}` }, bucket));
  let path = "";
  for (const part of prefix.split("/").filter(Boolean)) {
    path += part + "/";
    crumbs.append(" / ", h("a", { href: `#/s3/${enc(bucket)}?prefix=${enc(path)}` }, part));
  }
  if (key) {
    const p = await get(`/api/s3/preview?bucket=${enc(bucket)}&key=${enc(key)}`);
    const download = h("a", { href: `/api/s3/object?bucket=${enc(bucket)}&key=${enc(key)}`, download: key.split("/").pop() }, "Download");
    if (p.parquet) {
      main.replaceChildren(crumbs, h("h1", {}, key),
        h("p", {}, `${bytes(p.size)}, Parquet, ${p.parquet.rowCount} rows · `, download),
        h("h2", {}, "Schema"), h("pre", { class: "data", "aria-label": "Schema" }, p.parquet.schema),
        h("h2", {}, `First ${p.parquet.rows.length} rows`),
        h("pre", { class: "data preview", "aria-label": "Preview" }, p.parquet.rows.join("\n")));
      return null;
    }
    main.replaceChildren(crumbs, h("h1", {}, key),
      h("p", {}, `${bytes(p.size)}${p.gzip ? ", gzip (shown decompressed)" : ""}${p.truncated ? ", first 64 KiB shown" : ""} · `, download),
      h("pre", { class: "data preview", "aria-label": "Preview" }, p.text));
    return null;
  }
  const list = await get(`/api/s3/objects?bucket=${enc(bucket)}&prefix=${enc(prefix)}`);
  main.replaceChildren(crumbs, h("h1", {}, `${bucket}/${prefix}`),
    h("div", { class: "scroll" }, h("table", { "aria-label": "Objects" },
      h("thead", {}, h("tr", {}, h("th", {}, "Key"), h("th", { class: "num" }, "Size"), h("th", { class: "hide-narrow" }, "Last modified"))),
      h("tbody", {},
        list.prefixes.map((p) => h("tr", {}, h("td", {}, h("a", { href: `#/s3/${enc(bucket)}?prefix=${enc(p)}` }, p.slice(prefix.length))), h("td", {}), h("td", { class: "hide-narrow" }))),
        list.objects.map((o) => h("tr", {},
          h("td", {}, h("a", { href: `#/s3/${enc(bucket)}?key=${enc(o.key)}` }, o.key.slice(prefix.length))),
          h("td", { class: "num" }, bytes(o.size)), h("td", { class: "hide-narrow" }, when(o.lastModified / 1000))))))),
    list.truncated ? h("p", {}, "More than 1,000 entries: narrow the prefix.") : null);
  return null;
}

// ---------- the router ----------
let redraw = null;
listeners.add(() => redraw && redraw());
async function route() {
  const hash = location.hash.slice(1) || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  redraw = null;
  try {
    if (session.verifies && !session.accessKeyId) { showLogin(); return; }
    let draw;
    if (parts[0] === "stream") draw = await streamPage(parts[1]);
    else if (parts[0] === "records") draw = await recordsPage(parts[1]);
    else if (parts[0] === "delivery") draw = await deliveryPage(parts[1]);
    else if (parts[0] === "s3") draw = await s3Page(parts[1], params);
    else draw = await overview();
    redraw = draw;
    if (draw) draw();
    document.title = `${parts[1] || parts[0] || "Overview"} · Riffle console`;
  } catch (e) {
    if (e.type === "NotLoggedIn") return;
    const box = errorBox();
    showError(box, e);
    main.replaceChildren(h("h1", {}, "Something went wrong"), box, h("p", {}, h("a", { href: "#/" }, "Back to the overview")));
  }
}
window.addEventListener("hashchange", route);
window.addEventListener("resize", () => redraw && redraw());
loadSession().then(route);
