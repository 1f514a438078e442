// The preferences page in headless Chromium (Debian's `chromium`, driven by playwright-core).
//
// Run by tests/tests/browser.rs, which starts the local system (dev-mode sign-in) and answers
// this script's requests on stdin: a line `@@need <what>` on stdout asks for something only
// the test can do (read the mail the SES emulator recorded, put a message on the ingest
// queue); the answer is one line on stdin. Everything else is logged to stderr.
//
// Environment: FMN_BASE_URL (http://127.0.0.1:port), FMN_TEST_USER, FMN_TEST_EMAIL,
// FMN_ARTIFACTS (directory for screenshots), CHROMIUM (default /usr/bin/chromium).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { artifactsDir, ask, expect, logger, need, openPage, runSession } from "./common.mjs";

const base = need("FMN_BASE_URL");
const user = need("FMN_TEST_USER");
const email = need("FMN_TEST_EMAIL");
const artifacts = artifactsDir();
const FILTER = "Browser test updates";
const log = logger("browser");

const { browser, context, page, problems } = await openPage({ width: 1100, height: 900 }, log);
page.on("dialog", (d) => d.accept());

await runSession({ browser, page, problems }, log, join(artifacts, "failure.png"), async (stepTo) => {
  // Sign in through the development mode.
  stepTo("sign in");
  await page.goto(base);
  await page.getByLabel("User name").fill(user);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#session-user", { hasText: user }).waitFor();
  log("signed in as", user);

  // An email destination: pending until confirmed.
  stepTo("add a destination");
  await page.locator("#dest-kind").selectOption("email");
  await page.getByLabel("Email address").fill(email);
  await page.getByRole("button", { name: "Add and send the confirmation" }).click();
  const dest = page.locator("#destinations li.dest", { hasText: email });
  await dest.locator(".badge", { hasText: "Awaiting confirmation" }).waitFor();
  const destId = await dest.getAttribute("data-id");
  log("destination", destId, "awaiting confirmation");

  stepTo("a bad address shows the API's error next to the field");
  await page.getByLabel("Email address").fill("not-an-address");
  await page.getByRole("button", { name: "Add and send the confirmation" }).click();
  await page.locator("#dest-address-error").filter({ hasText: /\S/ }).waitFor();
  expect((await page.locator("#dest-address").getAttribute("aria-invalid")) === "true", "the field is marked invalid");
  expect((await page.locator("#destinations li.dest").count()) === 1, "nothing added");

  stepTo("a digest destination: added, delivery changed, removed");
  const digestEmail = email.replace("@", "-digest@");
  await page.getByLabel("Email address").fill(digestEmail);
  await page.locator("#new-dest-mode").selectOption("digest");
  await page.locator("#new-dest-delta").fill("30");
  await page.locator("#new-dest-count").fill("10");
  await page.getByRole("button", { name: "Add and send the confirmation" }).click();
  const digest = page.locator("#destinations li.dest", { hasText: digestEmail });
  await digest.waitFor();
  const did = await digest.getAttribute("data-id");
  expect((await page.locator(`#dest-${did}-mode`).inputValue()) === "digest", "digest mode saved");
  expect((await page.locator(`#dest-${did}-delta`).inputValue()) === "30", "30 minutes saved");
  await page.locator(`#dest-${did}-mode`).selectOption("immediate");
  await digest.getByRole("button", { name: "Save delivery" }).click();
  await page.locator("#status", { hasText: "Saved the delivery" }).waitFor();
  expect((await page.locator(`#dest-${did}-mode`).inputValue()) === "immediate", "immediate saved");
  await page.locator(`#dest-${did}-remove`).click();
  await digest.waitFor({ state: "detached" });

  // A filter with two rules, sending to that destination.
  stepTo("create a filter");
  await page.getByLabel("New filter name").fill(FILTER);
  await page.getByRole("button", { name: "Add filter" }).click();
  const filter = page.locator("article.filter", { has: page.locator("h3", { hasText: FILTER }) });
  await filter.waitFor();
  const fid = await filter.getAttribute("data-id");
  const p = `#filter-${fid}`;

  stepTo("a bad rule shows the API's error next to the form");
  await page.locator(`${p}-add-kind`).selectOption("package-regex");
  await page.locator(`${p}-arg-pattern`).fill("(unclosed");
  await page.locator(`${p}-add-rule`).click();
  await page.locator(`${p}-rule-error`).filter({ hasText: /\S/ }).waitFor();
  log("error shown:", await page.locator(`${p}-rule-error`).textContent());
  expect((await filter.locator("ol.rules li.rule").count()) === 0, "the bad rule was not saved");

  stepTo("add the first rule");
  await page.locator(`${p}-add-kind`).selectOption("package");
  expect(
    (await page.locator(`${p}-add-desc`).textContent()).includes("packages"),
    "the catalogue's description is shown",
  );
  await page.locator(`${p}-arg-packages`).fill("gnome-settings-daemon");
  await page.locator(`${p}-add-rule`).click();
  await filter.locator("ol.rules li.rule", { hasText: "gnome-settings-daemon" }).waitFor();

  stepTo("add the second rule");
  await page.locator(`${p}-add-kind`).selectOption("applications");
  await page.locator(`${p}-arg-applications`).fill("bodhi");
  await page.locator(`${p}-add-rule`).click();
  await filter.locator("ol.rules li.rule", { hasText: "bodhi" }).waitFor();
  expect((await filter.locator("ol.rules li.rule").count()) === 2, "two rules");

  stepTo("pick an event of the service catalogue by searching");
  await page.locator(`${p}-add-search`).fill("bodhi testing request");
  expect(
    await page.locator(`${p}-add-kind option[value="catalogue:bodhi_update_request_testing"]`).isVisible()
      || !(await page.locator(`${p}-add-kind option[value="catalogue:bodhi_update_request_testing"]`).getAttribute("hidden")),
    "the search keeps the matching event",
  );
  expect(
    (await page.locator(`${p}-add-kind option[value="package-regex"]`).getAttribute("hidden")) !== null,
    "the search hides what does not match",
  );
  await page.locator(`${p}-add-kind`).selectOption("catalogue:bodhi_update_request_testing");
  expect(
    (await page.locator(`${p}-add-desc`).textContent()).includes("testing"),
    "the event's description is shown",
  );
  await page.locator(`${p}-add-rule`).click();
  await filter.locator("ol.rules li.rule", { hasText: "Bodhi:" }).waitFor();
  expect((await filter.locator("ol.rules li.rule").count()) === 3, "three rules");

  stepTo("send the filter to the destination");
  await page.locator(`${p}-to-${destId}`).check();
  await page.locator("#status", { hasText: "now sends to" }).waitFor();
  expect(await page.locator(`${p}-to-${destId}`).isChecked(), "destination ticked after saving");

  // A first sign-in's default filters start off (opt-in): switch one on, then off again.
  stepTo("enable and disable another filter");
  const other = page.locator("article.filter", { hasNot: page.locator("h3", { hasText: FILTER }) }).first();
  const otherId = await other.getAttribute("data-id");
  await page.locator(`article.filter[data-id="${otherId}"] h3 .badge`, { hasText: "disabled" }).waitFor();
  await page.locator(`#filter-${otherId}-enabled`).check();
  await page.locator("#status", { hasText: "is now enabled" }).waitFor();
  await page.locator(`#filter-${otherId}-enabled`).uncheck();
  await page.locator(`article.filter[data-id="${otherId}"] h3 .badge`, { hasText: "disabled" }).waitFor();

  // Confirm the destination from the link in the mail, in another tab.
  stepTo("confirm the destination");
  const link = (await ask("confirmation-link")).replace(/^link\s+/, "");
  log("confirmation link", link);
  const confirmPage = await context.newPage();
  confirmPage.on("pageerror", (e) => problems.push(`confirm page error: ${e.message}`));
  await confirmPage.goto(link);
  await confirmPage.locator("#confirm-body", { hasText: email }).waitFor();
  expect((await confirmPage.locator("#confirm-body").textContent()).includes(user), "the page names the user");
  await confirmPage.screenshot({ path: join(artifacts, "confirm.png"), fullPage: true });
  await confirmPage.getByRole("button", { name: "Accept" }).click();
  await confirmPage.locator("#confirm-done", { hasText: "Confirmed" }).waitFor();
  await confirmPage.close();

  await page.reload();
  await page.locator("#destinations li.dest", { hasText: email }).locator(".badge", { hasText: "Confirmed" }).waitFor();
  log("destination confirmed");

  // A matching message flows through the system and shows in recent notifications.
  stepTo("see the notification");
  const msgId = (await ask("publish")).replace(/^published\s+/, "");
  log("published", msgId);
  const item = page.locator(`#recent li[data-msg-id="${msgId}"]`);
  // Live: the page's polling of /me/latest brings it, with no reload and no click.
  await item.waitFor({ timeout: 90_000 });
  await page.locator("#status", { hasText: "New notification" }).waitFor();
  const text = await item.textContent();
  log("notification:", text);
  expect(text.includes(FILTER), "the notification names the filter");
  expect(text.includes(email), "the notification names the destination");

  // "Why?" explains it: the filter matched, its three rules held (the catalogue event too).
  stepTo("explain");
  await item.getByRole("button", { name: "Why?" }).click();
  const x = page.locator("#explain-result section.x-filter", { hasText: FILTER });
  await x.locator(".badge", { hasText: "matched" }).waitFor();
  expect((await x.locator(".x-rules li.held").count()) === 3, "the three rules held");
  expect(
    (await x.locator(".x-rules li.held", { hasText: "catalogue:bodhi_update_request_testing" }).count()) === 1,
    "explain names the catalogue event",
  );

  // The preview of the filter lists the stored message and a rate; a rule being added that
  // no stored message satisfies empties it (fetched again after the edit, debounced).
  stepTo("preview");
  await page.locator(`${p}-preview summary`).click();
  await page.locator(`${p}-preview-list li`).first().waitFor();
  const rate = await page.locator(`${p}-preview-rate`).textContent();
  log("preview:", rate);
  expect(/about [0-9.]+ a day/.test(rate), "the preview gives a rate");
  expect((await page.locator(`${p}-preview-list li`).count()) >= 1, "the preview lists the message");
  await page.locator(`${p}-add-search`).fill("");
  await page.locator(`${p}-add-kind`).selectOption("catalogue:koji_build_failed");
  await page.locator(`${p}-preview-rate`, { hasText: "nothing in the last" }).waitFor();
  expect((await page.locator(`${p}-preview-list`).count()) === 0, "no match listed");
  await page.locator(`${p}-add-kind`).selectOption("");

  // The destination's card shows the last delivery once the mail went out.
  stepTo("last delivery");
  const lastDeadline = Date.now() + 60_000;
  const lastNote = page.locator("#destinations li.dest", { hasText: email }).locator(".last-delivery");
  while (!((await lastNote.textContent()) || "").startsWith("Last delivery")) {
    if (Date.now() > lastDeadline) throw new Error("no last delivery shown after 60 s");
    await page.waitForTimeout(1000);
    await page.reload();
    await page.locator("#destinations li.dest", { hasText: email }).waitFor();
  }
  log("last delivery:", await lastNote.textContent());

  stepTo("export and import");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: "Export as JSON" }).click(),
  ]);
  const exported = JSON.parse(readFileSync(await download.path(), "utf8"));
  expect(exported.name === user, "the export is the user's");
  expect(exported.filters.some((f) => f.name === FILTER && f.rules.length === 3), "the export has the filter");
  exported.filters = exported.filters.filter((f) => f.name === FILTER);
  await page.locator("#import-file").setInputFiles({
    name: "prefs.json",
    mimeType: "application/json",
    buffer: Buffer.from(JSON.stringify(exported)),
  });
  await page.getByRole("button", { name: "Import", exact: true }).click();
  await page.locator("#status", { hasText: "Imported" }).waitFor();
  expect((await page.locator("article.filter").count()) === 1, "the imported settings replaced the old");
  await page.locator("#destinations li.dest", { hasText: email }).locator(".badge", { hasText: "Confirmed" }).waitFor();

  await page.screenshot({ path: join(artifacts, "preferences.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(artifacts, "preferences-phone.png"), fullPage: true });
  // An administrator: the accounts, a bot account created, edited and disabled.
  stepTo("administration");
  await page.setViewportSize({ width: 1100, height: 900 });
  expect(await page.locator("#admin-section").isHidden(), "no administration for a person");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("User name").fill("pageadmin");
  await page.getByLabel("Administrator (member of the admin group)").check();
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#session-admin").waitFor();
  await page.locator("#admin-users tr", { hasText: user }).waitFor();
  await page.getByLabel("Account name").fill("pagebot");
  await page.getByLabel("Bot account (a mailing list, say), managed by administrators").check();
  await page.locator("#admin-create").getByRole("button", { name: "Create" }).click();
  const bot = page.locator('#admin-users tr[data-name="pagebot"]');
  await bot.waitFor();
  await bot.getByRole("button", { name: "Edit pagebot's preferences" }).click();
  await page.locator("#admin-prefs-title", { hasText: "pagebot" }).waitFor();
  const json = JSON.parse(await page.locator("#admin-prefs-json").inputValue());
  expect(json.name === "pagebot" && json.bot === true, "the bot's preferences are loaded");
  json.filters = json.filters.slice(0, 1);
  await page.locator("#admin-prefs-json").fill(JSON.stringify(json));
  await page.locator("#admin-prefs").getByRole("button", { name: "Save" }).click();
  await page.locator("#status", { hasText: "Saved the preferences of pagebot" }).waitFor();
  expect((await bot.locator("td.num").nth(1).textContent()).trim() === "1", "one filter left");
  await bot.getByRole("button", { name: "Disable pagebot" }).click();
  await bot.locator("td", { hasText: "disabled" }).waitFor();
  await page.locator("#admin-section").screenshot({ path: join(artifacts, "admin.png") });

  log("screenshots in", artifacts);
});

