'use strict';
// echo.js: a Node `ws` echo server, tern's peer in bench/ws.sh.
//
//   usage: node echo.js [PORT]      (default 8000; ws://127.0.0.1:PORT/, any path)
//
// Every message goes back whole, with the same opcode (ws reassembles fragments).
// ws's defaults, except perMessageDeflate off (tern and libwebsockets negotiate no
// extension either) and no client tracking (nothing here needs the list).
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 8000);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, clientTracking: false });

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => ws.terminate()); // a bad client costs only its connection
});
wss.on('listening', () => console.log(`node ws echo on ws://127.0.0.1:${port}/ (node ${process.version})`));
process.on('SIGTERM', () => process.exit(0));
