// `js-static-token`: the `static-token` plugin (plugins/static-token) in JavaScript,
// to show that the tokenhost:plugin contract does not depend on the guest's language.
//
// `resolve` returns the config key `token`; each `refresh` returns `<token>-1`,
// `<token>-2`, ... (the counter lives in the instance). The optional key `ttl_ms` sets
// the expiry to now + `ttl_ms`. Each call logs one info line (never the token).
//
// componentize-js maps the WIT as follows: records are objects with camelCase fields,
// enums are strings, variants are `{ tag, val }`, `u64` is a BigInt, `option` is the
// value or `undefined`; a `result` export returns its ok value and throws its error.

import { config, log } from 'tokenhost:plugin/host@0.1.0';

const U64_MAX = (1n << 64n) - 1n;

/** How many refreshes this instance has served. */
let refreshes = 0n;

/** A `result` error: componentize-js lowers a thrown non-Error value as `err`. */
function invalidConfig(message) {
  return { tag: 'invalid-config', val: message };
}

/** The value of config key `key`, or undefined. */
function lookup(pairs, key) {
  const pair = pairs.find(([k]) => k === key);
  return pair === undefined ? undefined : pair[1];
}

/** Milliseconds since the Unix epoch, from the host's wall clock. */
function nowMs() {
  return BigInt(Date.now());
}

/** Parses `ttl_ms` like Rust's `u64::from_str` after `trim()`. */
function parseTtl(raw) {
  const text = raw.trim();
  if (/^\+?[0-9]+$/.test(text)) {
    const ttl = BigInt(text);
    if (ttl <= U64_MAX) return ttl;
  }
  throw invalidConfig('config key `ttl_ms` must be a non-negative integer (milliseconds)');
}

/** Reads `token` and `ttl_ms`: the token value and its expiry. */
function configured() {
  const pairs = config();
  const token = lookup(pairs, 'token');
  if (token === undefined) {
    throw invalidConfig('missing required config key `token`');
  }
  const raw = lookup(pairs, 'ttl_ms');
  let expiresAtMs;
  if (raw !== undefined) {
    const sum = nowMs() + parseTtl(raw);
    expiresAtMs = sum > U64_MAX ? U64_MAX : sum;
  }
  return { token, expiresAtMs };
}

export const tokenSource = {
  resolve() {
    log('info', 'js-static-token: resolve');
    const { token, expiresAtMs } = configured();
    return { value: token, expiresAtMs };
  },

  refresh(context) {
    refreshes += 1n;
    log('info', `js-static-token: refresh #${refreshes} (reason: ${context.reason})`);
    const { token, expiresAtMs } = configured();
    return { value: `${token}-${refreshes}`, expiresAtMs };
  },
};
