// The demo page's script: one WebSocket (live panel + chat), an upload with progress,
// the list of uploads, and a request a worker thread answers. No libraries.
'use strict';

const $ = (id) => document.getElementById(id);
const history = [];          // requests per second, the last 60 ticks
let ws = null;
let myId = null;
let ticks = 0;

// ---- numbers -------------------------------------------------------------------------
function bytes(n) {
  if (n < 1024) return n + ' B';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let u = -1;
  do { n /= 1024; u++; } while (n >= 1024 && u < units.length - 1);
  return n.toFixed(n < 10 ? 1 : 0) + ' ' + units[u];
}

function duration(s) {
  s = Math.floor(s);
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
  return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + sec + 's';
}

// ---- live panel and chart --------------------------------------------------------------
function showStats(s) {
  $('s-connections').textContent = s.connections;
  $('s-requests').textContent = s.requests.toLocaleString('en');
  $('s-bytes').textContent = bytes(s.bytes_sent);
  $('s-pushed').textContent = s.pushed.toLocaleString('en');
  $('s-uptime').textContent = duration(s.uptime_s);
  $('s-ticks').textContent = ++ticks;
  history.push(s.rps);
  if (history.length > 60) history.shift();
  drawChart();
}

function drawChart() {
  const canvas = $('chart');
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * ratio;
  canvas.height = h * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  g.clearRect(0, 0, w, h);
  const max = Math.max(5, ...history);
  const bar = w / 60;
  g.fillStyle = '#15803d';
  history.forEach((v, i) => {
    const bh = (v / max) * (h - 18);
    g.fillRect(w - (history.length - i) * bar + 1, h - bh, bar - 2, bh);
  });
  g.fillStyle = '#5b6661';
  g.font = '11px system-ui, sans-serif';
  g.fillText(`max ${max.toFixed(0)} req/s · now ${(history.at(-1) ?? 0).toFixed(0)} req/s`, 6, 12);
}

// ---- WebSocket ---------------------------------------------------------------------------
function setState(cls, text) {
  const el = $('conn-state');
  el.className = 'state ' + cls;
  el.textContent = text;
}

function chatLine(who, text, cls) {
  const log = $('chat-log');
  const line = document.createElement('div');
  line.className = 'line ' + (cls || '');
  if (who !== null) {
    const w = document.createElement('span');
    w.className = 'who';
    w.textContent = who;
    line.append(w);
  }
  line.append(document.createTextNode(text));
  log.append(line);
  log.scrollTop = log.scrollHeight;
}

function onMessage(e) {
  const m = JSON.parse(e.data);
  if (m.type === 'hello') {
    myId = m.id;
    chatLine(null, `connected as visitor #${m.id}`, 'sys');
  } else if (m.type === 'tick') {
    showStats(m);
  } else if (m.type === 'chat') {
    const me = m.from === myId;
    chatLine(me ? 'you' : `#${m.from}`, m.text, me ? 'me' : '');
  }
}

function connect() {
  ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onopen = () => setState('open', 'live: WebSocket open');
  ws.onmessage = onMessage;
  ws.onclose = (e) => {
    setState('closed', `WebSocket closed (${e.code}); retrying…`);
    setTimeout(connect, 2000);
  };
}

$('chat-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('chat-input');
  if (input.value && ws && ws.readyState === WebSocket.OPEN) {
    ws.send(input.value);
    input.value = '';
  }
});

// ---- uploads -----------------------------------------------------------------------------
async function listUploads() {
  const r = await fetch('/api/uploads');
  const files = await r.json();
  files.sort((a, b) => b.mtime - a.mtime || a.name.localeCompare(b.name));
  const body = document.querySelector('#uploads tbody');
  body.replaceChildren(...files.map((f) => {
    const tr = document.createElement('tr');
    const name = document.createElement('td');
    const size = document.createElement('td');
    name.textContent = f.name;
    size.textContent = bytes(f.size);
    tr.append(name, size);
    return tr;
  }));
  if (!files.length) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td colspan="2" class="status">nothing uploaded yet</td>';
    body.append(tr);
  }
}

$('upload-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const file = $('upload-file').files[0];
  if (!file) return;
  const status = $('upload-status');
  const bar = $('upload-progress');
  const button = e.target.querySelector('button');
  // The file is the raw body: the server streams it to disk as it arrives.
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/api/upload?name=' + encodeURIComponent(file.name));
  xhr.upload.onprogress = (p) => {
    if (p.lengthComputable) bar.value = (100 * p.loaded) / p.total;
    status.textContent = `${bytes(p.loaded)} of ${bytes(file.size)} sent`;
  };
  xhr.onload = () => {
    button.disabled = false;
    let answer = {};
    try { answer = JSON.parse(xhr.responseText); } catch (_) { /* tern's own 413 is not JSON */ }
    if (xhr.status === 201) {
      bar.value = 100;
      status.textContent = `uploaded ${answer.name} (${bytes(answer.size)})`;
    } else {
      status.textContent = `refused (${xhr.status}): ${answer.error || xhr.responseText.trim() || 'too large?'}`;
    }
    listUploads();
  };
  xhr.onerror = () => {
    button.disabled = false;
    status.textContent = 'the upload failed (connection closed: too large?)';
  };
  button.disabled = true;
  bar.value = 0;
  xhr.send(file);
});

// ---- a request answered by the worker thread ---------------------------------------------
$('api-button').addEventListener('click', async () => {
  const out = $('api-result');
  const t0 = performance.now();
  const r = await fetch('/api/stats');
  const body = await r.json();
  out.textContent = `${r.status} in ${(performance.now() - t0).toFixed(1)} ms\n` +
    JSON.stringify(body, null, 1);
});

window.addEventListener('resize', drawChart);
connect();
listUploads();
drawChart();
