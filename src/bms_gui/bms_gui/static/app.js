// Open BMS web GUI: the live dashboard and the recorded-run viewer share every view below.
// Data: JSON status frames and binary cell-grid frames (layout in docs/gui.md), from the
// WebSocket live or from /api/runs/... for a recording. No third-party code.
"use strict";

const $ = (id) => document.getElementById(id);
const FLAG = { BALANCING: 1, STALE: 2, MISSING: 4, AFE: 8 };
const METRICS = {
  voltage: { unit: "V", digits: 3 }, temperature: { unit: "°C", digits: 1 },
  soc: { unit: "", digits: 3 }, soh: { unit: "", digits: 3 }, resistance: { unit: "mΩ", digits: 2, scale: 1000 },
};
const WINDOW_S = 300;
const gui = { status: null, grid: null, series: [], fields: [], session: {}, run: null, selected: null, cellHistory: [] };
window.bms = gui;  // for the browser tests and the curious

// ---------- formatting ----------
function fmt(value, unit, digits = 2) {
  return value === null || value === undefined || Number.isNaN(value) ? "unknown" : `${value.toFixed(digits)} ${unit}`.trim();
}
function text(id, value) { const e = $(id); if (e.textContent !== value) e.textContent = value; }
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}
// Run time: simulated seconds in a simulation, epoch seconds on the wall clock (shown as UTC).
function fmtTime(t) { return t > 1e8 ? new Date(t * 1000).toISOString().slice(11, 21) + " UTC" : `${t.toFixed(1)} s`; }
function where(module, cell) { return module < 0 ? "pack" : cell < 0 ? `module ${module}` : `module ${module} cell ${cell}`; }

// ---------- binary grid ----------
function parseGrid(buffer) {
  const head = new DataView(buffer, 0, 12);
  const magic = String.fromCharCode(...new Uint8Array(buffer, 0, 4));
  if (magic !== "BMSG") throw new Error("not a grid frame");
  const m = head.getUint16(4, true), c = head.getUint16(6, true), s = head.getUint16(8, true);
  let at = 12;
  const f32 = (n) => { const a = new Float32Array(buffer.slice(at, at + 4 * n)); at += 4 * n; return a; };
  const voltage = f32(m * c), temperature = f32(m * s), soc = f32(m * c), soh = f32(m * c), resistance = f32(m * c);
  const flags = new Uint8Array(buffer.slice(at, at + m * c));
  return { modules: m, cells: c, sensors: s, voltage, temperature, soc, soh, resistance, flags };
}

function metricValues(grid, metric) {
  const cols = metric === "temperature" ? grid.sensors : grid.cells;
  return { cols, values: grid[metric], scale: METRICS[metric].scale || 1 };
}

// ---------- heatmap ----------
const heat = { x0: 70, y0: 18, cw: 0, ch: 0, cols: 0 };
function color(frac) {  // dark blue (min) -> teal -> yellow (max)
  const f = Math.max(0, Math.min(1, frac));
  const stops = [[40, 60, 150], [30, 160, 140], [250, 220, 40]], i = f < 0.5 ? 0 : 1, g = f < 0.5 ? f * 2 : f * 2 - 1;
  const mix = (k) => Math.round(stops[i][k] + (stops[i + 1][k] - stops[i][k]) * g);
  return `rgb(${mix(0)},${mix(1)},${mix(2)})`;
}
function drawHeatmap() {
  const grid = gui.grid, canvas = $("heatmap"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!grid || !grid.modules) { text("grid-stats", "no cell data"); return; }
  const metric = $("metric").value, { cols, values, scale } = metricValues(grid, metric);
  const rowsH = Math.max(4, Math.min(24, Math.floor(1200 / grid.modules)));
  const height = heat.y0 + grid.modules * rowsH + 4;
  if (canvas.height !== height) canvas.height = height;
  heat.cols = cols; heat.ch = rowsH; heat.cw = Math.max(4, (canvas.width - heat.x0 - 4) / Math.max(1, cols));
  let lo = Infinity, hi = -Infinity, loAt = null, hiAt = null;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isNaN(v) || grid.flags[Math.floor(i / cols) * grid.cells] & FLAG.MISSING) continue;
    if (v < lo) { lo = v; loAt = i; } if (v > hi) { hi = v; hiAt = i; }
  }
  const span = hi > lo ? hi - lo : 1;
  ctx.font = "11px sans-serif"; ctx.fillStyle = "#334";
  for (let c = 0; c < cols; c += Math.max(1, Math.ceil(cols / 24))) ctx.fillText(String(c), heat.x0 + c * heat.cw + 2, 12);
  for (let m = 0; m < grid.modules; m++) {
    const y = heat.y0 + m * rowsH, rowFlags = grid.flags[m * grid.cells] || 0;
    if (rowsH >= 9 || m % 10 === 0) { ctx.fillStyle = "#334"; ctx.fillText(`M${m}`, 4, y + Math.min(rowsH, 12) - 1); }
    for (let c = 0; c < cols; c++) {
      const v = values[m * cols + c], x = heat.x0 + c * heat.cw;
      const flags = metric === "temperature" ? rowFlags : grid.flags[m * grid.cells + c];
      if (Number.isNaN(v)) {  // unknown: white with a dark cross
        ctx.fillStyle = "#fff"; ctx.fillRect(x, y, heat.cw - 1, rowsH - 1);
        ctx.strokeStyle = "#444"; ctx.beginPath(); ctx.moveTo(x + 1, y + 1); ctx.lineTo(x + heat.cw - 2, y + rowsH - 2);
        ctx.moveTo(x + heat.cw - 2, y + 1); ctx.lineTo(x + 1, y + rowsH - 2); ctx.stroke();
      } else { ctx.fillStyle = color((v - lo) / span); ctx.fillRect(x, y, heat.cw - 1, rowsH - 1); }
      if (flags & FLAG.STALE) {  // stale: grey hatching over the last value
        ctx.fillStyle = "rgba(120,120,120,0.55)"; ctx.fillRect(x, y, heat.cw - 1, rowsH - 1);
        ctx.strokeStyle = "#333"; ctx.beginPath(); ctx.moveTo(x, y + rowsH - 1); ctx.lineTo(x + heat.cw - 1, y); ctx.stroke();
      }
      if (flags & FLAG.BALANCING) { ctx.fillStyle = "#2060ff"; ctx.beginPath(); ctx.arc(x + heat.cw / 2, y + rowsH / 2, Math.min(heat.cw, rowsH) / 5, 0, 7); ctx.fill(); }
      if (flags & FLAG.AFE) { ctx.strokeStyle = "#d0f"; ctx.lineWidth = 2; ctx.strokeRect(x + 1, y + 1, heat.cw - 3, rowsH - 3); ctx.lineWidth = 1; }
      if (gui.selected && gui.selected[0] === m && gui.selected[1] === c) { ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.strokeRect(x, y, heat.cw - 1, rowsH - 1); ctx.lineWidth = 1; }
    }
  }
  const u = METRICS[metric], d = u.digits, at = (i) => (i === null ? "" : ` (M${Math.floor(i / cols)} C${i % cols})`);
  text("grid-stats", loAt === null ? "no known value" :
    `min ${fmt(lo * scale, u.unit, d)}${at(loAt)} · max ${fmt(hi * scale, u.unit, d)}${at(hiAt)} · delta ${fmt((hi - lo) * scale, u.unit, d)}`);
}
function cellAt(event) {
  const canvas = $("heatmap"), r = canvas.getBoundingClientRect();
  const x = (event.clientX - r.left) * canvas.width / r.width, y = (event.clientY - r.top) * canvas.height / r.height;
  const c = Math.floor((x - heat.x0) / heat.cw), m = Math.floor((y - heat.y0) / heat.ch);
  if (!gui.grid || m < 0 || c < 0 || m >= gui.grid.modules || c >= heat.cols) return null;
  return [m, c];
}
gui.cellCenter = (m, c) => {  // page coordinates of a cell, for tests and tools
  const canvas = $("heatmap"), r = canvas.getBoundingClientRect();
  return { x: r.left + (heat.x0 + (c + 0.5) * heat.cw) * r.width / canvas.width,
           y: r.top + (heat.y0 + (m + 0.5) * heat.ch) * r.height / canvas.height };
};
function describeCell(m, c) {
  const grid = gui.grid, metric = $("metric").value, { cols, values, scale } = metricValues(grid, metric);
  const flags = grid.flags[m * grid.cells + (metric === "temperature" ? 0 : c)];
  const v = values[m * cols + c], u = METRICS[metric];
  const notes = [flags & FLAG.MISSING ? "missing" : "", flags & FLAG.STALE ? "stale" : "",
    flags & FLAG.BALANCING ? "balancing" : "", flags & FLAG.AFE ? "AFE flag" : ""].filter(Boolean);
  const name = metric === "temperature" ? `module ${m} sensor ${c}` : `module ${m} cell ${c}`;
  return `${name}: ${Number.isNaN(v) ? "unknown" : fmt(v * scale, u.unit, u.digits)}${notes.length ? " (" + notes.join(", ") + ")" : ""}`;
}
function onHover(event) {
  const tip = $("tooltip"), cell = cellAt(event);
  if (!cell) { tip.hidden = true; return; }
  tip.textContent = describeCell(cell[0], cell[1]);
  tip.style.left = `${event.clientX + 12}px`; tip.style.top = `${event.clientY + 12}px`; tip.hidden = false;
}
async function onCellClick(event) {
  const cell = cellAt(event);
  if (!cell || $("metric").value === "temperature") return;
  gui.selected = cell; text("history-title", `module ${cell[0]} cell ${cell[1]} voltage`);
  if (gui.run) {
    const r = await fetch(`/api/runs/${encodeURIComponent(gui.run.name)}/cell?module=${cell[0]}&cell=${cell[1]}&t=${$("timeline").value}`);
    if (r.ok) { gui.cellHistory = (await r.json()).points; drawCellHistory(); }
  } else if (gui.socket && gui.socket.readyState === 1) {
    gui.socket.send(JSON.stringify({ type: "history", module: cell[0], cell: cell[1] }));
  }
  drawHeatmap();
}

// ---------- time plots ----------
function drawPlot(canvas, points, lines, title, tNow) {
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, L = 60, R = 10, T = 16, B = 18;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "11px sans-serif"; ctx.fillStyle = "#334"; ctx.fillText(title, L, 11);
  const t1 = tNow ?? (points.length ? points[points.length - 1][0] : 0), t0 = t1 - WINDOW_S;
  const shown = points.filter((p) => p[0] >= t0 && p[0] <= t1);
  let lo = Infinity, hi = -Infinity;
  for (const p of shown) for (const [i] of lines) if (p[i] !== null && p[i] !== undefined) { lo = Math.min(lo, p[i]); hi = Math.max(hi, p[i]); }
  ctx.strokeStyle = "#ccd"; ctx.strokeRect(L, T, W - L - R, H - T - B);
  if (!Number.isFinite(lo)) { ctx.fillText("no data", L + 8, T + 16); return; }
  if (hi === lo) { hi += 0.5; lo -= 0.5; }
  const X = (t) => L + (t - t0) / WINDOW_S * (W - L - R), Y = (v) => T + (hi - v) / (hi - lo) * (H - T - B);
  ctx.fillStyle = "#556"; ctx.fillText(hi.toPrecision(4), 2, T + 9); ctx.fillText(lo.toPrecision(4), 2, H - B);
  ctx.fillText(fmtTime(t0), L, H - 4); ctx.fillText(fmtTime(t1), W - R - 90, H - 4);
  let legend = L + ctx.measureText(title).width + 16;
  for (const [i, colour, name] of lines) {
    ctx.strokeStyle = colour; ctx.beginPath(); let pen = false;
    for (const p of shown) {
      if (p[i] === null || p[i] === undefined) { pen = false; continue; }
      if (pen) ctx.lineTo(X(p[0]), Y(p[i])); else { ctx.moveTo(X(p[0]), Y(p[i])); pen = true; }
    }
    ctx.stroke(); ctx.fillStyle = colour; ctx.fillText(name, legend, 11); legend += ctx.measureText(name).width + 12;
  }
}
function drawPlots() {
  const idx = (name) => gui.fields.indexOf(name), t = gui.run ? Number($("timeline").value) : undefined;
  drawPlot($("plot-pack"), gui.series, [[idx("pack_v"), "#1d60c0", "pack V"], [idx("pack_a"), "#c04020", "current A"]], "Pack", t);
  drawPlot($("plot-cells"), gui.series, [[idx("min_cell_v"), "#1d60c0", "min cell V"], [idx("max_cell_v"), "#c04020", "max cell V"]], "Cells", t);
  drawPlot($("plot-soc"), gui.series, [[idx("soc"), "#208040", "pack SOC"], [idx("max_temp"), "#c08000", "max °C"],
    [idx("charge_limit_a"), "#6040c0", "charge limit A"], [idx("discharge_limit_a"), "#a03090", "discharge limit A"]], "SOC, temperature, limits", t);
}
function drawCellHistory() {
  const points = gui.cellHistory.map((p) => [p[0], p[1]]);
  drawPlot($("cell-history"), points, [[1, "#1d60c0", "V"]], "cell voltage",
    gui.run ? Number($("timeline").value) : undefined);
}

// ---------- status ----------
function renderStatus(s) {
  gui.status = s;
  text("run-clock", s.run_time === null ? "t = –" : `t = ${fmtTime(s.run_time)}`);
  if (s.intake_msgs_per_s !== undefined) text("connection", `live · ${s.intake_msgs_per_s.toFixed(0)} msg/s`);
  const state = s.state.state || "–", level = (s.safety && s.safety.level) || "–";
  text("op-state", state); $("op-state").className = state === "ERROR" ? "level-FAULT" : "";
  text("state-reason", s.state.reason || "");
  text("safety-level", level); $("safety-level").className = `level-${level}`;
  const k = s.contactors, cmd = s.command || {};
  if (k && k.closed) {
    const part = (key, name) => `${name} ${cmd[key] === undefined ? "?" : cmd[key] ? "close" : "open"}/${k.closed[key] ? "closed" : "open"}`;
    text("contactors", `Contactors (commanded/feedback): ${part("main_plus", "M+")} · ${part("main_minus", "M−")} · ${part("precharge", "PC")}` +
      (k.opened_by_safety ? ` · opened by safety (${k.open_reason})` : "") + (k.welded_or_mismatch ? " · FEEDBACK MISMATCH (welded?)" : ""));
  }
  const health = $("health"); health.replaceChildren();
  for (const [name, h] of Object.entries(s.health)) {
    health.append(el("span", { class: `chip ${h.ok ? "" : h.age_s === null ? "stale" : "bad"}`, title: "age of its last message" },
      `${name} ${h.age_s === null ? "never" : h.age_s.toFixed(1) + " s"}`));
  }
  const p = s.pack || {}, e = s.estimates || {}, l = s.limits || {};
  text("pack-voltage", fmt(p.pack_voltage_v, "V", 2)); text("pack-current", fmt(p.current_a, "A", 2));
  text("pack-power", p.power_w === null || p.power_w === undefined ? "unknown" : fmt(p.power_w / 1000, "kW", 2));
  text("dc-link", fmt(p.dc_link_voltage_v, "V", 1));
  text("insulation", p.insulation_resistance_ohm === null || p.insulation_resistance_ohm === undefined ? "unknown" : fmt(p.insulation_resistance_ohm / 1e6, "MΩ", 2));
  text("hvil", p.hvil_closed === undefined ? "unknown" : p.hvil_closed ? "closed" : "OPEN");
  text("pack-soc", `${fmt(e.pack_soc, "", 3)} / ${fmt(e.pack_soh, "", 3)}`);
  text("charge-limit", l.charge_a === undefined ? "unknown" : `${fmt(l.charge_a, "A", 1)} (${l.charge_reason})`);
  text("discharge-limit", l.discharge_a === undefined ? "unknown" : `${fmt(l.discharge_a, "A", 1)} (${l.discharge_reason})`);
  text("stale-modules", s.stale_modules.length ? `stale modules: ${s.stale_modules.join(", ")}` : "");
  renderFaults(s); renderComponents(s);
  if (s.point && !gui.run) {
    const last = gui.series[gui.series.length - 1];
    if (!last || last[0] !== s.point[0]) {
      if (last && s.point[0] < last[0]) gui.series = [];
      gui.series.push(s.point);
      while (gui.series.length && s.point[0] - gui.series[0][0] > WINDOW_S) gui.series.shift();
    }
  }
}
function frameText(f) {
  const volts = f.cell_voltages_v.map((v) => (v === null ? "unknown" : v.toFixed(3))).join(" ");
  const temps = f.temperatures_degc.map((v) => (v === null ? "unknown" : v.toFixed(1))).join(" ");
  return `pack ${fmt(f.pack_current_a, "A")} ${fmt(f.pack_voltage_v, "V")}, DC link ${fmt(f.dc_link_voltage_v, "V")}, ` +
    `insulation ${f.insulation_resistance_ohm === null ? "unknown" : (f.insulation_resistance_ohm / 1e6).toFixed(2) + " MΩ"}, HVIL ${f.hvil_closed ? "closed" : "open"}` +
    (f.module >= 0 ? `; module ${f.module} cells [V]: ${volts}; temperatures [°C]: ${temps}` : "");
}
let faultKey = "";
function renderFaults(s) {
  const key = JSON.stringify([s.safety.faults, s.fault_log.sequence]);
  if (key === faultKey) return;
  faultKey = key;
  const body = $("active-faults").tBodies[0]; body.replaceChildren();
  for (const f of (s.safety.faults || [])) {
    body.append(el("tr", { class: "fault-row" }, el("td", {}, f.code), el("td", { class: `level-${f.level}` }, f.level),
      el("td", {}, where(f.module, f.cell)), el("td", {}, f.value ?? "–"), el("td", {}, f.limit ?? "–"), el("td", {}, f.latched ? "latched" : ""), el("td", {}, f.description)));
  }
  const log = s.fault_log || {}, box = $("fault-log"); box.replaceChildren();
  text("fault-log-info", log.sequence === undefined ? "(no /bms/fault_log received)" :
    `${(log.entries || []).length} locations, ${(log.latched || []).length} latched, sequence ${log.sequence}`);
  for (const entry of (log.entries || [])) {
    const latched = (log.latched || []).some((f) => f.code === entry.code && f.module === entry.module && f.cell === entry.cell);
    box.append(el("details", { class: "fault-entry" },
      el("summary", {}, `${entry.code} `, el("span", { class: `chip level-${entry.level}` }, entry.level),
        ` ${where(entry.module, entry.cell)} · ${entry.count}× · first ${fmtTime(entry.first)} · last ${fmtTime(entry.last)}${latched ? " · LATCHED" : ""} · ${entry.description}`),
      el("div", { class: "frame" }, `first freeze frame: ${frameText(entry.first_frame)}`),
      el("div", { class: "frame" }, `last freeze frame: ${frameText(entry.last_frame)}`)));
  }
}
function renderComponents(s) {
  const body = $("components").tBodies[0], rows = s.components.map((c) => JSON.stringify(c)).join();
  if (body.dataset.key !== rows) {
    body.dataset.key = rows; body.replaceChildren();
    for (const c of s.components) {
      body.append(el("tr", { class: c.compatible ? "" : "incompatible" }, el("td", {}, c.node), el("td", {}, c.kind), el("td", {}, c.vendor),
        el("td", {}, c.implementation), el("td", {}, c.version), el("td", {}, c.interface_version), el("td", {}, c.host)));
    }
  }
  const audit = $("audit").tBodies[0], key = JSON.stringify(s.audit);
  if (audit.dataset.key !== key) {
    audit.dataset.key = key; audit.replaceChildren();
    for (const a of s.audit) audit.append(el("tr", {}, el("td", {}, a.origin), el("td", {}, a.user || "(none)"), el("td", {}, a.peer),
      el("td", {}, `${a.command} ${a.argument}`), el("td", {}, a.success ? "ok" : "refused"), el("td", {}, a.answer)));
  }
}

// ---------- display loop: draws at most once per animation frame, whatever arrives ----------
let dirty = false;
function redraw() { dirty = true; }
function frame() {
  if (dirty) { dirty = false; if (gui.status) renderStatus(gui.status); drawHeatmap(); drawPlots(); drawCellHistory(); }
  requestAnimationFrame(frame);
}

// ---------- live ----------
function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  socket.binaryType = "arraybuffer"; gui.socket = socket;
  socket.onopen = () => { text("connection", "live"); $("connection").className = "chip"; };
  socket.onclose = () => { text("connection", "disconnected"); $("connection").className = "chip bad"; setTimeout(connect, 2000); };
  socket.onmessage = (event) => {
    if (event.data instanceof ArrayBuffer) { gui.grid = parseGrid(event.data); redraw(); return; }
    const msg = JSON.parse(event.data);
    if (msg.type === "hello") { gui.fields = msg.series_fields; gui.series = msg.series; }
    else if (msg.type === "status") { gui.status = msg; }
    else if (msg.type === "history") { gui.cellHistory = msg.points; }
    else if (msg.type === "error") { console.warn("gui:", msg.error); }
    redraw();
  };
}

// ---------- recorded runs ----------
async function loadRuns() {
  $("runs-bar").hidden = false; $("commands-panel").hidden = true; text("connection", "recording");
  const r = await fetch("/api/runs"), body = await r.json(), select = $("run-select");
  for (const run of body.runs) select.append(el("option", { value: run.name }, `${run.name} (${(run.size_bytes / 1e6).toFixed(1)} MB)`));
  select.onchange = () => openRun(select.value);
  $("timeline").oninput = scrub;
}
// One request at a time; moves made meanwhile collapse into one request for the latest time.
let scrubPending = false, scrubBusy = false;
async function scrub() {
  if (scrubBusy) { scrubPending = true; return; }
  scrubBusy = true;
  try {
    do { scrubPending = false; await showRunAt(Number($("timeline").value)); } while (scrubPending);
  } finally { scrubBusy = false; }
}
async function openRun(name) {
  text("run-answer", name ? "opening…" : "");
  if (!name) return;
  const r = await fetch(`/api/runs/${encodeURIComponent(name)}`), body = await r.json();
  if (!r.ok) { text("run-answer", body.error); $("run-answer").className = "answer refused"; return; }
  gui.run = { name, duration: body.duration_s };
  gui.fields = body.series_fields; gui.series = body.series;
  const tl = $("timeline"); tl.max = body.duration_s.toFixed(1); tl.disabled = false; tl.value = "0";
  await scrub();
  text("run-answer", `${name}: ${body.duration_s.toFixed(1)} s of run time`); $("run-answer").className = "answer";
}
async function showRunAt(t) {
  const name = encodeURIComponent(gui.run.name);
  const [s, g] = await Promise.all([fetch(`/api/runs/${name}/status?t=${t}`), fetch(`/api/runs/${name}/grid?t=${t}`)]);
  if (!s.ok || !g.ok) { text("run-answer", `cannot show t = ${t}: HTTP ${s.status}/${g.status}`); return; }
  gui.status = await s.json(); gui.grid = parseGrid(await g.arrayBuffer());
  text("timeline-label", `${t.toFixed(1)} s / ${gui.run.duration.toFixed(1)} s`);
  $("timeline").dataset.shown = String(t);
  redraw();
}

// ---------- login and commands ----------
async function refreshSession() {
  const r = await fetch("/api/session"); gui.session = await r.json();
  const user = gui.session.user;
  $("login-form").hidden = !!user || !gui.session.accounts; $("logged-in").hidden = !user;
  text("user-name", user || "");
  text("commands-note", !gui.session.accounts ? "Read-only: no operator accounts exist (bms gui user add NAME)."
    : user ? "" : "Log in to send commands.");
}
async function post(url, body) {
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": gui.session.csrf || "" },
    body: JSON.stringify(body) });
  let data = {}; try { data = await r.json(); } catch (_) { data = { error: `HTTP ${r.status}` }; }
  return { status: r.status, data };
}
function showAnswer(id, ok, message) { const e = $(id); e.textContent = message; e.className = `answer ${ok ? "accepted" : "refused"}`; }
async function sendCommand(command, argument, confirm = false) {
  const { status, data } = await post("/api/command", { command, argument, confirm });
  if (status === 409 && data.confirm) {
    text("confirm-text", data.error); $("confirm").hidden = false;
    $("confirm-yes").onclick = () => { $("confirm").hidden = true; sendCommand(command, argument, true); };
    $("confirm-no").onclick = () => { $("confirm").hidden = true; showAnswer("command-answer", false, `${argument}: cancelled`); };
    return;
  }
  const label = `${command}${argument ? " " + argument : ""}`;
  if (data.error) showAnswer("command-answer", false, `${label} refused (HTTP ${status}): ${data.error}`);
  else showAnswer("command-answer", data.success, `${label} ${data.success ? "accepted" : "refused"}: ${data.answer}`);
}

document.addEventListener("DOMContentLoaded", () => {
  $("heatmap").addEventListener("mousemove", onHover);
  $("heatmap").addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  $("heatmap").addEventListener("click", onCellClick);
  $("metric").addEventListener("change", redraw);
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const { status, data } = await post("/api/login", { user: $("login-user").value, password: $("login-password").value });
    $("login-password").value = "";
    showAnswer("login-answer", status === 200, status === 200 ? "" : data.error);
    await refreshSession();
  });
  $("logout").addEventListener("click", async () => { await post("/api/logout", {}); await refreshSession(); });
  for (const button of document.querySelectorAll("[data-command]")) {
    button.addEventListener("click", () => sendCommand(button.dataset.command, button.dataset.argument));
  }
  refreshSession();
  if (location.pathname === "/runs") loadRuns(); else connect();
  requestAnimationFrame(frame);
});
