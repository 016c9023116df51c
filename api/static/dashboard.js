// The arrayq dashboard: the tenant's recent jobs, live, and a form to submit one.
// Plain browser JavaScript, no build step. It only calls the public HTTP API.
"use strict";

(() => {
  const LIST_LIMIT = 50;
  const REFRESH_MS = 2000;
  // Browsers open about six connections per host; keep some free for the rest.
  const MAX_STREAMS = 3;
  const PREVIEW_VALUES = 8;
  const MAX_RANDOM_VALUES = 100000;
  const DEFAULT_INPUT_SHAPE = [3, 3];
  const FINAL = new Set(["succeeded", "failed", "cancelled"]);
  const KEY_STORAGE = "arrayq-api-key";

  const $ = (id) => document.getElementById(id);
  const state = {
    key: sessionStorage.getItem(KEY_STORAGE) || "",
    ops: new Map(),
    rows: new Map(), // job id -> {element, cells, job}
    streams: new Map(), // job id -> AbortController
    timer: null,
  };

  // ---- HTTP ----------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function authHeaders(extra = {}) {
    return state.key ? { ...extra, Authorization: `Bearer ${state.key}` } : { ...extra };
  }

  async function request(path, options = {}) {
    const response = await fetch(path, { ...options, headers: authHeaders(options.headers) });
    if (response.ok) return response;
    const body = await response.json().catch(() => null);
    if (response.status === 401) askForKey();
    const message = body && body.error ? body.error.message : response.statusText;
    throw new HttpError(response.status, message);
  }

  const getJson = async (path) => (await request(path)).json();

  // Server-sent events read through fetch, which (unlike EventSource) can send
  // the Authorization header.
  async function* readEvents(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const data = eventData(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (data) yield JSON.parse(data);
      }
    }
  }

  function eventData(block) {
    return block
      .split("\n")
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trimStart())
      .join("\n");
  }

  // ---- API key -------------------------------------------------------------

  function askForKey() {
    stop();
    $("key-form").hidden = false;
    $("forget-key").hidden = true;
    showConnection(state.key ? "That API key was refused." : "This server needs an API key.", true);
    $("api-key").focus();
  }

  function useKey(event) {
    event.preventDefault();
    state.key = $("api-key").value.trim();
    sessionStorage.setItem(KEY_STORAGE, state.key);
    $("api-key").value = "";
    $("key-form").hidden = true;
    start();
  }

  function forgetKey() {
    sessionStorage.removeItem(KEY_STORAGE);
    state.key = "";
    askForKey();
  }

  function showConnection(message, isError = false) {
    $("connection").textContent = message;
    $("connection").classList.toggle("error", isError);
  }

  // ---- the op form ---------------------------------------------------------

  function element(tag, properties = {}, ...children) {
    const node = Object.assign(document.createElement(tag), properties);
    node.append(...children);
    return node;
  }

  function secondaryButton(text) {
    return element("button", { type: "button", className: "secondary", textContent: text });
  }

  function showOps() {
    const select = $("op");
    const previous = select.value;
    select.replaceChildren(...[...state.ops.keys()].map((name) => new Option(name, name)));
    if (state.ops.has(previous)) select.value = previous;
    showOpForm();
  }

  function showOpForm() {
    const op = state.ops.get($("op").value);
    if (!op) return;
    $("op-summary").textContent = op.summary;
    const schema = op.params || {};
    const required = new Set(schema.required || []);
    const params = Object.entries(schema.properties || {}).map(([name, property]) =>
      paramField(name, property, required.has(name)),
    );
    fillFieldset($("params"), "Params", params);
    fillFieldset($("inputs"), "Inputs (ArrayJSON)", op.inputs.map(inputField));
  }

  function fillFieldset(fieldset, legend, fields) {
    fieldset.replaceChildren(element("legend", { textContent: legend }), ...fields);
    fieldset.classList.toggle("empty", fields.length === 0);
  }

  // A JSON-schema property reduced to one widget kind; `anyOf [T, null]` is an optional T.
  function describeParam(property) {
    const variants = property.anyOf || [property];
    const concrete = variants.filter((variant) => variant.type !== "null");
    const base = concrete.length === 1 ? concrete[0] : {};
    const kind = base.enum ? "enum" : base.type || "json";
    return { ...base, kind, nullable: concrete.length < variants.length };
  }

  function paramField(name, property, required) {
    const spec = describeParam(property);
    const control = paramControl(spec, property.default);
    control.name = name;
    control.dataset.kind = spec.kind;
    control.required = required && spec.kind !== "boolean";
    const hint = element("span", { className: "hint", textContent: paramHint(spec, required) });
    return element("label", {}, property.title || name, hint, control);
  }

  function paramHint(spec, required) {
    const itemType = (spec.items || {}).type || "values";
    const type = spec.kind === "array" ? `list of ${itemType}` : spec.kind;
    return required ? `${type}, required` : type;
  }

  function paramControl(spec, value) {
    if (spec.kind === "enum") {
      const choices = spec.nullable ? ["", ...spec.enum] : spec.enum;
      const select = element("select");
      select.append(...choices.map((choice) => new Option(choice || "(none)", choice)));
      select.value = value == null ? "" : String(value);
      return select;
    }
    if (spec.kind === "boolean") {
      return element("input", { type: "checkbox", checked: Boolean(value) });
    }
    const input = element("input", { type: "text", value: formatDefault(spec.kind, value) });
    if (spec.kind === "integer" || spec.kind === "number") {
      Object.assign(input, { type: "number", step: spec.kind === "integer" ? "1" : "any" });
      if (spec.minimum !== undefined) input.min = spec.minimum;
      if (spec.maximum !== undefined) input.max = spec.maximum;
    }
    const placeholders = { array: "e.g. 3, 4", json: "JSON" };
    input.placeholder = placeholders[spec.kind] || (spec.nullable ? "none" : "");
    return input;
  }

  function formatDefault(kind, value) {
    if (value == null) return "";
    if (kind === "array") return value.join(", ");
    return kind === "json" ? JSON.stringify(value) : String(value);
  }

  function inputField(name) {
    const area = element("textarea", { name, spellcheck: false, id: `input-${name}` });
    area.value = JSON.stringify(randomArray(DEFAULT_INPUT_SHAPE));
    const shape = element("input", { type: "text", value: DEFAULT_INPUT_SHAPE.join(", ") });
    shape.setAttribute("aria-label", `shape of a random ${name}`);
    const fill = secondaryButton("Random");
    fill.addEventListener("click", () => {
      try {
        area.value = JSON.stringify(randomArray(parseList(shape.value)));
      } catch (error) {
        showSubmitStatus(error.message, true);
      }
    });
    const label = element("label", { htmlFor: area.id, textContent: name });
    const helper = element("div", { className: "random-helper" }, "shape", shape, fill);
    return element("div", { className: "field" }, label, area, helper);
  }

  function randomArray(shape) {
    const valid = shape.every((size) => Number.isInteger(size) && size >= 0);
    const count = shape.reduce((product, size) => product * size, 1);
    if (!valid || count > MAX_RANDOM_VALUES) {
      throw new Error(`a random array needs a shape of at most ${MAX_RANDOM_VALUES} values`);
    }
    const build = (dims) =>
      dims.length === 0
        ? Math.round(Math.random() * 1e4) / 1e4
        : Array.from({ length: dims[0] }, () => build(dims.slice(1)));
    return { dtype: "float64", shape, data: build(shape) };
  }

  function readParams() {
    const params = {};
    for (const control of $("params").querySelectorAll("[name]")) {
      const value = readControl(control);
      if (value !== undefined) params[control.name] = value;
    }
    return params;
  }

  // Blank means "not given": the server applies the default.
  function readControl(control) {
    const kind = control.dataset.kind;
    if (kind === "boolean") return control.checked;
    const text = control.value.trim();
    if (text === "") return undefined;
    if (kind === "integer" || kind === "number") return Number(text);
    if (kind === "array") return parseList(text, control.name);
    if (kind === "json") return parseJson(text, control.name);
    return text;
  }

  function readInputs() {
    const inputs = {};
    for (const area of $("inputs").querySelectorAll("textarea")) {
      inputs[area.name] = parseJson(area.value, area.name);
    }
    return inputs;
  }

  function parseList(text, name = "shape") {
    if (text.trim().startsWith("[")) return parseJson(text, name);
    const items = text.split(/[\s,]+/).filter(Boolean);
    return items.map((item) => (Number.isNaN(Number(item)) ? item : Number(item)));
  }

  function parseJson(text, name) {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new Error(`${name}: not valid JSON (${error.message})`);
    }
  }

  async function submitJob(event) {
    event.preventDefault();
    const button = $("submit-job");
    button.disabled = true;
    try {
      const body = { op: $("op").value, params: readParams(), inputs: readInputs() };
      const response = await request("/jobs", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const job = await response.json();
      showSubmitStatus(`Submitted ${job.op} job ${job.id.slice(0, 8)}`, false, job.id);
      $("job-rows").prepend(upsertJob(job).element);
      $("no-jobs").hidden = true;
      followJobs();
    } catch (error) {
      showSubmitStatus(error.message, true);
    } finally {
      button.disabled = false;
    }
  }

  function showSubmitStatus(message, isError, jobId = "") {
    const status = $("submit-status");
    status.textContent = message;
    status.dataset.jobId = jobId;
    status.classList.toggle("error", isError);
  }

  // ---- the job table -------------------------------------------------------

  async function refreshJobs() {
    let page;
    try {
      page = await getJson(`/jobs?limit=${LIST_LIMIT}`);
    } catch (error) {
      if (error.status !== 401) showConnection(`Cannot list jobs: ${error.message}`, true);
      return;
    }
    showConnection("live");
    const listed = new Set(page.items.map((job) => job.id));
    for (const [id, row] of state.rows) {
      if (!listed.has(id)) removeRow(id, row);
    }
    for (const job of page.items) $("job-rows").append(upsertJob(job).element);
    $("no-jobs").hidden = page.items.length > 0;
    followJobs();
  }

  function removeRow(id, row) {
    row.element.remove();
    state.rows.delete(id);
    state.streams.get(id)?.abort();
  }

  function upsertJob(job) {
    let row = state.rows.get(job.id);
    if (!row) {
      row = createRow(job);
      state.rows.set(job.id, row);
    }
    const isStale = row.job && FINAL.has(row.job.status) && !FINAL.has(job.status);
    if (!isStale) updateRow(row, job);
    return row;
  }

  function createRow(job) {
    const tr = element("tr");
    tr.dataset.jobId = job.id;
    tr.dataset.op = job.op;
    const cells = {};
    for (const name of ["created", "op", "status", "progress", "result", "preview", "actions"]) {
      cells[name] = tr.insertCell();
      cells[name].className = name;
    }
    cells.created.textContent = formatTime(job.created_at);
    cells.created.title = job.created_at;
    const shortId = element("code", { textContent: job.id.slice(0, 8), title: job.id });
    cells.op.append(job.op, element("br"), shortId);
    const bar = element("progress", { max: 1, value: 0 });
    cells.progress.append(bar, element("span", { className: "percent" }));
    return { element: tr, cells, job: null };
  }

  function updateRow(row, job) {
    const changed = !row.job || row.job.status !== job.status;
    row.job = job;
    row.element.dataset.status = job.status;
    const [bar, percent] = row.cells.progress.children;
    bar.value = job.progress;
    percent.textContent = `${Math.round(job.progress * 100)}%`;
    if (changed) showStatus(row, job);
  }

  function showStatus(row, job) {
    const { cells } = row;
    const badge = element("span", { className: `badge ${job.status}`, textContent: job.status });
    cells.status.replaceChildren(badge);
    cells.actions.replaceChildren();
    if (!FINAL.has(job.status)) cells.actions.append(cancelButton(job));
    if (job.status === "failed" && job.error) {
      const text = `${job.error.type}: ${job.error.message}`;
      cells.result.replaceChildren(element("span", { className: "error-text", textContent: text }));
    }
    if (job.status === "succeeded" && job.result) {
      cells.result.replaceChildren(...describeJobResult(job.result));
      cells.actions.append(downloadLink(job));
      showPreviews(cells.preview, job);
    }
  }

  // A job of a multi-output op has `result.kind === "outputs"`, one entry per output.
  function arraysOf(job) {
    if (job.result.kind !== "outputs") {
      return [{ name: null, path: `/jobs/${job.id}/result`, info: job.result }];
    }
    return Object.entries(job.result.outputs).map(([name, info]) => ({
      name,
      path: `/jobs/${job.id}/outputs/${encodeURIComponent(name)}`,
      info,
    }));
  }

  function describeJobResult(result) {
    if (result.kind !== "outputs") return describeResult(result);
    const parts = [];
    for (const [name, info] of Object.entries(result.outputs)) {
      if (parts.length) parts.push(element("br"));
      const shape = info.shape.length ? info.shape.join(" × ") : "scalar";
      parts.push(element("code", { textContent: name }), " ", element("strong", { textContent: shape }), ` ${info.dtype}`);
    }
    parts.push(element("br"), formatBytes(result.nbytes));
    return parts;
  }

  function describeResult(result) {
    const shape = result.shape.length ? result.shape.join(" × ") : "scalar";
    const size = formatBytes(result.nbytes);
    return [element("strong", { textContent: shape }), ` ${result.dtype}`, element("br"), size];
  }

  function cancelButton(job) {
    const button = secondaryButton("Cancel");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await request(`/jobs/${job.id}`, { method: "DELETE" });
        upsertJob(await getJson(`/jobs/${job.id}`));
      } catch (error) {
        showConnection(`Cannot cancel: ${error.message}`, true);
        button.disabled = false;
      }
    });
    return button;
  }

  function downloadLink(job) {
    const multi = job.result.kind === "outputs";
    const format = multi ? "npz" : "npy";
    const link = element("a", {
      href: `/jobs/${job.id}/result?format=${format}`,
      download: `${job.id}.${format}`,
      textContent: `Download .${format}`,
    });
    // A plain link cannot carry the API key: download through a signed link
    // (one .npy), or fetch the .npz with the key and hand it over as a blob.
    link.addEventListener("click", async (event) => {
      if (!state.key) return;
      event.preventDefault();
      try {
        if (!multi) {
          window.location.assign((await getJson(`/jobs/${job.id}/result/url`)).url);
          return;
        }
        const blob = await (await request(link.getAttribute("href"))).blob();
        const saved = element("a", { href: URL.createObjectURL(blob), download: link.download });
        saved.click();
        setTimeout(() => URL.revokeObjectURL(saved.href), 10_000);
      } catch (error) {
        showConnection(`Cannot download: ${error.message}`, true);
      }
    });
    return link;
  }

  async function showPreviews(cell, job) {
    const arrays = arraysOf(job);
    const figures = arrays.map(({ name }) => {
      const figure = element("figure", { className: "output" });
      if (name !== null) figure.dataset.output = name;
      return figure;
    });
    cell.replaceChildren(...figures);
    await Promise.all(arrays.map((array, index) => showPreview(figures[index], array, job.op)));
  }

  async function showPreview(figure, { name, path, info }, op) {
    const preview = element("div");
    figure.replaceChildren(preview);
    if (name !== null) figure.append(element("figcaption", { textContent: name }));
    try {
      const formats = info.formats;
      if (formats.includes("png")) await showImage(preview, `${path}?format=png`, name || `${op} result`);
      else if (formats.includes("json")) await showValues(preview, `${path}?format=json`);
      else preview.textContent = "too large to preview";
    } catch (error) {
      preview.textContent = `no preview: ${error.message}`;
    }
  }

  async function showImage(cell, url, label) {
    const image = element("img", { alt: label });
    cell.replaceChildren(image);
    if (!state.key) {
      image.src = url;
      return;
    }
    image.src = URL.createObjectURL(await (await request(url)).blob());
    image.addEventListener("load", () => URL.revokeObjectURL(image.src), { once: true });
  }

  async function showValues(cell, url) {
    const array = await getJson(url);
    const values = [array.data].flat(array.shape.length);
    const shown = values.slice(0, PREVIEW_VALUES).map(formatValue);
    if (values.length > PREVIEW_VALUES) shown.push("…");
    cell.replaceChildren(element("code", { textContent: `[${shown.join(", ")}]` }));
  }

  function formatValue(value) {
    if (Array.isArray(value)) {
      const [real, imaginary] = value.map(formatValue);
      return imaginary.startsWith("-") ? `${real}${imaginary}j` : `${real}+${imaginary}j`;
    }
    if (typeof value === "number" && !Number.isInteger(value)) {
      return String(Number(value.toPrecision(5)));
    }
    return String(value);
  }

  function formatBytes(bytes) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let size = bytes;
    let unit = 0;
    while (size >= 1000 && unit < units.length - 1) {
      size /= 1000;
      unit += 1;
    }
    return `${unit === 0 ? size : size.toFixed(1)} ${units[unit]}`;
  }

  function formatTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    const today = date.toDateString() === new Date().toDateString();
    return today ? date.toLocaleTimeString() : date.toLocaleString();
  }

  // ---- live updates --------------------------------------------------------

  // Stream the events of the newest unfinished jobs; the periodic list refresh
  // covers the others and picks up jobs submitted elsewhere.
  function followJobs() {
    for (const tr of $("job-rows").rows) {
      if (state.streams.size >= MAX_STREAMS) return;
      const row = state.rows.get(tr.dataset.jobId);
      if (row && !FINAL.has(row.job.status) && !state.streams.has(row.job.id)) follow(row.job.id);
    }
  }

  async function follow(id) {
    const controller = new AbortController();
    state.streams.set(id, controller);
    let ended = false;
    try {
      const response = await request(`/jobs/${id}/events`, {
        signal: controller.signal,
        headers: { Accept: "text/event-stream" },
      });
      for await (const job of readEvents(response.body)) upsertJob(job);
      ended = true;
    } catch (error) {
      if (error.name !== "AbortError") console.warn(`events of job ${id}: ${error.message}`);
    } finally {
      if (state.streams.get(id) === controller) state.streams.delete(id);
    }
    if (ended) followJobs();
  }

  // ---- start and stop ------------------------------------------------------

  function stop() {
    clearInterval(state.timer);
    state.timer = null;
    for (const [id, row] of state.rows) removeRow(id, row);
  }

  async function start() {
    try {
      const ops = await getJson("/ops");
      state.ops = new Map(ops.map((op) => [op.name, op]));
    } catch (error) {
      if (error.status !== 401) showConnection(`Cannot load the ops: ${error.message}`, true);
      return;
    }
    $("forget-key").hidden = !state.key;
    showOps();
    await refreshJobs();
    state.timer = setInterval(refreshJobs, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("key-form").addEventListener("submit", useKey);
    $("forget-key").addEventListener("click", forgetKey);
    $("op").addEventListener("change", showOpForm);
    $("job-form").addEventListener("submit", submitJob);
    start();
  });
})();
