import crypto from 'node:crypto';

/**
 * The signature of one delivery: hex HMAC-SHA256, keyed with the endpoint's
 * secret, of `<timestamp>.<raw body>` (the timestamp is the
 * `X-VClerk-Timestamp` header, in Unix seconds).
 */
export function sign(secret: string, timestamp: number | string, rawBody: string | Buffer): string {
  return crypto.createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest('hex');
}

/**
 * For receivers: whether a delivery is genuine. Pass the endpoint's secret,
 * the `X-VClerk-Timestamp` header, the body exactly as received (bytes or
 * string, before any JSON parsing), and the `X-VClerk-Signature` header
 * (`sha256=<hex>`). Refuses a timestamp more than `toleranceSeconds` away
 * from `now` (replays), and compares in constant time.
 */
export function verifySignature(
  secret: string,
  timestamp: string | number | undefined,
  rawBody: string | Buffer,
  header: string | undefined,
  toleranceSeconds = 300,
  now: Date = new Date(),
): boolean {
  if (typeof header !== 'string' || timestamp === undefined) return false;
  const ts = String(timestamp);
  if (!/^\d{1,12}$/.test(ts)) return false;
  if (Math.abs(Math.floor(now.getTime() / 1000) - Number(ts)) > toleranceSeconds) return false;
  const match = /^sha256=([0-9a-f]{64})$/.exec(header.trim());
  if (!match) return false;
  const expected = Buffer.from(sign(secret, ts, rawBody), 'hex');
  return crypto.timingSafeEqual(expected, Buffer.from(match[1]!, 'hex'));
}
