// The simulator's web views, used as a person would: sign in, start a chat, send, and see the
// message arrive for the other person. Drives Debian's Chromium with playwright-core.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { binary, freePort, launchBrowser, repo, waitHealthy } from "./support.js";

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
  await asAlice.getByLabel("Person").selectOption(alice.email);
  await asAlice.getByRole("button", { name: "Sign in" }).click();
  await asAlice.getByLabel(/^To/).fill(bob.email);
  await asAlice.getByRole("button", { name: "Open" }).click();
  await asAlice.getByLabel("Message").fill(text);
  await asAlice.getByRole("button", { name: "Send" }).click();
  await asAlice.getByText(text).waitFor();
  await asAlice.screenshot({ path: path.join(screenshots, "slack-conversation.png"), fullPage: true });

  const asBob = await (await browser.newContext()).newPage();
  await asBob.goto(`${base}/slack/`);
  await asBob.getByLabel("Person").selectOption(bob.email);
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
