// Written by `scaleprof export --web`. Runs model.onnx with onnxruntime-web's WebAssembly backend and
// shows its latency: the median and the IQR over N runs, after a warm-up.
//
// Query parameters: runs (default 100), warmup (default 10), threads (default: onnxruntime-web's choice;
// more than one needs a cross-origin isolated page). With bench=1 the page is driven by
// `scaleprof bench --runtime web`: it POSTs its samples to the server that serves it, which answers when
// to stop (the same stop rule as every runtime), and nothing is shown.
"use strict";

const q = new URLSearchParams(location.search);
const driven = q.get("bench") === "1";

function setText(id, text) { document.getElementById(id).textContent = text; }

function status(text, error) {
  const el = document.getElementById("status");
  el.textContent = text;
  el.className = error ? "error" : "";
}

async function post(what, body) {
  const r = await fetch("/scaleprof/" + what, {method: "POST", headers: {"Content-Type": "application/json"},
                                              body: JSON.stringify(body)});
  return r.json();
}

// Inputs of the model's shapes: floats uniform in [-1, 1), integers zero (valid token ids), booleans false.
function makeFeeds(names, inputs) {
  if (names.length !== inputs.length) {
    throw new Error(`the model takes ${names.length} inputs, model.json lists ${inputs.length}`);
  }
  const feeds = {};
  names.forEach((name, i) => {
    const {shape, dtype} = inputs[i];
    const n = shape.reduce((a, b) => a * b, 1);
    let data;
    if (dtype === "float32") {
      data = new Float32Array(n);
      for (let j = 0; j < n; j++) data[j] = Math.random() * 2 - 1;
    } else if (dtype === "int64") {
      data = new BigInt64Array(n);
    } else if (dtype === "int32") {
      data = new Int32Array(n);
    } else if (dtype === "bool") {
      data = new Uint8Array(n);
    } else {
      throw new Error(`cannot make ${dtype} inputs`);
    }
    feeds[name] = new ort.Tensor(dtype, data, shape);
  });
  return feeds;
}

// Percentiles as numpy's default (linear between order statistics), so the page and bench agree.
function percentile(sorted, p) {
  const h = (sorted.length - 1) * p / 100;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

// performance.now() resolves 5 us in a cross-origin isolated page, 100 us otherwise: a sample is a block
// of k runs long enough (200 ticks) that the clock's step stays under 0.5% of it.
function blockSize(callMs) {
  const tick = crossOriginIsolated ? 0.005 : 0.1;
  return Math.max(1, Math.min(1000, Math.ceil(200 * tick / Math.max(callMs, 1e-6))));
}

async function timeBlock(session, feeds, k) {
  const t0 = performance.now();
  for (let i = 0; i < k; i++) await session.run(feeds);
  return (performance.now() - t0) / k;
}

async function load() {
  if (location.protocol === "file:") {
    throw new Error("browsers do not run WebAssembly from file:// pages: serve this folder, e.g. " +
                    "`python -m http.server -d THIS_FOLDER`, and open http://127.0.0.1:8000/");
  }
  const cfg = await (await fetch("model.json")).json();
  ort.env.wasm.wasmPaths = new URL("./", location.href).href;  // this folder, never a CDN
  ort.env.wasm.proxy = false;
  if (q.get("threads")) ort.env.wasm.numThreads = Number(q.get("threads"));
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(cfg.model, {executionProviders: ["wasm"],
                                                                 graphOptimizationLevel: "all"});
  const sessionMs = performance.now() - t0;
  const feeds = makeFeeds(session.inputNames, cfg.inputs);
  const c0 = performance.now();
  await session.run(feeds);
  const coldMs = performance.now() - c0;
  const probe = [];
  for (let i = 0; i < 3; i++) probe.push(await timeBlock(session, feeds, 1));
  probe.sort((a, b) => a - b);
  const info = {session_ms: sessionMs, cold_ms: coldMs, calls_per_block: blockSize(probe[1]),
                threads: ort.env.wasm.numThreads, cross_origin_isolated: crossOriginIsolated,
                ort_web_version: ort.env.versions ? ort.env.versions.web || ort.env.versions.common : null,
                user_agent: navigator.userAgent, hardware_concurrency: navigator.hardwareConcurrency,
                inputs: cfg.inputs.map((x) => x.shape.join("x") + ":" + x.dtype)};
  return {cfg, session, feeds, info};
}

// Driven by scaleprof: samples go to the server every 100 ms; its answer says whether to go on.
async function drivenRun(run) {
  await post("ready", run.info);
  const k = run.info.calls_per_block;
  let pending = [];
  let last = performance.now();
  for (;;) {
    pending.push(await timeBlock(run.session, run.feeds, k));
    if (performance.now() - last >= 100) {
      const answer = await post("samples", {samples: pending});
      pending = [];
      last = performance.now();
      if (answer.stop) break;
    }
  }
  await post("done", {});
}

async function standalone(run) {
  const runs = Math.max(1, Number(q.get("runs") || 100));
  const warmup = Math.max(0, Number(q.get("warmup") || 10));
  const k = run.info.calls_per_block;
  setText("title", run.cfg.label);
  setText("what", `onnxruntime-web ${run.info.ort_web_version || run.cfg.ort_web_version}, WebAssembly backend, ` +
                  `inputs ${run.info.inputs.join(", ")}`);
  status(`warming up (${warmup} runs)...`);
  for (let i = 0; i < warmup; i++) await timeBlock(run.session, run.feeds, 1);
  status(`timing ${runs} samples of ${k} run${k > 1 ? "s" : ""} each...`);
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(await timeBlock(run.session, run.feeds, k));
  const s = samples.slice().sort((a, b) => a - b);
  const ms = (x) => `${x.toPrecision(4)} ms`;
  setText("median", ms(percentile(s, 50)));
  setText("iqr", `${ms(percentile(s, 75) - percentile(s, 25))} (${ms(percentile(s, 25))} - ${ms(percentile(s, 75))})`);
  setText("min", ms(s[0]));
  setText("runs", `${runs}` + (k > 1 ? ` samples of ${k} runs` : ""));
  setText("session", ms(run.info.session_ms));
  setText("cold", ms(run.info.cold_ms));
  setText("threads", `${run.info.threads}` + (run.info.cross_origin_isolated ? "" : " (page not cross-origin isolated)"));
  document.getElementById("result").hidden = false;
  status(`done: ${runs} samples after ${warmup} warm-up runs.`);
  const again = document.getElementById("again");
  again.hidden = false;
  again.onclick = () => { again.hidden = true; standalone(run); };
}

(async () => {
  try {
    const run = await load();
    if (driven) await drivenRun(run); else await standalone(run);
  } catch (err) {
    const msg = String(err && err.message ? err.message : err);
    status(msg, true);
    if (driven) { try { await post("error", {message: msg}); } catch (_) { /* the server is gone */ } }
  }
})();
