// A Matrix destination added and confirmed on the preferences page, in headless Chromium.
//
// Run by tests/tests/browser.rs against the whole local system, with a real Matrix homeserver
// (Synapse) behind deliver-matrix. The address field starts from the user's Matrix id in FAS
// (FMN_EXPECTED_MATRIX, stored by the test as the sync would); the confirmation link arrives
// as a direct message, which the test reads with the user's own Matrix client and hands over
// (`@@need matrix-confirmation-link`, the line protocol of common.mjs).
//
// Environment: FMN_BASE_URL, FMN_TEST_USER, FMN_EXPECTED_MATRIX, FMN_ARTIFACTS, CHROMIUM.

import { join } from "node:path";
import { artifactsDir, ask, expect, logger, need, openPage, runSession } from "./common.mjs";

const base = need("FMN_BASE_URL");
const user = need("FMN_TEST_USER");
const matrixId = need("FMN_EXPECTED_MATRIX");
const artifacts = artifactsDir();
const log = logger("matrix");

const { browser, context, page, problems } = await openPage({ width: 1100, height: 900 }, log);

await runSession({ browser, page, problems }, log, join(artifacts, "matrix-failure.png"), async (stepTo) => {
  stepTo("sign in");
  await page.goto(base);
  await page.getByLabel("User name").fill(user);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#session-user", { hasText: user }).waitFor();

  stepTo("the address starts from the Matrix id in FAS");
  await page.locator("#dest-kind").selectOption("matrix");
  const offered = await page.locator("#dest-address").inputValue();
  log("offered address", offered);
  expect(offered === matrixId, `the page offers ${matrixId}, not “${offered}”`);

  stepTo("add the Matrix destination");
  await page.getByRole("button", { name: "Add and send the confirmation" }).click();
  const dest = page.locator("#destinations li.dest", { hasText: matrixId });
  await dest.locator(".badge", { hasText: "Awaiting confirmation" }).waitFor();
  expect((await dest.locator(".kind").textContent()).trim() === "Matrix", "shown as Matrix");
  log("Matrix destination awaiting confirmation");

  stepTo("confirm it from the direct message's link");
  const link = (await ask("matrix-confirmation-link")).replace(/^link\s+/, "");
  log("confirmation link", link);
  const confirmPage = await context.newPage();
  confirmPage.on("pageerror", (e) => problems.push(`confirm page error: ${e.message}`));
  await confirmPage.goto(link);
  await confirmPage.locator("#confirm-body", { hasText: matrixId }).waitFor();
  await confirmPage.getByRole("button", { name: "Accept" }).click();
  await confirmPage.locator("#confirm-done", { hasText: "Confirmed" }).waitFor();
  await confirmPage.close();

  await page.reload();
  await page.locator("#destinations li.dest", { hasText: matrixId }).locator(".badge", { hasText: "Confirmed" }).waitFor();
  await page.screenshot({ path: join(artifacts, "matrix.png"), fullPage: true });
  log("Matrix destination confirmed");

});

