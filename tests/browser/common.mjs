// What both browser scripts share: their environment, logging, the `@@` line protocol with
// tests/tests/browser.rs, and headless Chromium (Debian's `chromium`, driven by playwright-core).

import { mkdirSync } from "node:fs";
import readline from "node:readline";
import { chromium } from "playwright-core";

/** The value of the environment variable `name`; throws when it is unset. */
export function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

/** The screenshot directory (FMN_ARTIFACTS), made if missing. */
export function artifactsDir() {
  const dir = need("FMN_ARTIFACTS");
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A logger to stderr, prefixed with `tag` and the seconds since it was made. */
export function logger(tag) {
  const started = Date.now();
  return (...args) => console.error(`[${tag} ${((Date.now() - started) / 1000).toFixed(1)}s]`, ...args);
}

export function expect(cond, message) {
  if (!cond) throw new Error(`expectation failed: ${message}`);
}

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Prints `@@need <what>` and returns the test's one-line answer. */
export async function ask(what) {
  process.stdout.write(`@@need ${what}\n`);
  const { value, done } = await lines.next();
  if (done) throw new Error(`no answer to ${what}`);
  return value.trim();
}

/** Headless Chromium with one page of `viewport`; page errors are collected in `problems`. */
export async function openPage(viewport, log) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(20_000);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") log("console:", m.text()); });
  return { browser, context, page, problems };
}

/**
 * Runs the script's session: `steps(stepTo)` does the work, calling `stepTo(name)` as each step
 * begins (the failure message names it). Afterwards no page error may have been seen, and
 * `@@done` tells the test it is over. On a failure the step is logged, a screenshot saved at
 * `failure` and the exit code set. The browser is closed either way, then `after()` runs.
 */
export async function runSession({ browser, page, problems }, log, failure, steps, after = () => {}) {
  let step = "start";
  try {
    await steps((name) => { step = name; });
    expect(problems.length === 0, `no script errors: ${problems.join("; ")}`);
    process.stdout.write("@@done\n");
  } catch (err) {
    log(`failed at step “${step}”:`, err.message);
    await page.screenshot({ path: failure, fullPage: true }).catch(() => {});
    if (problems.length) log("script errors:", problems.join("; "));
    process.exitCode = 1;
  } finally {
    await browser.close();
    after();
    process.stdin.destroy();
  }
}

