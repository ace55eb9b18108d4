// A real Better Auth server for tests/spin-host/tests/better_auth.rs: email and password
// sign-up, the JWT plugin with its defaults (EdDSA over Ed25519, 15-minute tokens, `iss` and
// `aud` = the base URL's origin), and the in-memory database.
//
//   node tests/better-auth/server.mjs PORT [--grace-period=SECONDS] [--exit-on-stdin-close]
//
// PORT 0 takes a free port. Once listening it prints one JSON line on stdout:
// {"port":N,"origin":"http://127.0.0.1:N","betterAuth":"1.x.y"}. --grace-period sets the JWT
// plugin's `jwks.gracePeriod` (default: the plugin's, 30 days). With --exit-on-stdin-close it
// exits when its standard input closes (so that a test that dies without killing it does not
// leave it running).
//
// Routes:
//   /api/auth/*           Better Auth's own (sign-up/email, sign-in/email, token, jwks, ...)
//   GET  /test/token      the session's JWT taken the way a Next.js server takes it:
//                         auth.api.getToken({ headers }) with the request's headers
//                         (its session cookie); answers {"token": "..."}
//   POST /test/rotate-key rotates the signing key (see rotateKey below); answers
//                         {"expired": "<kid of the key that stops signing>"}
//   GET  /test/hs256-token the body of the README's HS256 route handler
//                         (app/api/token/route.ts): a token the app mints itself with jose's
//                         SignJWT and the secret in env TASK_API_JWT_SECRET (500 without it)
//   GET  /test/jwks-fetches how many times /api/auth/jwks was asked for, not counting
//                         requests that carry `x-test-probe` (the test's own looks)

import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { fromNodeHeaders, toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins";
import { SignJWT } from "jose";

const USAGE = "usage: node server.mjs PORT [--grace-period=SECONDS] [--exit-on-stdin-close]";
const args = process.argv.slice(2);
const port = Number(args.find((a) => !a.startsWith("--")) ?? "0");
const grace = args.find((a) => a.startsWith("--grace-period="));
const gracePeriod = grace === undefined ? undefined : Number(grace.split("=")[1]);
if (
  !Number.isInteger(port) || port < 0 || port > 65535 ||
  (gracePeriod !== undefined && !(Number.isInteger(gracePeriod) && gracePeriod > 0))
) {
  console.error(USAGE);
  process.exit(2);
}
if (args.includes("--exit-on-stdin-close")) {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
}

const version = JSON.parse(
  readFileSync(new URL("./node_modules/better-auth/package.json", import.meta.url)),
).version;

// Rotation: keys expire `rotationInterval` seconds after their creation; the JWT plugin then
// signs the next token with a new key (resolveSigningKey → createJwk in
// better-auth/dist/plugins/jwt/sign.mjs) and keeps publishing the expired one at /jwks for
// `gracePeriod` seconds past its expiry (default 30 days; the filter in the getJwks endpoint).
const ROTATION_INTERVAL_S = 24 * 60 * 60;

let auth;
let handler;
let jwksFetches = 0;

const server = createServer(async (req, res) => {
  try {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/api/auth/jwks" && req.headers["x-test-probe"] === undefined) jwksFetches += 1;
    if (path.startsWith("/api/auth/")) return await handler(req, res);
    if (path === "/test/token" && req.method === "GET") {
      // What a Next.js route handler or server component does:
      //   const { token } = await auth.api.getToken({ headers: await headers() });
      const { token } = await auth.api.getToken({ headers: fromNodeHeaders(req.headers) });
      return send(res, 200, { token });
    }
    if (path === "/test/rotate-key" && req.method === "POST") {
      return send(res, 200, await rotateKey());
    }
    if (path === "/test/hs256-token" && req.method === "GET") {
      // README.md, "Better Auth", app/api/token/route.ts (`await headers()` there).
      const session = await auth.api.getSession({ headers: fromNodeHeaders(req.headers) });
      if (!session) return send(res, 401, { error: "not signed in" });
      // The API's jwt_secret: its own 32+ random bytes, never BETTER_AUTH_SECRET.
      const secret = new TextEncoder().encode(process.env.TASK_API_JWT_SECRET ?? "");
      if (secret.length < 32) throw new Error("TASK_API_JWT_SECRET must be 32 bytes or more");
      // iss and aud as in Better Auth's own tokens, so one jwt_issuer/jwt_audience serves both.
      const app = new URL(process.env.BETTER_AUTH_URL).origin;
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setSubject(session.user.id)
        .setIssuer(app)
        .setAudience(app)
        .setIssuedAt()
        .setExpirationTime("15m")
        .sign(secret);
      return send(res, 200, { token });
    }
    if (path === "/test/jwks-fetches" && req.method === "GET") {
      return send(res, 200, { fetches: jwksFetches });
    }
    send(res, 404, { error: "not found" });
  } catch (e) {
    // Better Auth's APIError carries the HTTP status (401 without a session).
    const status = Number.isInteger(e?.statusCode) ? e.statusCode : 500;
    send(res, status, { error: String(e?.message ?? e) });
  }
});

/**
 * Better Auth 1.7 has no endpoint or function that rotates on demand: rotation is
 * `jwks.rotationInterval` reaching a key's `expiresAt`. This does what reaching it does, now:
 * it sets the current signing key's `expiresAt` to the present, through Better Auth's own
 * database adapter. Everything after is the plugin's code: the next token is signed by a new
 * key it creates, and /jwks keeps the old key for the grace period.
 */
async function rotateKey() {
  const ctx = await auth.$context;
  const now = new Date();
  const live = (await ctx.adapter.findMany({ model: "jwks" }))
    .filter((k) => !k.expiresAt || k.expiresAt > now)
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  if (live.length === 0) return { expired: null };
  const current = live[0];
  await ctx.adapter.update({
    model: "jwks",
    where: [{ field: "id", value: current.id }],
    update: { expiresAt: new Date(now.getTime() - 1) },
  });
  return { expired: current.id };
}

function send(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

server.listen(port, "127.0.0.1", () => {
  const actual = server.address().port;
  const origin = `http://127.0.0.1:${actual}`;
  process.env.BETTER_AUTH_URL = origin;
  auth = betterAuth({
    baseURL: process.env.BETTER_AUTH_URL,
    secret: "a Better Auth test secret, thirty-two bytes or more",
    database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
    emailAndPassword: { enabled: true },
    plugins: [jwt({ jwks: { rotationInterval: ROTATION_INTERVAL_S, gracePeriod } })],
    telemetry: { enabled: false },
  });
  handler = toNodeHandler(auth);
  process.stdout.write(`${JSON.stringify({ port: actual, origin, betterAuth: version })}\n`);
});

for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
