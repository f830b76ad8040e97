// The hume-action playground: start a job as the action does, watch the caller's jobs, and see
// one job's summary and predictions as pictures.
//
// Rules this file keeps:
// - Nothing from a job (file names, transcripts, URLs, error messages) is inserted as HTML: every
//   node is made with createElement and filled with textContent; only http(s) URLs become links
//   or media sources.
// - The server token and the Hume key live in sessionStorage only, are sent only to this server,
//   and never appear in the JSON or curl shown for copying (they are written as variables there).
// - The job list is polled with a backoff that resets when something changes and pauses while the
//   tab is hidden; an open job that has not ended is watched with the summary's `wait`, which the
//   server holds until the job ends (no polling loop).
'use strict';

(() => {
  const KEYS = { token: 'hume-action.token', humeKey: 'hume-action.hume-key' };
  const MODEL_FIELDS = ['models_face', 'models_prosody', 'models_language'];
  const LIST_LIMIT = 50;
  // Okabe-Ito and Tol colours: told apart with red-green colour blindness; every expression is
  // also named wherever its colour is used.
  const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#999933'];
  const OTHER = '#8a8a8a';
  const DASHES = [[], [6, 3], [2, 3], [8, 3, 2, 3], [4, 4], [1, 2], [10, 4]];

  const $ = (id) => document.getElementById(id);

  /** An element: `props` sets class, text and attributes; children are nodes or strings (as text). */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = String(value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** `url` when it is an absolute http(s) URL, else null. */
  function safeUrl(url) {
    try {
      const parsed = new URL(String(url));
      return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
    } catch {
      return null;
    }
  }

  const fmtTime = (secs) => {
    if (secs === null || secs === undefined || !Number.isFinite(secs)) return '';
    const s = Math.max(0, Math.floor(secs));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  };
  /** An axis tick: `m:ss`, or `m:ss.s` when the ticks are less than a second apart. */
  const fmtTick = (secs, step) => {
    if (!(step < 1)) return fmtTime(secs);
    const s = Math.max(0, secs);
    return `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, '0')}`;
  };
  const fmtScore = (score) => (Number.isFinite(score) ? score.toFixed(2) : '–');
  const shellQuote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

  // ---------------------------------------------------------------- keys and the API

  const session = {
    get token() { return sessionStorage.getItem(KEYS.token) || ''; },
    get humeKey() { return sessionStorage.getItem(KEYS.humeKey) || ''; },
    save(token, humeKey) {
      for (const [key, value] of [[KEYS.token, token], [KEYS.humeKey, humeKey]]) {
        if (value) sessionStorage.setItem(key, value);
        else sessionStorage.removeItem(key);
      }
    },
  };

  class ApiFailure extends Error {
    constructor(status, code, message, field) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field;
    }
  }

  function authHeaders() {
    const headers = {};
    if (session.token) headers.Authorization = `Bearer ${session.token}`;
    if (session.humeKey) headers['X-Hume-Api-Key'] = session.humeKey;
    return headers;
  }

  /** Calls this server; answers the parsed JSON (or the Response with `raw`), throws ApiFailure. */
  async function api(path, { method = 'GET', body, json, raw, signal } = {}) {
    const headers = authHeaders();
    let payload = body;
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body: payload, signal, cache: 'no-store' });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiFailure(0, 'unreachable', 'The server did not answer; is it running?');
    }
    if (!response.ok) {
      let error = {};
      try { error = (await response.json()).error || {}; } catch { /* not JSON */ }
      const failure = new ApiFailure(response.status, error.code || `http_${response.status}`,
        error.message || `The server answered ${response.status}.`, error.field);
      if (response.status === 401) showSignIn(failure.message);
      throw failure;
    }
    return raw ? response : response.json();
  }

  // ---------------------------------------------------------------- sign-in

  let signedIn = false;

  function showSignIn(reason) {
    signedIn = false;
    $('signin').hidden = false;
    $('workspace').hidden = true;
    // A sentence for a person, not the API's error: what to type, and whether a typed one failed.
    $('signin-reason').textContent = !reason
      ? 'Set the keys this page sends to the server.'
      : session.token
        ? 'The server did not accept this token. Check it and try again.'
        : 'This server asks for its access token (the HUME_ACTION_TOKEN it was started with).';
    $('signin-cancel').hidden = !reason ? false : true;
    $('token').value = session.token;
    $('hume-key').value = session.humeKey;
    $('token').focus();
    updateSessionState();
  }

  function updateSessionState() {
    const parts = [];
    if (session.token) parts.push('token set');
    if (session.humeKey) parts.push('Hume key set');
    $('session-state').textContent = parts.join(', ');
    $('sign-out').hidden = parts.length === 0;
  }

  async function signIn(event) {
    event.preventDefault();
    session.save($('token').value.trim(), $('hume-key').value.trim());
    $('signin-error').hidden = true;
    try {
      await boot();
    } catch (e) {
      if (e instanceof ApiFailure && e.status !== 401) {
        $('signin-error').textContent = e.message;
        $('signin-error').hidden = false;
      }
    }
  }

  // ---------------------------------------------------------------- the start form

  let manifest = null;
  const chosenFiles = [];
  /** Files this tab uploaded, by job id then file name, to play them back. */
  const uploads = new Map();

  function actionOf(m) {
    return (m.actions || []).find((a) => a.key === 'hume-expression-measurement') || { fields: [] };
  }

  function buildToggles() {
    const box = $('models');
    box.replaceChildren(el('legend', { text: 'Models' }));
    const fields = actionOf(manifest).fields.filter((f) => MODEL_FIELDS.includes(f.key));
    for (const field of fields) {
      const id = `toggle-${field.key}`;
      const help = `${id}-help`;
      box.append(el('div', { class: 'toggle' },
        el('input', { type: 'checkbox', id, name: field.key, 'aria-describedby': help,
          checked: String(field.default).toLowerCase() === 'yes', onchange: showRequest }),
        el('label', { for: id, text: field.label || field.key }),
        el('small', { id: help, class: 'help', text: field.help || '' })));
    }
  }

  function addFiles(list) {
    for (const file of list) chosenFiles.push(file);
    renderChosen();
  }

  function renderChosen() {
    const ul = $('chosen');
    ul.replaceChildren(...chosenFiles.map((file, i) => el('li', {},
      el('span', { class: 'name', text: file.name }),
      el('span', { class: 'size', text: ` ${(file.size / 1024).toFixed(1)} KB ` }),
      el('button', { type: 'button', class: 'quiet', 'aria-label': `Remove ${file.name}`, text: 'Remove',
        onclick: () => { chosenFiles.splice(i, 1); renderChosen(); } }))));
    showRequest();
  }

  /** What the form asks for: the route, its JSON and the files. */
  function formRequest() {
    const urls = $('urls').value.split('\n').map((u) => u.trim()).filter(Boolean);
    const text = $('text').value.trim();
    const toggles = {};
    for (const key of MODEL_FIELDS) {
      const box = $(`toggle-${key}`);
      if (box) toggles[key] = box.checked ? 'Yes' : 'No';
    }
    if (chosenFiles.length === 0 && !text) {
      return { route: '/v1/actions/hume-expression-measurement', kind: 'action', urls, toggles,
        json: { urls, ...toggles } };
    }
    // The action takes URLs only; files and text go to the v0 route, with the models the action
    // would choose for the same toggles, and faces tracked across a video's frames (so the page
    // can draw one row per face).
    const models = {};
    if (toggles.models_face === 'Yes') models.face = { identify_faces: true };
    if (toggles.models_prosody === 'Yes') models.prosody = {};
    if (toggles.models_language === 'Yes') models.language = { granularity: 'utterance' };
    const json = { models };
    if (urls.length) json.urls = urls;
    if (text) json.text = [text];
    return { route: '/v0/batch/jobs', kind: chosenFiles.length ? 'multipart' : 'v0', urls, toggles, json,
      files: chosenFiles.slice() };
  }

  function curlOf(req) {
    const base = window.location.origin;
    const lines = [`curl -s ${shellQuote(base + req.route)}`];
    if (session.token) lines.push(`-H "Authorization: Bearer $HUME_ACTION_TOKEN"`);
    if (session.humeKey) lines.push(`-H "X-Hume-Api-Key: $HUME_API_KEY"`);
    if (req.kind === 'multipart') {
      lines.push(`-F ${shellQuote(`json=${JSON.stringify(req.json)}`)}`);
      for (const file of req.files) lines.push(`-F ${shellQuote(`file=@${file.name}`)}`);
    } else {
      lines.push(`-H 'content-type: application/json'`);
      lines.push(`-d ${shellQuote(JSON.stringify(req.json))}`);
    }
    return lines.join(' \\\n  ');
  }

  function showRequest() {
    const req = formRequest();
    $('request-route').textContent = req.kind === 'action'
      ? `POST ${req.route}: the action, as a workflow step sends it.`
      : `POST ${req.route}${req.kind === 'multipart' ? ' (multipart: a json part and one file part per file)' : ''}: `
        + 'the action takes URLs only, so files and text go to the v0 batch route with the same models.';
    $('request-json').textContent = JSON.stringify(req.json, null, 2);
    $('request-curl').textContent = curlOf(req);
  }

  function problemOf(req) {
    if (!req.urls.length && !req.files?.length && !req.json.text) return 'Add a URL, a file or some text first.';
    if (!Object.values(req.toggles).includes('Yes')) {
      return 'All three models are set to No: switch at least one on.';
    }
    return null;
  }

  async function startJob(event) {
    event.preventDefault();
    const status = $('start-status');
    const req = formRequest();
    const problem = problemOf(req);
    if (problem) {
      status.textContent = problem;
      status.className = 'error';
      return;
    }
    status.className = '';
    status.textContent = 'Starting…';
    $('start-submit').disabled = true;
    try {
      let answer;
      if (req.kind === 'multipart') {
        const form = new FormData();
        form.append('json', JSON.stringify(req.json));
        for (const file of req.files) form.append('file', file, file.name);
        answer = await api(req.route, { method: 'POST', body: form });
      } else {
        answer = await api(req.route, { method: 'POST', json: req.json });
      }
      if (req.files?.length) uploads.set(answer.job_id, new Map(req.files.map((f) => [f.name, f])));
      status.textContent = `Started job ${answer.job_id}.`;
      chosenFiles.length = 0;
      renderChosen();
      jobs.refreshSoon();
      openJob(answer.job_id, true);
    } catch (e) {
      if (!(e instanceof ApiFailure)) throw e;
      status.className = 'error';
      status.textContent = e.field ? `${e.field}: ${e.message}` : e.message;
    } finally {
      $('start-submit').disabled = false;
    }
  }

  // ---------------------------------------------------------------- the job list

  const jobs = {
    timer: null,
    delay: 2000,
    last: '',
    progress: new Map(),

    refreshSoon() {
      this.delay = 1000;
      this.schedule(0);
    },

    schedule(ms) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.refresh(), ms);
    },

    async refresh() {
      if (!signedIn) return;
      if (document.hidden) return; // visibilitychange starts it again
      let list;
      try {
        list = await api(`/v0/batch/jobs?limit=${LIST_LIMIT}`);
      } catch (e) {
        if (!(e instanceof ApiFailure)) throw e;
        $('jobs-state').textContent = e.status === 401 ? '' : `The list could not be read: ${e.message}`;
        this.delay = Math.min(this.delay * 2, 30000);
        if (e.status !== 401) this.schedule(this.delay);
        return;
      }
      const active = list.filter((j) => !isDone(j.state?.status)).slice(0, 5);
      await Promise.all(active.map(async (j) => {
        try {
          const s = await api(`/v1/jobs/${encodeURIComponent(j.job_id)}/summary`);
          this.progress.set(j.job_id, s.progress);
        } catch { /* the list still shows the status */ }
      }));
      const shape = JSON.stringify(list.map((j) => [j.job_id, j.state?.status, this.progress.get(j.job_id)]));
      if (shape !== this.last) {
        this.last = shape;
        this.delay = 2000;
        renderJobs(list, this.progress);
      } else {
        this.delay = Math.min(this.delay * 1.6, active.length ? 10000 : 30000);
      }
      this.schedule(this.delay);
    },
  };

  const isDone = (status) => status === 'COMPLETED' || status === 'FAILED';

  function jobLabel(job) {
    const r = job.request || {};
    const files = r.files || [];
    const first = (r.urls || [])[0] || files[0]?.filename || files[0]?.name
      || ((r.text || [])[0] !== undefined ? `“${String(r.text[0]).slice(0, 40)}”` : job.job_id);
    const count = (r.urls || []).length + (r.text || []).length + files.length;
    return count > 1 ? `${first} +${count - 1}` : String(first);
  }

  function renderJobs(list, progress) {
    $('jobs-state').textContent = list.length ? '' : 'No jobs yet for these keys.';
    const current = new URLSearchParams(window.location.search).get('job');
    $('job-list').replaceChildren(...list.map((job) => {
      const status = job.state?.status || 'UNKNOWN';
      const p = progress.get(job.job_id);
      const created = job.state?.created_timestamp_ms ? new Date(job.state.created_timestamp_ms) : null;
      const link = el('a', { href: `/?job=${encodeURIComponent(job.job_id)}`, class: 'job-link',
        'aria-current': job.job_id === current ? 'page' : null,
        onclick: (e) => { e.preventDefault(); openJob(job.job_id, true); } },
      el('span', { class: 'job-name', text: jobLabel(job) }),
      el('span', { class: `badge ${status.toLowerCase()}`, text: status.replace('_', ' ').toLowerCase() }));
      const meta = el('div', { class: 'job-meta' },
        created ? el('time', { datetime: created.toISOString(), text: created.toLocaleString() }) : null);
      if (!isDone(status) && p) {
        meta.append(el('span', { text: ` · ${p.stage} ${p.sources_done}/${p.sources_total}` }),
          el('progress', { max: Math.max(1, p.sources_total), value: p.sources_done,
            'aria-label': `Sources done of ${job.job_id}` }));
      } else if (status === 'COMPLETED') {
        meta.append(el('span', { text: ` · ${job.state.num_predictions ?? 0} predictions, ${job.state.num_errors ?? 0} errors` }));
      }
      return el('li', { 'data-job': job.job_id }, link, meta);
    }));
  }

  // ---------------------------------------------------------------- one job

  let viewing = null; // { id, abort }

  function openJob(id, push) {
    if (push) {
      const url = `/?job=${encodeURIComponent(id)}`;
      if (window.location.pathname + window.location.search !== url) history.pushState({ job: id }, '', url);
    }
    for (const a of document.querySelectorAll('.job-link')) {
      a.toggleAttribute('aria-current', a.closest('li')?.dataset.job === id);
    }
    if (viewing) viewing.abort.abort();
    viewing = { id, abort: new AbortController() };
    watch(viewing);
  }

  function closeJob() {
    if (viewing) viewing.abort.abort();
    viewing = null;
    $('workspace').classList.remove('has-job');
    $('view-job').hidden = true;
    $('view-empty').hidden = false;
  }

  async function watch(v) {
    const box = $('view-job');
    $('workspace').classList.add('has-job');
    $('view-empty').hidden = true;
    box.hidden = false;
    box.replaceChildren(el('div', { class: 'card' }, el('h2', { text: `Job ${v.id}` }), el('p', { text: 'Loading…' })));
    let wait = 0;
    for (;;) {
      let summary;
      try {
        summary = await api(`/v1/jobs/${encodeURIComponent(v.id)}/summary?wait=${wait}`, { signal: v.abort.signal });
      } catch (e) {
        if (e.name === 'AbortError' || v.abort.signal.aborted) return;
        if (e instanceof ApiFailure && e.status === 401) return;
        box.replaceChildren(el('div', { class: 'card' }, el('h2', { text: `Job ${v.id}` }),
          el('p', { class: 'error', role: 'alert', text: e.message })));
        if (e instanceof ApiFailure && e.status >= 400 && e.status < 500) return;
        await new Promise((r) => setTimeout(r, 5000));
        continue;
      }
      if (v.abort.signal.aborted) return;
      if (!summary.done) {
        renderPending(box, summary);
        wait = 25;
        continue;
      }
      let predictions = [];
      try {
        predictions = await api(`/v0/batch/jobs/${encodeURIComponent(v.id)}/predictions`, { signal: v.abort.signal });
      } catch (e) {
        if (e.name === 'AbortError') return;
      }
      if (v.abort.signal.aborted) return;
      renderJob(box, summary, predictions);
      jobs.refreshSoon();
      return;
    }
  }

  function renderPending(box, s) {
    const p = s.progress || {};
    box.replaceChildren(el('div', { class: 'card' },
      el('h2', { text: `Job ${s.job_id}` }),
      el('p', { class: 'headline', text: s.headline || 'Working…' }),
      el('p', {}, el('span', { class: `badge ${String(s.status).toLowerCase()}`, text: String(s.status).toLowerCase() }),
        ` ${p.stage || ''}: ${p.sources_done ?? 0} of ${p.sources_total ?? 0} sources done`),
      el('progress', { max: Math.max(1, p.sources_total || 1), value: p.sources_done || 0, 'aria-label': 'Sources done' })));
  }

  /** The colours of a job's expressions: its top ones first, others as they appear. */
  function colourMap(summary) {
    const map = new Map();
    const add = (name) => {
      if (!map.has(name) && map.size < PALETTE.length) map.set(name, PALETTE[map.size]);
    };
    for (const e of summary.top_emotions || []) add(e.name);
    for (const f of summary.files || []) {
      for (const m of Object.values(f.models || {})) for (const e of m.top_emotions || []) add(e.name);
    }
    return { of: (name) => map.get(name) || OTHER, index: (name) => [...map.keys()].indexOf(name) };
  }

  function tint(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }

  function renderJob(box, summary, predictions) {
    const colours = colourMap(summary);
    const flat = [];
    for (const source of Array.isArray(predictions) ? predictions : []) {
      for (const p of source.results?.predictions || []) flat.push({ source: source.source, prediction: p });
    }
    const id = summary.job_id;
    const here = summary.view_url || `${window.location.origin}/?job=${encodeURIComponent(id)}`;

    const head = el('div', { class: 'card job-head' },
      el('div', { class: 'job-title' },
        el('h2', { text: `Job ${id}` }),
        el('span', { class: `badge ${summary.status.toLowerCase()}`, text: summary.status.toLowerCase() })),
      el('p', { class: 'headline', id: 'headline', text: summary.headline }),
      verdict(summary.escalation),
      summary.message ? el('p', { class: 'error', text: summary.message }) : null,
      el('div', { class: 'links' },
        download(`/v0/batch/jobs/${encodeURIComponent(id)}/predictions`, `predictions-${id}.json`, 'Predictions JSON'),
        download(`/v0/batch/jobs/${encodeURIComponent(id)}/artifacts`, `artifacts-${id}.zip`, 'Artifacts zip'),
        el('button', { type: 'button', class: 'quiet', text: 'Copy link to this view',
          onclick: (e) => copyText(here, e.currentTarget) })));
    const parts = [head];

    if ((summary.top_emotions || []).length) parts.push(topBars(summary.top_emotions, colours));

    // Files in request order; a source that failed before any file was measured still gets a card.
    const seen = new Set();
    (summary.files || []).forEach((file, i) => {
      seen.add(file.file);
      const match = flat[i] && flat[i].prediction.file === file.file ? flat[i] : flat.find((f) => f.prediction.file === file.file);
      const sharing = (summary.files || []).filter((f) => JSON.stringify(f.source) === JSON.stringify(file.source)).length;
      const card = fileCard(id, file, match?.prediction, summary.errors || [], colours, sharing > 1,
        summary.files.length > 1);
      parts.push(card);
    });
    for (const error of summary.errors || []) {
      if (seen.has(error.file)) continue;
      seen.add(error.file);
      parts.push(el('article', { class: 'card file', 'aria-label': `File ${error.file}` },
        el('h3', { class: 'file-name', text: error.file }), errorList(summary.errors, error.file)));
    }
    box.replaceChildren(...parts);
  }

  function verdict(escalation) {
    if (!escalation) return el('p', { class: 'verdict none', text: 'Escalation: nothing was measured.' });
    const peak = escalation.peak || {};
    const where = [peak.at ? `at ${peak.at}` : null, peak.file ? `in ${peak.file}` : null].filter(Boolean).join(' ');
    return el('p', { class: `verdict ${escalation.detected ? 'detected' : 'calm'}`, id: 'verdict' },
      el('strong', { text: escalation.detected ? '▲ Escalation detected' : '● No escalation' }),
      ` (${escalation.model}): escalation score ${fmtScore(escalation.score_start)} → ${fmtScore(escalation.score_end)}`
        + ` (${escalation.change >= 0 ? '+' : ''}${fmtScore(escalation.change)}); peak ${fmtScore(peak.score)} ${where}`,
      peak.text ? el('q', { text: peak.text }) : null);
  }

  /** A link that downloads with the session's keys (a plain link could not carry them). */
  function download(path, name, label) {
    return el('a', { href: path, class: 'button', download: name,
      onclick: async (e) => {
        e.preventDefault();
        const link = e.currentTarget;
        try {
          const response = await api(path, { raw: true });
          const blob = await response.blob();
          const url = URL.createObjectURL(blob);
          const a = el('a', { href: url, download: name });
          document.body.append(a);
          a.click();
          a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 10000);
        } catch (err) {
          if (err instanceof ApiFailure) link.after(el('span', { class: 'error', role: 'alert', text: ` ${err.message}` }));
        }
      } }, label);
  }

  async function copyText(text, button) {
    if (!button.dataset.label) button.dataset.label = button.textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Copy failed: select the text instead';
    }
    setTimeout(() => { button.textContent = button.dataset.label; }, 1500);
  }

  function errorList(errors, file) {
    const own = errors.filter((e) => e.file === file);
    if (!own.length) return null;
    return el('ul', { class: 'errors', 'aria-label': `Errors of ${file}` },
      ...own.map((e) => el('li', {}, el('strong', { text: 'Error: ' }), e.message)));
  }

  // ---------------------------------------------------------------- charts

  function chartWidth(container) {
    return Math.max(260, Math.floor((container.clientWidth || container.parentElement?.clientWidth || 600) - 8));
  }

  const NARROW = 640;

  /** Mounts a uPlot chart once its container is in the page, and keeps it as wide as the card
   *  (made again when it crosses NARROW, where its options change). */
  function mountChart(container, makeOptions, data) {
    requestAnimationFrame(() => {
      container.uplot = new uPlot(makeOptions(chartWidth(container)), data, container);
      new ResizeObserver(() => {
        const w = chartWidth(container);
        const plot = container.uplot;
        if (Math.abs(w - plot.width) <= 4) return;
        if ((w < NARROW) === (plot.width < NARROW)) {
          plot.setSize({ width: w, height: plot.height });
        } else {
          plot.destroy();
          container.uplot = new uPlot(makeOptions(w), data, container);
        }
      }).observe(container);
      container.dataset.drawn = 'true';
    });
  }

  function topBars(top, colours) {
    const names = top.map((e) => e.name);
    const figure = el('figure', { class: 'card bars', id: 'top-bars' },
      el('h3', { text: 'Top expressions of the job' }));
    const chart = el('div', { class: 'chart', role: 'img',
      'aria-label': `Bar chart: ${top.map((e) => `${e.name} ${fmtScore(e.score)}`).join(', ')}` });
    figure.append(chart, el('figcaption', {},
      el('ol', { class: 'legend' }, ...top.map((e) => el('li', {},
        swatch(colours.of(e.name)), el('span', { text: `${e.name} ${fmtScore(e.score)}` }))))));
    const xs = names.map((_, i) => i);
    mountChart(chart, (width) => ({
      width, height: width < NARROW ? 230 : 180, legend: { show: false }, cursor: { show: false },
      padding: [8, width < NARROW ? 56 : 8, 0, 0],
      scales: { x: { time: false, range: [-0.5, names.length - 0.5] }, y: { range: [0, Math.max(...top.map((e) => e.score)) * 1.15 || 1] } },
      axes: [
        { splits: () => xs, values: (u, splits) => splits.map((i) => names[i] ?? ''), grid: { show: false },
          // Names side by side need room: a narrow card slants them.
          rotate: width < NARROW ? -35 : 0, size: width < NARROW ? 90 : 50 },
        { size: 44 },
      ],
      series: [{}, { label: 'score', fill: tint(PALETTE[0], 0.75), stroke: PALETTE[0],
        paths: uPlot.paths.bars({ size: [0.6, 80] }), points: { show: false } }],
    }), [xs, top.map((e) => e.score)]);
    return figure;
  }

  function swatch(colour) {
    const s = el('span', { class: 'swatch', 'aria-hidden': 'true' });
    s.style.backgroundColor = colour;
    return s;
  }

  /** A model's segments from the predictions: `{x, end, group, text, emotions}`, in order. */
  function segmentsOf(prediction, model, unit) {
    const out = [];
    const groups = prediction?.models?.[model]?.grouped_predictions || [];
    for (const group of groups) {
      for (const p of group.predictions || []) {
        let x;
        let end;
        if (model === 'face') {
          x = p.time;
          end = p.time;
        } else if (unit === 'characters' || !p.time) {
          x = p.position?.begin ?? 0;
          end = p.position?.end ?? x;
        } else {
          x = p.time.begin;
          end = p.time.end;
        }
        if (!Number.isFinite(x)) continue;
        out.push({ x, end, group: group.id, text: p.text, emotions: p.emotions || [], box: p.box, prob: p.prob });
      }
    }
    return out.sort((a, b) => a.x - b.x);
  }

  const topOf = (emotions) => emotions.reduce((best, e) => (!best || e.score > best.score ? e : best), null);

  function timelineChart(fileName, model, summary, segments, colours) {
    const names = (summary.top_emotions || []).slice(0, 3).map((e) => e.name);
    const unitLabel = summary.unit === 'characters' ? 'characters' : 'seconds';
    // Each emotion's mean over the segments that start at one x (faces: every face in a frame).
    const byX = new Map();
    for (const s of segments) {
      const at = byX.get(s.x) || [];
      at.push(s);
      byX.set(s.x, at);
    }
    const windows = summary.timeline || [];
    const xs = [...new Set([...byX.keys(), ...windows.map((w) => (w.begin + w.end) / 2)])].sort((a, b) => a - b);
    const value = (name, x) => {
      const at = byX.get(x);
      if (!at) return null;
      let sum = 0;
      for (const s of at) sum += s.emotions.find((e) => e.name === name)?.score ?? 0;
      return sum / at.length;
    };
    const escByX = new Map(windows.map((w) => [(w.begin + w.end) / 2, w.escalation_score]));
    const esc = summary.escalation;
    let peakX = esc?.peak?.time ?? null;
    if (peakX === null && windows.length) {
      const best = windows.reduce((b, w) => (w.escalation_score > b.escalation_score ? w : b));
      peakX = (best.begin + best.end) / 2;
    }
    if (peakX !== null && !xs.includes(peakX)) {
      xs.push(peakX);
      xs.sort((a, b) => a - b);
    }
    const data = [xs, ...names.map((n) => xs.map((x) => value(n, x))), xs.map((x) => escByX.get(x) ?? null),
      xs.map((x) => (x === peakX ? (esc?.peak?.score ?? escByX.get(x) ?? null) : null))];
    const points = data.slice(1, 1 + names.length).reduce((n, ys) => n + ys.filter((y) => y !== null).length, 0);

    const caption = [
      `${model}: ${names.join(', ') || 'no expression'} over time (${unitLabel})`,
      esc ? `; escalation score peaks at ${fmtScore(esc.peak?.score)}${esc.peak?.at ? ` at ${esc.peak.at}` : ''}` : '',
    ].join('');
    const chart = el('div', { class: 'chart timeline', role: 'img', 'aria-label': caption,
      'data-model': model, 'data-points': points, 'data-colours': names.map((n) => colours.of(n)).join(' ') });
    const figure = el('figure', { class: 'timeline-figure' },
      el('h4', { text: `${model} · top expressions over time` }), chart,
      el('figcaption', { class: 'hint', text: summary.note ? `${caption}. ${summary.note}` : `${caption}.` }));
    const single = xs.length < 2;
    mountChart(chart, (width) => ({
      width, height: 220,
      scales: { x: { time: false, range: (u, min, max) => (single || min === max ? [min - 1, max + 1] : [min, max]) },
        y: { range: [0, 1] } },
      legend: { live: false },
      axes: [{ label: unitLabel, values: (u, splits) => splits.map((v) => (unitLabel === 'seconds'
        ? fmtTick(v, splits.length > 1 ? splits[1] - splits[0] : 1) : String(Math.round(v)))) },
        { size: 40 }],
      series: [
        { label: unitLabel === 'seconds' ? 'time' : 'character', value: (u, v) => (v === null || v === undefined ? '' : unitLabel === 'seconds' ? fmtTime(v) : String(Math.round(v))) },
        ...names.map((n, i) => ({ label: n, stroke: colours.of(n), width: 2, dash: DASHES[i % DASHES.length], spanGaps: true,
          points: { show: single || segments.length < 30, size: 6, fill: colours.of(n) }, value: (u, v) => fmtScore(v) })),
        { label: 'escalation score', stroke: '#111', width: 1.5, dash: [5, 4], spanGaps: true, points: { show: false }, value: (u, v) => fmtScore(v) },
        { label: 'escalation peak', stroke: '#111', fill: '#111', width: 0, paths: () => null,
          points: { show: true, size: 12, fill: '#111', stroke: '#fff', width: 2 }, value: (u, v) => fmtScore(v) },
      ],
    }), data);
    return figure;
  }

  // ---------------------------------------------------------------- one file

  function mediaSource(jobId, file, inArchive) {
    if (inArchive) return null;
    if (file.source?.type === 'url') return safeUrl(file.source.url);
    if (file.source?.type === 'file') {
      const f = uploads.get(jobId)?.get(file.source.filename ?? file.file);
      return f ? URL.createObjectURL(f) : null;
    }
    return null;
  }

  function fileCard(jobId, file, prediction, errors, colours, inArchive, ofSeveral) {
    const card = el('article', { class: 'card file', 'aria-label': `File ${file.file}`, 'data-file-type': file.file_type });
    const facts = [file.file_type, file.duration_secs ? fmtTime(file.duration_secs) : null].filter(Boolean).join(' · ');
    card.append(el('h3', { class: 'file-name', text: file.file }), el('p', { class: 'hint', text: facts }));
    const errs = errorList(errors, file.file);
    if (errs) card.append(errs);
    if (file.escalation && ofSeveral) card.append(verdict(file.escalation)); // one file: the job's verdict is its own

    const src = (file.file_type === 'audio' || file.file_type === 'video' || file.file_type === 'image')
      ? mediaSource(jobId, file, inArchive) : null;
    let media = null;
    if (src && (file.file_type === 'audio' || file.file_type === 'video')) {
      media = el(file.file_type, { controls: true, preload: 'metadata', class: 'player', src });
      card.append(media);
    } else if (file.file_type === 'audio' || file.file_type === 'video') {
      card.append(el('p', { class: 'hint', text: file.source?.type === 'file'
        ? 'The uploaded file is not in this browser tab, so it cannot be played here.' : 'This file cannot be played here.' }));
    }

    for (const [model, summary] of Object.entries(file.models || {})) {
      const segments = segmentsOf(prediction, model, summary.unit);
      if (model === 'face' && file.file_type === 'image') {
        card.append(faceBoxes(file, summary, src, colours));
      } else if (summary.segments > 0) {
        card.append(timelineChart(file.file, model, summary, segments, colours));
        if (model === 'face') card.append(faceRows(summary, segments, file.duration_secs, media, colours));
      } else {
        card.append(el('p', { class: 'hint', text: `${model}: ${summary.note || 'nothing found'}` }));
      }
    }
    const said = transcript(file, prediction, media, colours);
    if (said) card.append(said);
    return card;
  }

  function transcript(file, prediction, media, colours) {
    let lines = [];
    let model = null;
    for (const candidate of ['language', 'prosody']) {
      const unit = file.models?.[candidate]?.unit;
      lines = segmentsOf(prediction, candidate, unit).filter((s) => s.text);
      if (lines.length) {
        model = candidate;
        break;
      }
    }
    if (!lines.length) {
      return file.transcript ? el('section', { class: 'transcript' }, el('h4', { text: 'Transcript' }),
        el('p', { text: file.transcript })) : null;
    }
    const seconds = file.models[model].unit === 'seconds' && file.file_type !== 'text';
    const list = el('ol', { class: 'sentences', 'aria-label': `Transcript of ${file.file}` });
    for (const line of lines) {
      const top = topOf(line.emotions);
      const colour = top ? colours.of(top.name) : OTHER;
      const label = top ? `${top.name} ${fmtScore(top.score)}` : '';
      const content = [
        el('span', { class: 'when', text: seconds ? fmtTime(line.x) : `#${line.x}` }),
        el('span', { class: 'said', text: line.text }),
        el('span', { class: 'tag' }, swatch(colour), label),
      ];
      const item = seconds && media
        ? el('button', { type: 'button', class: 'sentence', 'data-time': line.x,
          'aria-label': `Play from ${fmtTime(line.x)}: ${line.text} (${label})`,
          onclick: () => { media.currentTime = line.x; media.play().catch(() => {}); } }, ...content)
        : el('div', { class: 'sentence' }, ...content);
      item.style.backgroundColor = tint(colour === OTHER ? '#8a8a8a' : colour, 0.16);
      item.style.borderLeftColor = colour;
      list.append(el('li', {}, item));
    }
    return el('section', { class: 'transcript' }, el('h4', { text: `Transcript (${model}, each sentence with its top expression)` }), list);
  }

  function faceBoxes(file, summary, src, colours) {
    const boxes = summary.boxes || [];
    const section = el('section', { class: 'faces' }, el('h4', { text: `Faces: ${boxes.length}` }));
    const frame = el('div', { class: 'face-frame' });
    const list = el('ol', { class: 'face-list' });
    const place = (width, height) => {
      for (const b of boxes) {
        const top = b.top;
        const colour = top ? colours.of(top.name) : OTHER;
        const label = `${b.id}: ${top ? `${top.name} ${fmtScore(top.score)}` : 'no expression'}`;
        const box = el('div', { class: 'face-box', role: 'img', 'aria-label': label },
          el('span', { class: 'face-label', text: top ? `${top.name} ${fmtScore(top.score)}` : b.id }));
        box.style.left = `${(100 * b.box.x) / width}%`;
        box.style.top = `${(100 * b.box.y) / height}%`;
        box.style.width = `${(100 * b.box.w) / width}%`;
        box.style.height = `${(100 * b.box.h) / height}%`;
        box.style.borderColor = colour;
        box.firstChild.style.backgroundColor = colour;
        frame.append(box);
      }
    };
    for (const b of boxes) {
      list.append(el('li', {}, swatch(b.top ? colours.of(b.top.name) : OTHER),
        `${b.id}: ${b.top ? `${b.top.name} ${fmtScore(b.top.score)}` : 'no expression'} at (${Math.round(b.box.x)}, ${Math.round(b.box.y)}) ${Math.round(b.box.w)}×${Math.round(b.box.h)} px`));
    }
    if (src) {
      const img = el('img', { src, alt: `${file.file} with ${boxes.length} face boxes` });
      img.addEventListener('load', () => place(img.naturalWidth, img.naturalHeight), { once: true });
      frame.append(img);
    } else {
      // No image to show (uploaded in another tab): the boxes on a blank frame as large as they reach.
      const w = Math.max(1, ...boxes.map((b) => b.box.x + b.box.w));
      const h = Math.max(1, ...boxes.map((b) => b.box.y + b.box.h));
      frame.classList.add('blank');
      frame.style.aspectRatio = `${w} / ${h}`;
      place(w, h);
    }
    section.append(frame, list);
    if (summary.note) section.append(el('p', { class: 'hint', text: summary.note }));
    return section;
  }

  /** One row per tracked face (an untracked video: one row of every face), its top expression per frame. */
  function faceRows(summary, segments, duration, media, colours) {
    const groups = new Map();
    for (const s of segments) {
      const frames = groups.get(s.group) || new Map();
      const best = frames.get(s.x);
      if (!best || (s.prob ?? 0) > (best.prob ?? 0)) frames.set(s.x, s);
      groups.set(s.group, frames);
    }
    const tracks = new Map((summary.faces || []).map((f) => [f.id, f]));
    const end = Math.max(duration || 0, ...segments.map((s) => s.x)) || 1;
    const section = el('section', { class: 'face-rows' }, el('h4', { text: 'Faces over time' }));
    for (const [id, frames] of groups) {
      const track = tracks.get(id);
      const name = id === 'unknown' ? 'Faces (not tracked: the most likely face per frame)' : id;
      const tops = (track?.top_emotions || []).slice(0, 3).map((e) => `${e.name} ${fmtScore(e.score)}`).join(', ');
      const strip = el('div', { class: 'strip', role: 'list', 'aria-label': `${name} over time` });
      const times = [...frames.keys()].sort((a, b) => a - b);
      times.forEach((t, i) => {
        const top = topOf(frames.get(t).emotions);
        const next = times[i + 1] ?? Math.min(end, t + (times.length > 1 ? t - times[i - 1] : end));
        const label = `${fmtTime(t)} ${top ? `${top.name} ${fmtScore(top.score)}` : ''}`;
        const cell = el(media ? 'button' : 'span', { class: 'face-cell', role: 'listitem', title: label, 'aria-label': label,
          type: media ? 'button' : null,
          onclick: media ? () => { media.currentTime = t; media.play().catch(() => {}); } : null });
        cell.style.left = `${(100 * t) / end}%`;
        cell.style.width = `${Math.max(0.8, (100 * Math.max(0, next - t)) / end)}%`;
        cell.style.backgroundColor = top ? colours.of(top.name) : OTHER;
        strip.append(cell);
      });
      section.append(el('div', { class: 'face-row', 'data-face': id },
        el('div', { class: 'face-row-name' }, el('strong', { text: name }),
          el('span', { class: 'hint', text: ` ${frames.size} frames${tops ? ` · ${tops}` : ''}` })), strip));
    }
    return section;
  }

  // ---------------------------------------------------------------- start-up

  async function boot() {
    manifest = await api('/v1/actions');
    signedIn = true;
    $('signin').hidden = true;
    $('workspace').hidden = false;
    updateSessionState();
    buildToggles();
    showRequest();
    jobs.last = '';
    jobs.refreshSoon();
    route();
  }

  function route() {
    const id = new URLSearchParams(window.location.search).get('job');
    if (id) openJob(id, false);
    else closeJob();
  }

  function wire() {
    $('signin-form').addEventListener('submit', signIn);
    $('signin-cancel').addEventListener('click', () => {
      $('signin').hidden = true;
      $('workspace').hidden = !signedIn;
    });
    $('open-keys').addEventListener('click', () => showSignIn(''));
    $('sign-out').addEventListener('click', () => {
      session.save('', '');
      window.location.reload();
    });
    $('start-form').addEventListener('submit', startJob);
    for (const id of ['urls', 'text']) $(id).addEventListener('input', showRequest);
    $('files').addEventListener('change', (e) => {
      addFiles(e.target.files);
      e.target.value = '';
    });
    const drop = $('drop');
    drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      addFiles(e.dataTransfer.files);
    });
    for (const button of document.querySelectorAll('button.copy')) {
      button.dataset.label = button.textContent;
      button.addEventListener('click', () => copyText($(button.dataset.copy).textContent, button));
    }
    $('home').addEventListener('click', (e) => {
      e.preventDefault();
      history.pushState({}, '', '/');
      closeJob();
    });
    window.addEventListener('popstate', route);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) jobs.refreshSoon(); });
  }

  wire();
  updateSessionState();
  boot().catch((e) => {
    if (e instanceof ApiFailure && e.status === 401) return; // the sign-in prompt is showing
    $('workspace').hidden = false;
    $('jobs-state').textContent = e.message;
  });
})();
