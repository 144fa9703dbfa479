'use strict';
// broadcast.js: the broadcast bench server of bench/ws.sh on Node `ws`.
//
//   usage: node broadcast.js [PORT]      (default 8000; ws://127.0.0.1:PORT/, any path)
//
// The protocol (top of bench/ws.sh): every client is a subscriber; the text message
// "start RATE COUNT" makes the server publish COUNT 64-byte binary messages at RATE per
// second (0: as fast as backpressure allows), each carrying its CLOCK_MONOTONIC stamp
// (ns, u64 little-endian; process.hrtime is CLOCK_MONOTONIC on Linux) and its sequence
// number (u64), then a text "done".
//
// Node has one thread, so the publisher is the event loop itself: a timer at a fixed
// rate, setImmediate batches at RATE 0, yielding to I/O between batches. ws.send writes
// to the socket at once when the kernel takes it; what it does not take is buffered in
// Node (ws.bufferedAmount). Backpressure: when a subscriber has more than HIGH_WATER
// bytes buffered, the publisher waits (1 ms timers) until every subscriber is under it.
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 8000);
const MSG_LEN = 64;
const HIGH_WATER = 64 * 1024;
const BATCH = 64; // messages per event-loop turn at RATE 0

const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
let running = false;

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (isBinary || running) return;
    const m = /^start (\d+) (\d+)$/.exec(data.toString());
    if (m && Number(m[2]) > 0) publish(Number(m[1]), Number(m[2]));
  });
  ws.on('error', () => ws.terminate());
});

function backpressured() {
  for (const ws of wss.clients) if (ws.bufferedAmount > HIGH_WATER) return true;
  return false;
}

function sendAll(data, binary) {
  for (const ws of wss.clients) ws.send(data, { binary });
}

function publish(rate, count) {
  running = true;
  const t0 = process.hrtime.bigint();
  let seq = 0;
  const step = () => {
    if (backpressured()) return setTimeout(step, 1);
    const due = rate === 0 ? count : Math.min(count, Math.floor((Number(process.hrtime.bigint() - t0) * rate) / 1e9) + 1);
    for (let batch = 0; seq < due && batch < BATCH; batch++, seq++) {
      const msg = Buffer.alloc(MSG_LEN);
      msg.writeBigUInt64LE(process.hrtime.bigint(), 0);
      msg.writeBigUInt64LE(BigInt(seq), 8);
      sendAll(msg, true);
    }
    if (seq === count) {
      sendAll('done', false);
      running = false;
    } else if (seq < due) {
      setImmediate(step); // more due now: after this turn's I/O
    } else {
      const next = t0 + BigInt(Math.ceil((seq * 1e9) / rate));
      setTimeout(step, Math.max(0, Number(next - process.hrtime.bigint()) / 1e6));
    }
  };
  step();
}

wss.on('listening', () => console.log(`node ws broadcast on ws://127.0.0.1:${port}/ (node ${process.version})`));
process.on('SIGTERM', () => process.exit(0));
