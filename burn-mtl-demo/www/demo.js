// The page of burn-mtl-demo: picks the backend (WebGPU, else burn-ndarray), lets the user pick
// methods and starting points, steps the Rust session and draws loss space, parameter space
// and the weights. The state of the run is mirrored on #status (data-* attributes) for tests.
import init, { init_backend, catalog, configure, step, mean_loss_grid } from './pkg/burn_mtl_demo.js';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const statusEl = $('status');

const METHOD_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b',
  '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const DEFAULT_METHODS = ['mean', 'mgda', 'pcgrad', 'cagrad', 'nash_mtl', 'famo'];
const L1_SCALE = 0.1;
const PARAM_RANGE = { x: [-10, 10], y: [-10, 10] };
const MAX_KEPT = 4000; // points kept per run for drawing (thinned by halving beyond that)

const state = {
  backend: null, // 'webgpu' | 'ndarray'
  engine: null,
  config: null, // what configure() returned
  runs: [], // {label, start, color, track: [[step,x1,x2,l1,l2,w1,w2]], stride, steps, error, last}
  running: false,
  dirty: false, // methods, starts or lr changed since the session began
  frames: 0,
  stepsTarget: 0,
  starts: [],
  background: null,
};

function setStatus(status, extra = {}) {
  statusEl.dataset.status = status;
  for (const [k, v] of Object.entries(extra)) statusEl.dataset[k] = String(v);
  statusEl.classList.toggle('error', status === 'error');
  const d = statusEl.dataset;
  const head = `${status} · backend ${d.backend || '?'}${state.engine ? ` (${state.engine} engine)` : ''}` +
    ` · ${d.runs} run(s) · step ${d.steps}`;
  statusEl.textContent = extra.message ? `${head}\n${extra.message}` : head;
}

function fail(message) {
  state.running = false;
  setStatus('error', { message });
  console.error(message);
}

// ---------------------------------------------------------------- backend choice

async function pickBackend() {
  if (params.get('backend') === 'ndarray') {
    return { kind: 'ndarray', reason: 'the CPU backend was requested (?backend=ndarray)' };
  }
  if (!('gpu' in navigator) || !navigator.gpu) {
    return { kind: 'ndarray', reason: 'this browser exposes no WebGPU (navigator.gpu is missing)' };
  }
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { kind: 'ndarray', reason: 'WebGPU is present but offers no adapter' };
    const i = adapter.info || {};
    const adapterInfo = [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ');
    return { kind: 'webgpu', adapterInfo };
  } catch (e) {
    return { kind: 'ndarray', reason: `WebGPU adapter request failed: ${e}` };
  }
}

async function startBackend() {
  let choice = await pickBackend();
  let info = null;
  if (choice.kind === 'webgpu') {
    try {
      info = JSON.parse(await init_backend('webgpu'));
    } catch (e) {
      choice = { kind: 'ndarray', reason: `burn-wgpu could not start on WebGPU: ${e}` };
    }
  }
  if (choice.kind === 'ndarray') info = JSON.parse(await init_backend('ndarray'));
  state.backend = info.backend;
  const note = $('backend-note');
  if (info.backend === 'webgpu') {
    const adapter = [info.adapter, info.driver, choice.adapterInfo].filter(Boolean).join(', ');
    note.textContent = `Backend: burn-wgpu on WebGPU (adapter: ${adapter || 'not disclosed by the browser'}).`;
    statusEl.dataset.adapter = adapter;
  } else {
    note.textContent = `Backend: burn-ndarray on the CPU, compiled to WebAssembly — ` +
      `fallback: ${choice.reason}.`;
    note.classList.add('fallback');
  }
  statusEl.dataset.backend = info.backend;
  statusEl.dataset.fallbackReason = choice.reason || '';
}

// ---------------------------------------------------------------- controls

function buildControls(cat) {
  const wanted = (params.get('method') || '').split(',').filter(Boolean);
  const box = $('methods');
  for (const name of cat.methods) {
    const label = document.createElement('label');
    const cb = document.createElement('input');
    cb.type = 'checkbox';
    cb.value = name;
    cb.checked = wanted.length ? wanted.includes(name) : DEFAULT_METHODS.includes(name);
    label.append(cb, ` ${name}`);
    box.append(label);
  }
  // A method given in the URL with options (e.g. cagrad:c=0.2) goes to the text field.
  const custom = wanted.filter((w) => !cat.methods.includes(w));
  if (custom.length) $('specs').value = custom.join(',');
  $('specs').title = cat.help;

  const startParam = params.get('start');
  state.starts = cat.starts.map((x) => ({ x, checked: true }));
  if (startParam && startParam !== 'all') {
    const v = startParam.split(',').map(Number);
    const x = [v[0], v[1]];
    const known = state.starts.find((s) => s.x[0] === x[0] && s.x[1] === x[1]);
    for (const s of state.starts) s.checked = false;
    if (known) known.checked = true;
    else state.starts.push({ x, checked: true });
  }
  renderStarts();
  if (params.get('lr')) $('lr').value = params.get('lr');
}

function renderStarts() {
  const box = $('starts');
  box.textContent = '';
  for (const s of state.starts) {
    const label = document.createElement('label');
    const cb = document.createElement('input');
    cb.type = 'checkbox';
    cb.checked = s.checked;
    cb.addEventListener('change', () => { s.checked = cb.checked; });
    label.append(cb, ` (${s.x[0]}, ${s.x[1]})`);
    box.append(label);
  }
}

function selectedSpecs() {
  const text = $('specs').value.trim();
  if (text) return text;
  return [...document.querySelectorAll('#methods input:checked')].map((c) => c.value).join(',');
}

function newSession() {
  const specs = selectedSpecs();
  const starts = state.starts.filter((s) => s.checked).map((s) => s.x);
  if (!specs) throw new Error('pick at least one method');
  if (!starts.length) throw new Error('pick at least one starting point');
  const lr = Number($('lr').value) || 1e-3;
  const wantEngine = params.get('engine') || 'cpu';
  const cfg = JSON.parse(configure(specs, JSON.stringify(starts), lr, L1_SCALE, wantEngine));
  state.config = cfg;
  state.engine = cfg.engine;
  const labels = [...new Set(cfg.runs.map((r) => r.label))];
  state.runs = cfg.runs.map((r) => {
    const x = r.start;
    const i = cfg.runs.indexOf(r);
    const l = cfg.start_losses[starts.findIndex((s) => s[0] === x[0] && s[1] === x[1])];
    return {
      label: r.label,
      start: x,
      color: METHOD_COLORS[labels.indexOf(r.label) % METHOD_COLORS.length],
      track: [[0, x[0], x[1], l[0], l[1], null, null]],
      stride: 1,
      steps: 0,
      error: null,
      index: i,
    };
  });
  statusEl.dataset.runs = String(state.runs.length);
  state.frames = 0;
  state.dirty = false;
  setStatus('ready', { steps: 0, losses: '[]', finite: '', drawn: 0 });
  draw();
}

// ---------------------------------------------------------------- stepping

function ingest(res) {
  res.runs.forEach((r, i) => {
    const run = state.runs[i];
    run.steps = r.steps;
    run.error = r.error;
    for (const p of r.points) {
      if (p[0] % run.stride === 0) run.track.push(p);
      run.last = p;
    }
    if (run.track.length > MAX_KEPT) {
      run.stride *= 2;
      run.track = run.track.filter((p, k) => k === 0 || p[0] % run.stride === 0);
    }
  });
}

const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

async function loop() {
  const perFrame = () => Math.max(1, Number($('per-frame').value) || 1);
  setStatus('running');
  while (state.running) {
    const done = Math.min(...state.runs.map((r) => r.steps));
    const n = Math.min(perFrame(), state.stepsTarget - done);
    if (n <= 0) break;
    let res;
    try {
      res = JSON.parse(await step(n));
    } catch (e) {
      fail(`step failed: ${e}`);
      return;
    }
    ingest(res);
    draw();
    publish();
    if (state.runs.every((r) => r.error)) break;
    await nextFrame();
  }
  const finished = state.runs.every((r) => r.error || r.steps >= state.stepsTarget);
  state.running = false;
  $('start').disabled = false;
  $('pause').disabled = true;
  publish(finished ? 'done' : 'paused');
}

function publish(status) {
  const lasts = state.runs.map((r) => (r.last ? [r.last[3], r.last[4]] : null));
  const values = lasts.flat().filter((v) => v !== null);
  const finite = values.length > 0 && values.every(Number.isFinite);
  const steps = state.runs.length ? Math.min(...state.runs.map((r) => r.steps)) : 0;
  const errors = state.runs.filter((r) => r.error).map((r) => `${r.label}: ${r.error}`);
  setStatus(status || (state.running ? 'running' : 'paused'), {
    steps,
    losses: JSON.stringify(lasts),
    finite,
    drawn: state.frames,
    errors: errors.length,
    message: errors.join('\n'),
  });
  renderTable();
}

function renderTable() {
  const body = document.querySelector('#table tbody');
  body.textContent = '';
  const f = (v, d = 3) => (v === null || v === undefined ? '–' : Number(v).toFixed(d));
  for (const r of state.runs) {
    const p = r.last || r.track[0];
    const tr = document.createElement('tr');
    tr.innerHTML = `<td><span class="swatch" style="background:${r.color}"></span>${r.label}</td>` +
      `<td>(${r.start[0]}, ${r.start[1]})</td><td>${r.steps}</td>` +
      `<td>(${f(p[1])}, ${f(p[2])})</td><td>(${f(p[3])}, ${f(p[4])})</td>` +
      `<td>${r.error ? `error: ${r.error}` : `(${f(p[5])}, ${f(p[6])})`}</td>`;
    body.append(tr);
  }
}

// ---------------------------------------------------------------- drawing

const MARGIN = { l: 52, r: 12, t: 12, b: 36 };

function frame(canvas, xr, yr, xlabel, ylabel) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width - MARGIN.l - MARGIN.r;
  const h = canvas.height - MARGIN.t - MARGIN.b;
  const px = (x) => MARGIN.l + ((x - xr[0]) / (xr[1] - xr[0])) * w;
  const py = (y) => MARGIN.t + (1 - (y - yr[0]) / (yr[1] - yr[0])) * h;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  return { ctx, w, h, px, py, xr, yr, xlabel, ylabel };
}

function ticks(lo, hi, n = 6) {
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

function axes(f) {
  const { ctx, w, h, px, py } = f;
  ctx.strokeStyle = '#333';
  ctx.lineWidth = 1;
  ctx.strokeRect(MARGIN.l, MARGIN.t, w, h);
  ctx.fillStyle = '#333';
  ctx.font = '11px sans-serif';
  ctx.textAlign = 'center';
  for (const v of ticks(...f.xr)) {
    ctx.fillText(String(v), px(v), MARGIN.t + h + 14);
  }
  ctx.textAlign = 'right';
  for (const v of ticks(...f.yr)) ctx.fillText(String(v), MARGIN.l - 4, py(v) + 4);
  ctx.textAlign = 'center';
  ctx.font = '12px sans-serif';
  ctx.fillText(f.xlabel, MARGIN.l + w / 2, MARGIN.t + h + 30);
  ctx.save();
  ctx.translate(14, MARGIN.t + h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(f.ylabel, 0, 0);
  ctx.restore();
}

function clip(f) {
  f.ctx.save();
  f.ctx.beginPath();
  f.ctx.rect(MARGIN.l, MARGIN.t, f.w, f.h);
  f.ctx.clip();
}

function polyline(f, pts, color, width = 1.5, dash = []) {
  const { ctx, px, py } = f;
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.setLineDash(dash);
  ctx.beginPath();
  pts.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
  ctx.stroke();
  ctx.setLineDash([]);
}

function marker(f, x, y, color, kind) {
  const { ctx } = f;
  const X = f.px(x);
  const Y = f.py(y);
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  if (kind === 'start') {
    ctx.arc(X, Y, 4, 0, 2 * Math.PI);
    ctx.fill();
  } else if (kind === 'end') {
    ctx.moveTo(X - 5, Y - 5); ctx.lineTo(X + 5, Y + 5);
    ctx.moveTo(X + 5, Y - 5); ctx.lineTo(X - 5, Y + 5);
    ctx.stroke();
  } else {
    ctx.moveTo(X, Y - 6); ctx.lineTo(X + 5, Y + 4); ctx.lineTo(X - 5, Y + 4);
    ctx.closePath();
    ctx.fill();
  }
}

function lossRange() {
  const cfg = state.config;
  const pts = cfg.pareto.map((p) => p.losses).concat(cfg.start_losses);
  const pad = (lo, hi) => [lo - 0.08 * (hi - lo), hi + 0.08 * (hi - lo)];
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  return { x: pad(Math.min(...xs), Math.max(...xs)), y: pad(Math.min(...ys), Math.max(...ys)) };
}

function paramBackground(f) {
  if (!state.background) {
    const nx = Math.round(f.w);
    const ny = Math.round(f.h);
    const v = mean_loss_grid(L1_SCALE, nx, ny, PARAM_RANGE.x[0], PARAM_RANGE.x[1],
      PARAM_RANGE.y[0], PARAM_RANGE.y[1]);
    const sorted = Float64Array.from(v).sort();
    const lo = sorted[0];
    const hi = sorted[Math.floor(sorted.length * 0.98)];
    const img = new ImageData(nx, ny);
    for (let i = 0; i < v.length; i++) {
      const t = Math.min(1, Math.max(0, (v[i] - lo) / (hi - lo))) ** 0.6;
      img.data[4 * i] = 40 + 205 * t;
      img.data[4 * i + 1] = 60 + 190 * t;
      img.data[4 * i + 2] = 110 + 140 * t;
      img.data[4 * i + 3] = 255;
    }
    state.background = img;
  }
  f.ctx.putImageData(state.background, MARGIN.l, MARGIN.t);
}

function draw() {
  if (!state.config) return;
  const cfg = state.config;
  // Loss space.
  const lr = lossRange();
  const L = frame($('loss-space'), lr.x, lr.y, 'L1 = 0.1·L̃1', 'L2');
  clip(L);
  polyline(L, cfg.pareto.map((p) => p.losses), '#000', 2.5);
  marker(L, cfg.mean_min.losses[0], cfg.mean_min.losses[1], '#000', 'min');
  for (const r of state.runs) {
    polyline(L, r.track.map((p) => [p[3], p[4]]).concat(r.last ? [[r.last[3], r.last[4]]] : []), r.color);
    marker(L, r.track[0][3], r.track[0][4], r.color, 'start');
    const e = r.last || r.track[0];
    marker(L, e[3], e[4], r.color, 'end');
  }
  L.ctx.restore();
  axes(L);
  legend(L);

  // Parameter space.
  const P = frame($('param-space'), PARAM_RANGE.x, PARAM_RANGE.y, 'x1', 'x2');
  paramBackground(P);
  clip(P);
  polyline(P, cfg.pareto.map((p) => p.x), '#000', 2.5);
  marker(P, cfg.mean_min.x[0], cfg.mean_min.x[1], '#000', 'min');
  for (const r of state.runs) {
    polyline(P, r.track.map((p) => [p[1], p[2]]).concat(r.last ? [[r.last[1], r.last[2]]] : []), r.color, 2);
    marker(P, r.start[0], r.start[1], r.color, 'start');
    const e = r.last || r.track[0];
    marker(P, e[1], e[2], r.color, 'end');
  }
  P.ctx.restore();
  axes(P);

  // Weights, normalised: methods return weights of very different scales (Nash-MTL's grow
  // as the gradients shrink), the mix w_k / (|w1| + |w2|) compares them; raw values in the table.
  const maxStep = Math.max(10, ...state.runs.map((r) => r.steps));
  const share = (p, k) => {
    const s = Math.abs(p[5]) + Math.abs(p[6]);
    return s > 0 ? p[k] / s : 0;
  };
  let wlo = 0;
  for (const r of state.runs) {
    for (const p of r.track) {
      if (p[5] !== null) wlo = Math.min(wlo, share(p, 5), share(p, 6));
    }
  }
  const W = frame($('weights'), [0, maxStep], [wlo, 1.05], 'step', 'w_k / (|w1| + |w2|)');
  clip(W);
  for (const r of state.runs) {
    const pts = r.track.filter((p) => p[5] !== null && Number.isFinite(p[5]) && Number.isFinite(p[6]));
    polyline(W, pts.map((p) => [p[0], share(p, 5)]), r.color, 1.5);
    polyline(W, pts.map((p) => [p[0], share(p, 6)]), r.color, 1.5, [5, 4]);
  }
  W.ctx.restore();
  axes(W);
  state.frames += 1;
  statusEl.dataset.drawn = String(state.frames);
}

function legend(f) {
  const seen = new Map();
  for (const r of state.runs) if (!seen.has(r.label)) seen.set(r.label, r.color);
  const { ctx } = f;
  ctx.font = '11px sans-serif';
  ctx.textAlign = 'left';
  let y = MARGIN.t + 14;
  const x = MARGIN.l + f.w - 110;
  for (const [label, color] of seen) {
    ctx.fillStyle = color;
    ctx.fillRect(x, y - 8, 10, 10);
    ctx.fillStyle = '#222';
    ctx.fillText(label.length > 16 ? `${label.slice(0, 15)}…` : label, x + 14, y + 1);
    y += 14;
  }
}

// ---------------------------------------------------------------- wiring

function onStart() {
  const target = Math.max(1, Number($('max-steps').value) || 1);
  try {
    // Continue the current runs unless the choices changed or they are all finished.
    if (!state.config || state.dirty || state.runs.every((r) => r.error || r.steps >= target)) {
      newSession();
    }
  } catch (e) {
    fail(String(e.message || e));
    return;
  }
  state.stepsTarget = target;
  state.running = true;
  $('start').disabled = true;
  $('pause').disabled = false;
  loop();
}

function onReset() {
  state.running = false;
  try {
    newSession();
  } catch (e) {
    fail(String(e.message || e));
  }
}

function onParamClick(ev) {
  const canvas = $('param-space');
  const rect = canvas.getBoundingClientRect();
  const cx = ((ev.clientX - rect.left) / rect.width) * canvas.width;
  const cy = ((ev.clientY - rect.top) / rect.height) * canvas.height;
  const w = canvas.width - MARGIN.l - MARGIN.r;
  const h = canvas.height - MARGIN.t - MARGIN.b;
  const x1 = PARAM_RANGE.x[0] + ((cx - MARGIN.l) / w) * (PARAM_RANGE.x[1] - PARAM_RANGE.x[0]);
  const x2 = PARAM_RANGE.y[1] - ((cy - MARGIN.t) / h) * (PARAM_RANGE.y[1] - PARAM_RANGE.y[0]);
  if (x1 < PARAM_RANGE.x[0] || x1 > PARAM_RANGE.x[1] || x2 < PARAM_RANGE.y[0] || x2 > PARAM_RANGE.y[1]) return;
  for (const s of state.starts) s.checked = false;
  state.starts.push({ x: [+x1.toFixed(2), +x2.toFixed(2)], checked: true });
  renderStarts();
  onReset();
  onStart();
}

async function main() {
  try {
    await init();
    await startBackend();
    buildControls(JSON.parse(catalog()));
    $('start').addEventListener('click', onStart);
    $('pause').addEventListener('click', () => { state.running = false; });
    $('reset').addEventListener('click', onReset);
    $('param-space').addEventListener('click', onParamClick);
    for (const id of ['methods', 'starts', 'specs', 'lr']) {
      $(id).addEventListener('change', () => { state.dirty = true; });
    }
    newSession();
    const autorun = Number(params.get('autorun') || 0);
    if (autorun > 0) {
      $('max-steps').value = String(autorun);
      if (params.get('per_frame')) $('per-frame').value = params.get('per_frame');
      onStart();
    }
  } catch (e) {
    fail(`the demo could not start: ${e && e.stack ? e.stack : e}`);
  }
}

main();
