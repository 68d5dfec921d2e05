// The image's health check: GET /healthz on loopback, over HTTPS when
// VCLERK_TLS is on (the appliance's own, possibly self-signed, certificate
// is accepted). /healthz answers 503 when the database has been unreachable
// for longer than VCLERK_DB_UNHEALTHY_SECONDS, so a lasting database outage
// shows as unhealthy. The slim image has no curl. Exit 0 healthy, 1 not.
'use strict';
const tls = (process.env.VCLERK_TLS || 'off') !== 'off';
const client = require(tls ? 'node:https' : 'node:http');
const request = client.get(
  { host: '127.0.0.1', port: Number(process.env.VCLERK_PORT || 8080), path: '/healthz', rejectUnauthorized: false, timeout: 4000 },
  (res) => {
    res.resume();
    process.exit(res.statusCode === 200 ? 0 : 1);
  },
);
request.on('timeout', () => request.destroy());
request.on('error', () => process.exit(1));
