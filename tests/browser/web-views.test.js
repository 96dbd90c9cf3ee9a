// The simulator's web views, used as a person would: sign in, find someone, start a chat, send,
// and see the message arrive for the other person — in the demo, across platforms, without a
// reload. Drives Debian's Chromium with playwright-core.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { binary, freePort, launchBrowser, repo, startDemo, waitHealthy } from "./support.js";

const screenshots = path.join(repo, "target", "browser");

let simulator;
let base;
let browser;

async function members(platform) {
  const response = await fetch(`${base}/_sim/users?platform=${platform}`);
  const users = await response.json();
  return users.filter((u) => u.kind === "member" && u.email);
}

before(async () => {
  mkdirSync(screenshots, { recursive: true });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  simulator = spawn(binary, ["sim", "--listen", `127.0.0.1:${port}`, "--people", "40"], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  await waitHealthy(`${base}/healthz`);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  simulator?.kill("SIGTERM");
});

test("a Slack user sends a direct message that the other person sees", async () => {
  const [alice, bob] = await members("slack");
  const text = `Hello from the browser test ${Date.now()}`;

  const asAlice = await (await browser.newContext()).newPage();
  await asAlice.goto(`${base}/slack/`);
  await asAlice.getByLabel("Person (e-mail)").fill(alice.email);
  await asAlice.getByRole("button", { name: "Sign in" }).click();
  await asAlice.getByLabel(/^To/).fill(bob.email);
  await asAlice.getByRole("button", { name: "Open" }).click();
  await asAlice.getByLabel("Message").fill(text);
  await asAlice.getByRole("button", { name: "Send" }).click();
  await asAlice.getByText(text).waitFor();
  await asAlice.screenshot({ path: path.join(screenshots, "slack-conversation.png"), fullPage: true });

  const asBob = await (await browser.newContext()).newPage();
  await asBob.goto(`${base}/slack/`);
  await asBob.getByLabel("Person (e-mail)").fill(bob.email);
  await asBob.getByRole("button", { name: "Sign in" }).click();
  await asBob.getByRole("link", { name: alice.display_name }).click();
  await asBob.getByText(text).waitFor();
  await asBob.screenshot({ path: path.join(screenshots, "slack-received.png"), fullPage: true });
});

test("a Teams user starts a chat, sends, edits, and the other person sees the edit", async () => {
  const [carol, dave] = await members("teams");
  const text = `Hi from Teams ${Date.now()}`;

  const asCarol = await (await browser.newContext()).newPage();
  await asCarol.goto(`${base}/teams/`);
  await asCarol.getByLabel(/Sign in as/).fill(carol.email);
  await asCarol.getByRole("button", { name: "Sign in" }).click();
  await asCarol.getByLabel(/^With/).fill(dave.email);
  await asCarol.getByRole("button", { name: "Start chat" }).click();
  await asCarol.locator("textarea[name=content]").fill(text);
  await asCarol.getByRole("button", { name: "Send" }).click();
  await asCarol.getByText(text).first().waitFor();
  const edited = `${text} (edited by Carol)`;
  await asCarol.locator("input[name=content]").first().fill(edited);
  await asCarol.getByRole("button", { name: "Save edit" }).first().click();
  await asCarol.getByText(edited).first().waitFor();
  await asCarol.screenshot({ path: path.join(screenshots, "teams-conversation.png"), fullPage: true });

  const asDave = await (await browser.newContext()).newPage();
  await asDave.goto(`${base}/teams/`);
  await asDave.getByLabel(/Sign in as/).fill(dave.email);
  await asDave.getByRole("button", { name: "Sign in" }).click();
  await asDave.getByRole("link", { name: new RegExp(carol.display_name) }).first().click();
  await asDave.getByText(edited).first().waitFor();
  assert.equal(await asDave.getByText(text, { exact: true }).count(), 0);
  await asDave.screenshot({ path: path.join(screenshots, "teams-received.png"), fullPage: true });
});

/// Collects what would show a view broken: script errors, refusals by the page's content
/// security policy, and failed requests (but the favicon, which the simulator does not have).
function watch(page, problems) {
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      problems.push(message.text());
    }
  });
  page.on("response", (response) => {
    if (response.status() >= 400 && !response.url().endsWith("/favicon.ico")) {
      problems.push(`${response.status()} ${response.url()}`);
    }
  });
}

async function until(what, condition) {
  const deadline = Date.now() + 60_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen in time`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test("in the demo, a Slack user finds a Teams colleague's bot by name and they chat live", async () => {
  const demo = await startDemo(40, ["--sim-rate-limits", "off"]);
  try {
    const [, slackName, slackEmail, teamsName, teamsEmail] = demo.banner.match(
      /Try it:\s+(.+?) \((\S+)\) is on Slack only, (.+?) \((\S+)\) on Microsoft Teams only/,
    );
    const users = async (platform) => (await fetch(`${demo.sim}/_sim/users?platform=${platform}`)).json();
    await until(`${teamsName}'s Slack bot`, async () =>
      (await users("slack")).some((u) => u.kind === "bot" && u.display_name === teamsName),
    );
    await until(`${slackName}'s Teams guest`, async () =>
      (await users("teams")).some((u) => u.kind === "guest" && u.display_name === slackName),
    );

    const onSlack = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
    const problems = [];
    watch(onSlack, problems);
    await onSlack.goto(`${demo.sim}/slack/`);
    await onSlack.getByLabel("Person (e-mail)").fill(slackEmail);
    await onSlack.getByRole("button", { name: "Sign in" }).click();
    await onSlack.getByLabel("Search people").fill(teamsName.split(" ")[0].toLowerCase());
    await onSlack.getByRole("button", { name: "Search" }).click();
    const botRow = onSlack.getByRole("row").filter({ hasText: teamsName }).filter({ hasText: "bot" });
    await botRow.waitFor();
    await onSlack.screenshot({ path: path.join(screenshots, "slack-people.png"), fullPage: true });
    await botRow.getByRole("button", { name: `Message ${teamsName}` }).click();
    await onSlack.getByRole("heading", { name: teamsName }).waitFor();

    const onTeams = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
    watch(onTeams, problems);
    await onTeams.goto(`${demo.sim}/teams/`);
    await onTeams.getByLabel(/Sign in as/).fill(teamsEmail);
    await onTeams.getByRole("button", { name: "Sign in" }).click();
    await onTeams.getByLabel("Search people").fill(slackName);
    await onTeams.getByRole("button", { name: "Search" }).click();
    const guestRow = onTeams.getByRole("row").filter({ hasText: slackName }).filter({ hasText: "guest" });
    await guestRow.waitFor();
    await onTeams.screenshot({ path: path.join(screenshots, "teams-people.png"), fullPage: true });
    await guestRow.getByRole("button", { name: `Chat with ${slackName}` }).click();
    await onTeams.getByRole("heading", { name: slackName }).waitFor();

    const stamp = Date.now();
    await onSlack.getByLabel("Message").fill(`Hello *${teamsName}*, the plan is at https://example.com/plan-${stamp}`);
    await onSlack.getByRole("button", { name: "Send" }).click();
    await onSlack.locator("#messages b", { hasText: teamsName }).waitFor();

    // Teams shows it without a reload: the page polls, and the hub relays it as HTML.
    await onTeams.locator("#messages b", { hasText: teamsName }).waitFor({ timeout: 30_000 });
    await onTeams.locator(`#messages a[href="https://example.com/plan-${stamp}"]`).waitFor();

    await onTeams.getByLabel("Message").fill(`**Thanks** — see [the notes](https://example.com/notes-${stamp}) and <b>not this</b>`);
    await onTeams.getByRole("button", { name: "Send" }).click();
    await onTeams.locator("#messages b", { hasText: "Thanks" }).waitFor();
    await onTeams.getByText("<b>not this</b>").first().waitFor();
    await onTeams.screenshot({ path: path.join(screenshots, "teams-live.png"), fullPage: true });

    await onSlack.locator("#messages b", { hasText: "Thanks" }).waitFor({ timeout: 30_000 });
    const link = onSlack.locator(`#messages a[href="https://example.com/notes-${stamp}"]`);
    await link.waitFor();
    assert.equal(await link.textContent(), "the notes");
    await onSlack.screenshot({ path: path.join(screenshots, "slack-live.png"), fullPage: true });
    assert.deepEqual(problems, [], "no script or policy errors in either view");
  } finally {
    demo.process.kill("SIGTERM");
  }
});
