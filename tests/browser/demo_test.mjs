// browser_demo: the demo page in a real browser (headless Chromium driven by
// playwright-core), as a person would use it:
//   1. the page loads, from the demo alone (every request goes to the demo's address);
//   2. the live panel updates at least twice (numbers pushed by the worker thread);
//   3. a chat message sent from the page comes back over the WebSocket;
//   4. a 5 MiB file uploaded through the form shows up in the list, byte for byte on disk;
//   5. "GET /api/stats" (answered by the worker thread) shows a 200 and JSON;
//   6. no script error or failed request on the page; a screenshot is saved;
//   7. the demo stops cleanly on SIGINT (exit 0, "demo: stopped").
//
// node demo_test.mjs DEMO_BINARY WORK_DIR CHROMIUM
// WORK_DIR holds node_modules (playwright-core), and receives the uploads, the browser
// profile and demo.png. Exits 0 on success, 1 with a message on the first failure.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { randomBytes, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const [demoBin, workDir, chromiumPath] = process.argv.slice(2);
if (!demoBin || !workDir || !chromiumPath) {
  console.error('usage: node demo_test.mjs DEMO_BINARY WORK_DIR CHROMIUM');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(workDir), 'package.json'));
const { chromium } = require('playwright-core');

const STEP_MS = 20000;            // any one step
const name = path.basename(demoBin);
const log = (msg) => console.log(`browser_demo(${name}): ${msg}`);
const fail = (msg) => { throw new Error(msg); };

// Starts the demo on a free port with fresh uploads; resolves with its URL.
function startDemo(uploads) {
  const child = spawn(demoBin, ['--port', '0', '--uploads', uploads], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL from the demo within ${STEP_MS} ms:\n${out}`)), STEP_MS);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code) => reject(new Error(`the demo exited (${code}) before serving:\n${out}`)));
  });
  return { child, url, output: () => out };
}

// SIGINT, then the exit status (or a failure after STEP_MS).
function stopDemo(demo) {
  return new Promise((resolve, reject) => {
    if (demo.child.exitCode !== null) return resolve(demo.child.exitCode);
    const timer = setTimeout(() => { demo.child.kill('SIGKILL'); reject(new Error('the demo did not stop on SIGINT')); }, STEP_MS);
    demo.child.on('exit', (code, signal) => { clearTimeout(timer); resolve(signal ? signal : code); });
    demo.child.kill('SIGINT');
  });
}

const number = (page, id) => page.locator(`#${id}`).textContent();

async function checkLivePanel(page) {
  await page.waitForFunction(() => Number(document.getElementById('s-ticks').textContent) >= 1, null, { timeout: STEP_MS });
  const first = await number(page, 's-uptime');
  await page.waitForFunction(() => Number(document.getElementById('s-ticks').textContent) >= 3, null, { timeout: STEP_MS });
  const later = await number(page, 's-uptime');
  if (first === later) fail(`the uptime did not move between updates (${first})`);
  const conns = Number(await number(page, 's-connections'));
  if (!(conns >= 1)) fail(`the panel shows ${conns} connections with this page open`);
  log(`live panel updated (uptime ${first} -> ${later}, ${conns} connections)`);
}

async function checkChat(page) {
  const text = `hello from chromium ${Date.now()} <b>not bold</b> "quoted"`;
  await page.fill('#chat-input', text);
  await page.click('#chat-form button');
  const mine = page.locator('#chat-log .line.me', { hasText: text });
  await mine.waitFor({ timeout: STEP_MS });
  if (await page.locator('#chat-log b').count() !== 0) fail('chat text was rendered as HTML');
  log('chat message came back over the WebSocket');
}

async function checkUpload(page, uploads) {
  const file = path.join(workDir, 'upload-5MiB.bin');
  const data = randomBytes(5 << 20);
  fs.writeFileSync(file, data);
  await page.setInputFiles('#upload-file', file);
  await page.click('#upload-form button');
  await page.locator('#upload-status', { hasText: 'uploaded upload-5MiB.bin' }).waitFor({ timeout: STEP_MS });
  const row = page.locator('#uploads tbody tr', { hasText: 'upload-5MiB.bin' });
  await row.waitFor({ timeout: STEP_MS });
  const size = await row.locator('td').nth(1).textContent();
  if (size !== '5.0 MiB') fail(`the list shows ${size} for a 5 MiB file`);
  const progress = await page.locator('#upload-progress').evaluate((el) => el.value);
  if (progress !== 100) fail(`the progress bar ends at ${progress}`);
  const stored = fs.readFileSync(path.join(uploads, 'upload-5MiB.bin'));
  const digest = (b) => createHash('sha256').update(b).digest('hex');
  if (digest(stored) !== digest(data)) fail('the stored file differs from the uploaded one');
  log('5 MiB upload listed, progress at 100%, stored byte for byte');
}

async function checkApi(page) {
  await page.click('#api-button');
  const result = page.locator('#api-result', { hasText: /^200 in/ });
  await result.waitFor({ timeout: STEP_MS });
  const text = await result.textContent();
  const json = JSON.parse(text.slice(text.indexOf('\n') + 1));
  if (json.type !== 'stats' || !(json.requests > 0) || !(json.uploads >= 1)) fail(`unexpected /api/stats: ${text}`);
  log(`/api/stats answered by the worker: ${json.requests} requests, ${json.uploads} upload(s)`);
}

async function main() {
  fs.mkdirSync(workDir, { recursive: true });
  const uploads = fs.mkdtempSync(path.join(path.resolve(workDir), `uploads-${name}-`));
  const profile = fs.mkdtempSync(path.join(path.resolve(workDir), 'profile-'));
  const demo = startDemo(uploads);
  let context = null;
  let stopProblem = null;
  try {
    const url = await demo.url;
    log(`demo at ${url}`);
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      viewport: { width: 1200, height: 900 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
             '--disable-component-update', '--no-first-run'],
    });
    const page = context.pages()[0] || await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    page.on('request', (r) => {
      if (!r.url().startsWith(url) && !r.url().startsWith(url.replace('http:', 'ws:'))) problems.push(`request elsewhere: ${r.url()}`);
    });
    await page.goto(url, { timeout: STEP_MS });
    if ((await page.title()) !== 'tern demo') fail(`title is "${await page.title()}"`);
    await checkLivePanel(page);
    await checkChat(page);
    await checkUpload(page, uploads);
    await checkApi(page);
    const shot = path.join(workDir, `${name}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    log(`screenshot: ${shot}`);
    if (problems.length) fail(`the page had problems:\n  ${problems.join('\n  ')}`);
  } finally {
    // Never throws: an earlier failure is the one to report.
    if (context) await context.close().catch(() => {});
    const status = await stopDemo(demo).catch((e) => e.message);
    if (status !== 0) stopProblem = `the demo did not stop cleanly (${status}):\n${demo.output()}`;
    else if (!demo.output().includes('demo: stopped')) stopProblem = `no "demo: stopped" in:\n${demo.output()}`;
    fs.rmSync(profile, { recursive: true, force: true });
  }
  if (stopProblem) fail(stopProblem);
  log('demo stopped cleanly on SIGINT; all steps passed');
}

main().then(() => process.exit(0), (e) => {
  console.error(`browser_demo(${name}): FAIL: ${e.message}`);
  process.exit(1);
});
