// The page's OpenID Connect sign-in (authorization code + PKCE) in headless Chromium, against a
// stand-in identity provider served here: discovery document, /authorize (which signs the user
// in at once and redirects back), /token (which checks the PKCE verifier against the
// challenge, single-use codes, client and redirect URI) and the JWKS; its RS256 tokens are then
// checked by the web-api's real OIDC code path (discovery, JWKS, iss, aud, exp).
//
// Run by tests/tests/browser.rs with the same line protocol as browser.mjs: this script first
// prints `@@issuer <url>`, then `@@need base` and reads `base <url>` (the web-api, started
// with FMN_OIDC_ISSUER=<url>). Environment: FMN_CLIENT_ID, FMN_TEST_USER, FMN_ARTIFACTS,
// CHROMIUM.

import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import http from "node:http";
import { join } from "node:path";
import { artifactsDir, ask, expect, logger, need, openPage, runSession } from "./common.mjs";

const clientId = need("FMN_CLIENT_ID");
const user = need("FMN_TEST_USER");
const artifacts = artifactsDir();
const log = logger("oidc");
const b64url = (buf) => Buffer.from(buf).toString("base64url");

// ------------------------------------------------------------ the identity provider

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: "jwk" }), kid: "idp-key-1", alg: "RS256", use: "sig" };
const codes = new Map();
const seen = { authorize: 0, token: 0 };
let issuer = "";

function jwt(claims) {
  const header = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: jwk.kid }));
  const body = b64url(JSON.stringify(claims));
  const signature = sign("sha256", Buffer.from(`${header}.${body}`), privateKey);
  return `${header}.${body}.${b64url(signature)}`;
}

function reply(res, status, body, headers = {}) {
  res.writeHead(status, {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "content-type",
    "Content-Type": "application/json",
    ...headers,
  });
  res.end(body === undefined ? "" : JSON.stringify(body));
}

const idp = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  let body = "";
  for await (const chunk of req) body += chunk;
  if (req.method === "OPTIONS") return reply(res, 204);
  if (url.pathname === "/.well-known/openid-configuration") {
    return reply(res, 200, {
      issuer,
      authorization_endpoint: `${issuer}/authorize`,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
      response_types_supported: ["code"],
      code_challenge_methods_supported: ["S256"],
      id_token_signing_alg_values_supported: ["RS256"],
    });
  }
  if (url.pathname === "/jwks") return reply(res, 200, { keys: [jwk] });
  if (url.pathname === "/authorize") {
    seen.authorize += 1;
    const q = url.searchParams;
    const problem =
      q.get("response_type") !== "code" ? "response_type" :
      q.get("client_id") !== clientId ? "client_id" :
      q.get("code_challenge_method") !== "S256" ? "code_challenge_method" :
      !/^[A-Za-z0-9_-]{43}$/.test(q.get("code_challenge") || "") ? "code_challenge" :
      !q.get("state") ? "state" :
      !(q.get("scope") || "").split(" ").includes("openid") ? "scope" : null;
    if (problem) return reply(res, 400, { error: "invalid_request", error_description: `bad ${problem}` });
    const code = b64url(randomBytes(16));
    codes.set(code, { challenge: q.get("code_challenge"), redirect: q.get("redirect_uri") });
    const back = new URL(q.get("redirect_uri"));
    back.searchParams.set("code", code);
    back.searchParams.set("state", q.get("state"));
    return reply(res, 302, undefined, { Location: back.toString() });
  }
  if (url.pathname === "/token" && req.method === "POST") {
    seen.token += 1;
    const f = new URLSearchParams(body);
    const grant = codes.get(f.get("code"));
    codes.delete(f.get("code"));
    const bad = (d) => reply(res, 400, { error: "invalid_grant", error_description: d });
    if (f.get("grant_type") !== "authorization_code") return bad("grant_type");
    if (!grant) return bad("unknown or used code");
    if (f.get("client_id") !== clientId) return bad("client_id");
    if (f.get("redirect_uri") !== grant.redirect) return bad("redirect_uri differs");
    const derived = b64url(createHash("sha256").update(f.get("code_verifier") || "").digest());
    if (derived !== grant.challenge) return bad("PKCE verifier does not match the challenge");
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: issuer, sub: `sub-${user}`, aud: clientId, iat: now, nbf: now, exp: now + 600, preferred_username: user, groups: ["packager"] };
    return reply(res, 200, { token_type: "Bearer", expires_in: 600, access_token: jwt(claims), id_token: jwt(claims) });
  }
  reply(res, 404, { error: "not_found" });
});
await new Promise((ok) => idp.listen(0, "127.0.0.1", ok));
issuer = `http://127.0.0.1:${idp.address().port}`;

// ------------------------------------------------------------ the page

process.stdout.write(`@@issuer ${issuer}\n`);
const base = (await ask("base")).replace(/^base\s+/, "");

const { browser, page, problems } = await openPage({ width: 1000, height: 800 }, log);

await runSession({ browser, page, problems }, log, join(artifacts, "oidc-failure.png"), async (stepTo) => {
  stepTo("the page offers the identity provider's sign-in");
  await page.goto(base);
  const button = page.getByRole("button", { name: "Sign in with Fedora Accounts" });
  await button.waitFor();
  expect(await page.locator("#dev-login").isHidden(), "no development sign-in in OIDC mode");

  stepTo("sign in with authorization code + PKCE");
  await button.click();
  await page.locator("#session-user", { hasText: user }).waitFor();
  expect(seen.authorize === 1 && seen.token === 1, `one authorization and one token request (${JSON.stringify(seen)})`);
  expect(new URL(page.url()).search === "", "the code and state are gone from the address bar");
  const storage = await page.evaluate(() => ({ token: sessionStorage.getItem("fmn.token"), pkce: sessionStorage.getItem("fmn.pkce") }));
  expect(storage.token && storage.token.split(".").length === 3 && !storage.pkce, "the token is kept, the verifier dropped");
  await page.locator("#filters article.filter").first().waitFor();
  log("signed in through the identity provider as", user);

  stepTo("signing out and in again");
  await page.getByRole("button", { name: "Sign out" }).click();
  await button.waitFor();
  await button.click();
  await page.locator("#session-user", { hasText: user }).waitFor();
  expect(seen.token === 2, "a second code exchange");

  await page.screenshot({ path: join(artifacts, "oidc.png"), fullPage: false });
}, () => {
  // The web-api's HTTP client keeps its connection to the provider alive (90 s): cut it.
  idp.close();
  idp.closeAllConnections();
});

