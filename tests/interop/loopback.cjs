// Preload (`node --require ./loopback.cjs ...`) that keeps every TCP listener of
// the process on 127.0.0.1.
//
// @modelcontextprotocol/server-everything calls `app.listen(PORT)` without a host,
// which Node binds to all interfaces. The interop test must never expose it, so
// every `net.Server#listen` (http, https and express servers all go through it)
// is rewritten to bind 127.0.0.1, whatever host, if any, the caller gave. Unix
// socket paths are left alone (they are not network listeners); listening on an
// inherited handle or file descriptor is refused, since its address cannot be
// checked here.
"use strict";

const net = require("node:net");

const LOOPBACK = "127.0.0.1";
const original = net.Server.prototype.listen;

function isPortLike(v) {
  return (
    v === undefined ||
    v === null ||
    typeof v === "number" ||
    (typeof v === "string" && /^\s*\d+\s*$/.test(v))
  );
}

net.Server.prototype.listen = function listen(...args) {
  const cb = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
  const first = args[0];
  let options;
  if (first !== null && typeof first === "object") {
    if (first._handle || first.handle || first.fd !== undefined) {
      throw new Error("loopback.cjs: listening on a handle or fd is not allowed in the interop test");
    }
    if (first.path !== undefined && first.port === undefined) {
      return original.call(this, first, ...(cb ? [cb] : []));
    }
    options = { ...first };
  } else if (isPortLike(first)) {
    options = { port: first === undefined || first === null ? 0 : Number(first) };
    // listen(port, host, backlog) / listen(port, backlog): keep the backlog only.
    const backlog = typeof args[1] === "number" ? args[1] : typeof args[2] === "number" ? args[2] : undefined;
    if (backlog !== undefined) {
      options.backlog = backlog;
    }
  } else {
    // A string that is not a port: a unix socket or named pipe path.
    return original.call(this, ...args, ...(cb ? [cb] : []));
  }
  delete options.ipv6Only;
  options.host = LOOPBACK;
  process.stderr.write(`[loopback.cjs] listen forced to ${LOOPBACK}:${options.port ?? 0}\n`);
  return original.call(this, options, ...(cb ? [cb] : []));
};
