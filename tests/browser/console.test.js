// The admin console in a browser, as an admin uses it against the demo: the first owner from
// the setup link, signing in and out, choosing a primary platform, syncing one person and
// watching the icon change without a reload, bulk sync, the row menu's confirmed actions,
// filters and search, restricting a user and lifting it, a viewer refused, a forged form
// refused, and Teams disconnected after its confirmation, then connected again; no page trips
// its Content-Security-Policy. Saves screenshots of the main pages under target/screenshots/ for
// docs/admin-guide.md.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { binary, launchBrowser, promptLink, repo, startDemo } from "./support.js";

const screenshots = path.join(repo, "target", "screenshots");
const OWNER = "owner@example.com";
const PASSWORD = "correct horse battery staple";

let demo;
let browser;
let owner;

async function api(route, init = {}) {
  const response = await fetch(`${demo.hub}/api/v1${route}`, {
    ...init,
    headers: { authorization: `Bearer ${demo.token}`, "content-type": "application/json", ...init.headers },
  });
  return response.status === 204 ? null : response.json();
}

/// People on Slack and Teams (and no other platform) whose primary nobody chose yet.
async function unchosen(count) {
  const page = await api("/people?primary=unchosen&limit=1000");
  const people = page.people.filter((p) => p.platforms.join(",") === "slack,teams").slice(0, count);
  assert.equal(people.length, count);
  return people;
}

/// What the pages' Content-Security-Policy refused (an inline script or style, a resource from
/// elsewhere), as Chromium reports it: a failure even when the page still works without it.
const refusedByPolicy = [];

async function newContext(options) {
  const context = await browser.newContext(options);
  context.on("console", (message) => {
    if (message.text().includes("Content Security Policy")) {
      refusedByPolicy.push(`${message.location().url}: ${message.text()}`);
    }
  });
  return context;
}

async function signIn(page, email, password) {
  await page.goto(`${demo.hub}/console/sign-in`);
  await page.getByLabel("E-mail address").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

function row(page, name) {
  return page.getByRole("row").filter({ has: page.getByRole("rowheader", { name, exact: true }) });
}

async function shoot(page, name) {
  await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });
}

before(async () => {
  mkdirSync(screenshots, { recursive: true });
  // Slack and Teams only: what the console shows of them, with five people on both to choose.
  demo = await startDemo(40, ["--platforms", "slack,teams"]);
  assert.match(demo.console, /\/console\/setup\?token=/, "a first start prints the setup link");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  demo?.process.kill("SIGTERM");
});

test("first run: the setup link creates the owner, who signs out and in again", async () => {
  const context = await newContext({ viewport: { width: 1366, height: 768 } });
  owner = await context.newPage();
  await owner.goto(demo.hub);
  await owner.getByRole("heading", { name: "Sign in to Switchboard" }).waitFor();
  await owner.getByText("This hub has no admin yet").waitFor();
  await shoot(owner, "sign-in-first-run");

  await owner.goto(demo.console);
  await owner.getByLabel("E-mail address").fill(OWNER);
  await owner.getByLabel("Password").fill(PASSWORD);
  await shoot(owner, "setup");
  await owner.getByRole("button", { name: "Create the owner and sign in" }).click();
  await owner.getByRole("heading", { name: "Sync users" }).waitFor();
  await owner.getByText(`${OWNER} · owner`).waitFor();

  await owner.getByRole("button", { name: "Sign out" }).click();
  await owner.getByRole("heading", { name: "Sign in to Switchboard" }).waitFor();
  await owner.goto(`${demo.hub}/console/people`);
  assert.match(owner.url(), /\/console\/sign-in\?next=/, "signed out means signed out");

  await signIn(owner, OWNER, "not the password");
  await owner.getByText("do not match an admin").waitFor();
  await signIn(owner, OWNER, PASSWORD);
  await owner.getByRole("heading", { name: "Sync users" }).waitFor();
  await shoot(owner, "sync-users");
});

test("connect (demo): Teams reconnected through its consent page; Slack's users imported with progress", async () => {
  await owner.goto(`${demo.hub}/console/connections`);
  await owner.getByRole("heading", { name: "Connect Center" }).waitFor();
  await owner.getByRole("region", { name: "Microsoft Teams" }).getByText("Token expires").waitFor();
  await shoot(owner, "connect-center");
  // A healthy connection's form is folded away under its "Reconnect" disclosure.
  const teamsCard = owner.getByRole("region", { name: "Microsoft Teams" });
  await teamsCard.locator("summary", { hasText: "Reconnect Microsoft Teams" }).click();
  await teamsCard.locator("form").getByRole("button", { name: "Reconnect Microsoft Teams" }).click();
  // Microsoft asks an administrator's consent for the organisation, then the service account
  // signs in: each page is accepted as the demo's service account.
  while (owner.url().startsWith(demo.sim)) {
    await owner.getByLabel(/account/i).first().fill("switchboard.service@acme.example");
    await owner.getByRole("button", { name: "Accept" }).click();
    await owner.waitForLoadState();
  }
  await owner.getByText(/^Connected .*Microsoft Teams/).waitFor();
  const connections = await api("/connections");
  assert.equal(connections.connections.filter((c) => c.platform === "teams").length, 1, "reconnected, not doubled");

  // Slack answers slowly for a few seconds, so that the import's progress can be seen.
  await fetch(`${demo.sim}/_sim/faults`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify([{ route_prefix: "/slack/api/users.list", latency_ms: 1500, duration_secs: 10 }]),
  });
  await owner.goto(`${demo.hub}/console/imports`);
  const slack = owner.getByRole("region", { name: /^Slack/ });
  await slack.getByRole("button", { name: "Import users" }).click();
  await owner.getByText("The import started").waitFor();
  await slack.locator('.import-run[data-status="running"]').getByText("Importing").waitFor();
  await shoot(owner, "import-running");
  await slack.locator('.import-run[data-status="succeeded"]').getByText(/Last import .* accounts read/).waitFor({ timeout: 20_000 });
  await shoot(owner, "import-done");

  // Teams imports the members of the teams selected: the selection is kept, and saving it
  // imports them again.
  const teams = owner.getByRole("region", { name: /^Microsoft Teams/ });
  await teams.getByRole("link", { name: "Select teams" }).click();
  await owner.getByRole("group", { name: "The teams whose members are imported" }).waitFor();
  const boxes = owner.getByRole("checkbox");
  assert.ok((await boxes.count()) > 0);
  for (const box of await boxes.all()) assert.equal(await box.isChecked(), true, "the demo selected every team");
  await shoot(owner, "select-teams");
  await owner.getByRole("button", { name: "Import teams and users" }).click();
  await owner.getByText(/\d+ teams? selected; importing their members/).waitFor();
  await teams.locator('.import-run[data-status="succeeded"]').waitFor({ timeout: 20_000 });
});

test("choosing a primary platform, then syncing one person: the clock turns to a check without a reload", async () => {
  const [person] = await unchosen(1);
  await owner.goto(`${demo.hub}/console/people`);
  await owner.getByLabel("Search").fill(person.email);
  await owner.getByRole("button", { name: "Apply" }).click();
  await row(owner, person.display_name).waitFor();
  assert.equal(await owner.getByRole("rowheader").count(), 1, "the search finds one person");

  await row(owner, person.display_name).getByLabel(`Primary platform of ${person.display_name}`, { exact: true }).selectOption("slack");
  await row(owner, person.display_name).getByRole("button", { name: "Save" }).click();
  await owner.getByText(`${person.display_name} chats from Slack now.`).waitFor();

  // The page stays the same page from here on: a reload would lose this mark.
  await owner.evaluate(() => {
    window.notReloaded = true;
  });
  const teams = row(owner, person.display_name).locator(`[data-cell="${person.id}.teams"]`);
  assert.equal(await teams.getAttribute("data-status"), "not_created");
  // The Sync status column's info icon opens the legend of the four icons.
  await owner.getByLabel("Legend of the sync icons").click();
  const legend = owner.getByRole("list", { name: "Sync icons" });
  for (const meaning of ["Not created", "Pending", "Synced", "Failed"]) {
    await legend.getByText(new RegExp(`${meaning}:`)).waitFor();
  }
  await owner.getByLabel("Legend of the sync icons").click();

  // The sync says what it will do, in the dialog, before it does it.
  await teams.getByRole("link", { name: /Microsoft Teams: not created\. Sync now/ }).click();
  const dialog = owner.getByRole("dialog");
  await dialog.getByText(`Prompt ${person.display_name} to link their Microsoft Teams account.`).waitFor();
  await shoot(owner, "sync-confirm");
  await dialog.getByRole("button", { name: "Sync", exact: true }).click();
  await owner.locator(`[data-cell="${person.id}.teams"][data-status="pending"]`).waitFor();
  await shoot(owner, "sync-users-pending");

  // The person follows the prompt's link, keeps Slack, and authorises their Teams account.
  const link = await promptLink(demo.sim, person.email);
  const asPerson = await (await newContext()).newPage();
  await asPerson.goto(link);
  await asPerson.getByRole("button", { name: "Sync now" }).click();
  await asPerson.getByLabel(/^Account/).fill(person.email);
  await asPerson.getByRole("button", { name: "Accept" }).click();
  await asPerson.getByText(/Synced/).first().waitFor();

  await owner.locator(`[data-cell="${person.id}.teams"][data-status="synced"]`).waitFor({ timeout: 10_000 });
  await row(owner, person.display_name).locator("td.kinds").getByText("Microsoft Teams: own account").waitFor();
  assert.equal(await owner.evaluate(() => window.notReloaded), true, "the icon and the sync type changed without a reload");
});

test("bulk sync of selected people, then each row-menu action after its confirmation", async () => {
  const people = await unchosen(2);
  for (const person of people) {
    await api(`/people/${person.id}/primary`, { method: "PUT", body: JSON.stringify({ platform: "slack" }) });
  }
  await owner.goto(`${demo.hub}/console/people?primary=slack`);
  for (const person of people) {
    await owner.getByLabel(`Select ${person.display_name}`).check();
  }
  await owner.getByLabel("Sync on").selectOption("teams");
  await owner.getByRole("button", { name: "Sync selected" }).click();
  // It sums up what it will do first.
  await owner.getByRole("heading", { name: "Sync 2 people on Microsoft Teams" }).waitFor();
  await owner.getByText("Prompt 2 people to link their Microsoft Teams account.").waitFor();
  await owner.getByRole("button", { name: "Sync", exact: true }).click();
  // The action's page follows it, then says how it went.
  await owner.getByRole("heading", { name: "Syncing 2 people on Microsoft Teams" }).waitFor();
  await owner.getByText("Done: 0 synced, 0 already synced, 2 prompted, 0 waiting for approval, 0 queued, 0 failed.").waitFor({ timeout: 15_000 });
  await owner.goto(`${demo.hub}/console/people?primary=slack`);
  for (const person of people) {
    await owner.locator(`[data-cell="${person.id}.teams"][data-status="pending"]`).waitFor({ timeout: 15_000 });
  }

  const [first, second] = people;
  const menu = async (person, action) => {
    await row(owner, person.display_name).getByLabel(`More actions for ${person.display_name}`).click();
    await row(owner, person.display_name).getByRole("link", { name: action }).click();
    await owner.getByRole("dialog").waitFor();
  };

  await menu(first, "Reprompt user");
  await owner.getByRole("dialog").getByText(`Send ${first.display_name} the prompt again?`).waitFor();
  await shoot(owner, "row-menu-confirm");
  await owner.getByRole("dialog").getByRole("button", { name: "Reprompt user" }).click();
  await owner.getByText(`${first.display_name} was prompted again.`).waitFor();

  await menu(first, "Reset user");
  await owner.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
  assert.equal((await api(`/people/${first.id}`)).primary, "slack", "cancelled: nothing changed");
  await menu(first, "Reset user");
  await owner.getByRole("dialog").getByRole("button", { name: "Reset user" }).click();
  await owner.getByText(`${first.display_name} was reset.`).waitFor();
  assert.equal((await api(`/people/${first.id}`)).primary, null);

  await menu(second, "Remove user");
  await owner.getByRole("dialog").getByRole("button", { name: "Remove user" }).click();
  await owner.getByText(`${second.display_name} was removed from the hub.`).waitFor();
  const gone = await fetch(`${demo.hub}/api/v1/people/${second.id}`, { headers: { authorization: `Bearer ${demo.token}` } });
  assert.equal(gone.status, 404);

  // Without JavaScript's dialog, the menu's link opens a confirmation page.
  const noScript = await (await newContext({ javaScriptEnabled: false })).newPage();
  await signIn(noScript, OWNER, PASSWORD);
  await noScript.goto(`${demo.hub}/console/people?q=${encodeURIComponent(first.email)}`);
  await row(noScript, first.display_name).getByText("· · ·").click();
  await row(noScript, first.display_name).getByRole("link", { name: "Remove user" }).click();
  await noScript.getByRole("heading", { name: "Remove user" }).waitFor();
  await noScript.getByRole("button", { name: "Remove user" }).click();
  await noScript.getByText(`${first.display_name} was removed from the hub.`).waitFor();
});

test("filters by primary platform, status and type, and search", async () => {
  await owner.goto(`${demo.hub}/console/people`);
  await owner.getByLabel("Status").selectOption("synced");
  await owner.getByLabel("Sync type").selectOption("guest_account");
  await owner.getByRole("button", { name: "Apply" }).click();
  const statuses = await owner.locator("td.kinds").allTextContents();
  assert.ok(statuses.length > 0, "the demo's auto-sync made guests");
  for (const kinds of statuses) assert.match(kinds, /guest account/);
  assert.match(owner.url(), /status=synced/);

  await owner.getByLabel("Primary platform").selectOption("teams");
  await owner.getByRole("button", { name: "Apply" }).click();
  const none = await owner.getByText("No one matches these filters.").count();
  if (none === 0) {
    for (const cell of await owner.locator("td.primary").allTextContents()) assert.match(cell, /Microsoft Teams/);
  }
  await shoot(owner, "sync-users-filtered");

  await owner.getByRole("link", { name: "Clear filters" }).click();
  await owner.getByLabel("Search").fill("zzz-nobody-zzz");
  await owner.getByRole("button", { name: "Apply" }).click();
  await owner.getByText("No one matches these filters.").waitFor();
});

test("the Sync users table fits the window: the row menu on one line at 1280 px, no column off-screen at 900 px", async () => {
  const lineHeight = async (locator) =>
    locator.evaluate((element) => parseFloat(getComputedStyle(element).lineHeight));
  try {
    for (const width of [1280, 900]) {
      await owner.setViewportSize({ width, height: 800 });
      await owner.goto(`${demo.hub}/console/people`);
      const table = owner.locator("table.people");
      const { right, scrollWidth, clientWidth } = await table.evaluate((element) => ({
        right: element.getBoundingClientRect().right,
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
      }));
      assert.ok(right <= clientWidth, `${width} px: the table ends at ${right}`);
      assert.ok(scrollWidth <= clientWidth, `${width} px: the page scrolls sideways (${scrollWidth})`);
      const menu = owner.locator("details.menu").first();
      const summary = menu.locator("summary");
      const line = await lineHeight(summary);
      const { height } = await summary.boundingBox();
      assert.ok(height < 2 * line, `${width} px: the row menu's button takes ${height} px for lines of ${line}`);
      await summary.click();
      for (const item of await menu.getByRole("link").all()) {
        const box = await item.boundingBox();
        assert.ok(box.height < 2 * line + 12, `${width} px: ${await item.textContent()} wraps`);
        assert.ok(box.x + box.width <= clientWidth, `${width} px: ${await item.textContent()} is off-screen`);
      }
      await summary.click();
    }
  } finally {
    await owner.setViewportSize({ width: 1366, height: 768 });
  }
});

test("a person's page, Activity, Settings (sync settings, API tokens) and the audit log", async () => {
  const synced = (await api("/people?status=synced&limit=1")).people[0];
  await owner.goto(`${demo.hub}/console/people?q=${encodeURIComponent(synced.email)}`);
  await owner.getByRole("link", { name: synced.display_name }).click();
  await owner.getByRole("heading", { name: synced.display_name }).waitFor();
  await owner.getByRole("heading", { name: "Accounts" }).waitFor();
  await owner.getByRole("table", { name: "History" }).first().getByText("synced").first().waitFor();
  await owner.getByRole("heading", { name: "Recent relay activity" }).waitFor();
  await shoot(owner, "person");

  await owner.getByRole("link", { name: "Activity" }).click();
  await owner.getByRole("heading", { name: "Activity" }).waitFor();
  await owner.getByText("Copies waiting to be sent").waitFor();
  await owner.getByRole("heading", { name: "Messages relayed" }).waitFor();
  await owner.getByText("People whose messages were relayed, last 24 hours").waitFor();
  await shoot(owner, "activity");

  await owner.getByRole("link", { name: "Settings" }).click();
  await owner.getByLabel(/Auto-prompt/).check();
  await owner.getByLabel("Prompt a person at most once every (hours)").fill("12");
  await owner.getByRole("button", { name: "Save settings" }).click();
  await owner.getByText("Settings saved.").waitFor();
  const settings = await api("/settings");
  assert.equal(settings.auto_prompt, true);
  assert.equal(settings.prompt_throttle_hours, 12);

  // Restricting a user: an address the hub knows nobody by is refused with the reason; a
  // known one is listed, kept by the API, and lifted again.
  await owner.getByLabel("Restrict a person (their e-mail address)").fill("nobody@nowhere.example");
  await owner.getByRole("button", { name: "Restrict", exact: true }).click();
  await owner.getByText("nobody in the hub has the e-mail address nobody@nowhere.example").waitFor();
  assert.deepEqual((await api("/settings")).restricted_users, []);
  await owner.goto(`${demo.hub}/console/settings`);
  await owner.getByLabel("Restrict a person (their e-mail address)").fill(synced.email);
  await owner.getByRole("button", { name: "Restrict", exact: true }).click();
  await owner.getByText(`${synced.email} is restricted.`).waitFor();
  await owner.getByRole("list", { name: "Restricted users" }).getByText(synced.email).waitFor();
  assert.deepEqual((await api("/settings")).restricted_users, [synced.email]);
  await shoot(owner, "restricted-users");
  await owner.getByRole("button", { name: `Remove the restriction of ${synced.email}` }).click();
  await owner.getByText(`${synced.email} is no longer restricted.`).waitFor();
  await owner.getByText("Nobody is restricted.").waitFor();
  assert.deepEqual((await api("/settings")).restricted_users, []);

  await owner.getByLabel("New token's name (what it is for)").fill("browser-test");
  await owner.getByRole("button", { name: "Create token" }).click();
  const secret = await owner.locator("#new-token").textContent();
  const withToken = await fetch(`${demo.hub}/api/v1/relay`, { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(withToken.status, 200, "the new token works");
  await owner.getByRole("link", { name: "Back to Settings" }).click();
  await owner.getByRole("button", { name: "Revoke token browser-test" }).click();
  await owner.getByText("The token is revoked").waitFor();
  const revoked = await fetch(`${demo.hub}/api/v1/relay`, { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(revoked.status, 401, "the revoked token is refused");
  await shoot(owner, "settings");

  await owner.getByRole("link", { name: "Audit log" }).click();
  await owner.getByLabel("Who (contains)").fill(`admin:${OWNER}`);
  await owner.getByLabel("Action (starts with)").fill("token.");
  await owner.getByRole("button", { name: "Filter" }).click();
  const actions = await owner.locator("tbody td code").allTextContents();
  assert.deepEqual(actions, ["token.revoke", "token.create"]);
  await owner.getByLabel("Action (starts with)").fill("");
  await owner.getByRole("button", { name: "Filter" }).click();
  await owner.getByText("settings.update").first().waitFor();
  await shoot(owner, "audit-log");
});

test("a viewer reads the console but is refused a change", async () => {
  const created = spawnSync(
    binary,
    ["admin", "create", "viewer@example.com", "--role", "viewer", "--password-stdin", "--data-dir", demo.dataDir],
    { input: `${PASSWORD}\n`, encoding: "utf8" },
  );
  assert.equal(created.status, 0, created.stderr);
  const viewer = await (await newContext()).newPage();
  await signIn(viewer, "viewer@example.com", PASSWORD);
  await viewer.getByText("viewer@example.com · viewer").waitFor();
  assert.equal(await viewer.getByRole("button", { name: "Sync selected" }).count(), 0, "no actions offered");
  const [person] = await unchosen(1);
  const status = await viewer.evaluate(async (id) => {
    const response = await fetch(`/console/people/${id}/primary`, {
      method: "POST",
      body: new URLSearchParams({ csrf: document.body.dataset.csrf, platform: "teams" }),
    });
    return response.status;
  }, person.id);
  assert.equal(status, 403);
  assert.equal((await api(`/people/${person.id}`)).primary, null);

  // Nor may a viewer disconnect a platform: no button, and the hub refuses the form.
  const teams = (await api("/connections")).connections.find((c) => c.platform === "teams");
  await viewer.goto(`${demo.hub}/console/connections`);
  await viewer.getByRole("heading", { name: "Connect Center" }).waitFor();
  assert.equal(await viewer.getByRole("link", { name: /^Disconnect/ }).count(), 0, "no disconnect offered");
  const refused = await viewer.evaluate(async (id) => {
    const response = await fetch(`/console/connections/${id}/disconnect`, {
      method: "POST",
      body: new URLSearchParams({ csrf: document.body.dataset.csrf, remove_representations: "on" }),
    });
    return response.status;
  }, teams.id);
  assert.equal(refused, 403);
  assert.equal((await api("/connections")).connections.find((c) => c.id === teams.id).status, "connected");
});

test("a form forged on another origin is refused for want of the session's token", async () => {
  const [person] = await unchosen(1);
  await owner.goto(`${demo.sim}/healthz`);
  await owner.evaluate(({ hub, id }) => {
    const form = document.createElement("form");
    form.method = "post";
    form.action = `${hub}/console/people/${id}/primary`;
    const field = document.createElement("input");
    field.name = "platform";
    field.value = "teams";
    form.append(field);
    document.body.append(form);
    form.submit();
  }, { hub: demo.hub, id: person.id });
  await owner.getByText("security token is missing or wrong").waitFor();
  assert.equal((await api(`/people/${person.id}`)).primary, null);
});

test("Teams disconnected after its confirmation (its guests removed first), then connected again", async () => {
  const before = (await api("/connections")).connections.find((c) => c.platform === "teams");
  await owner.goto(`${demo.hub}/console/connections`);
  await owner.getByRole("link", { name: /^Disconnect .*\(Microsoft Teams\)$/ }).click();
  await owner.getByRole("heading", { name: "Disconnect Microsoft Teams" }).waitFor();
  await owner.locator("#disconnect-effects").getByText(/imported accounts, the people and the message history/).waitFor();
  const remove = owner.getByLabel(/^Also remove the \d+ guest accounts the hub created on Microsoft Teams/);
  await remove.check();
  await shoot(owner, "disconnect-confirm");
  await owner.getByRole("button", { name: "Disconnect Microsoft Teams" }).click();
  await owner.getByRole("heading", { name: "Microsoft Teams disconnected" }).waitFor();
  await owner.locator("#disconnect-result").getByText(/guest accounts? removed from Microsoft Teams/).waitFor();

  const after = (await api("/connections")).connections.find((c) => c.id === before.id);
  assert.equal(after.status, "disconnected");
  const guests = await api("/people?status=synced&type=guest_account&limit=1000");
  const onTeams = guests.people.filter((p) =>
    p.representations.some((r) => r.platform === "teams" && r.type === "guest_account" && r.status === "synced"),
  );
  assert.equal(onTeams.length, 0, "no guest account left on Microsoft Teams");
  const audit = await api("/audit?limit=20");
  assert.ok(audit.entries.some((e) => e.action === "connection.disconnect" && e.target === before.id), "audited");

  // The card says what is kept; connecting the same tenant again brings the connection back.
  await owner.getByRole("link", { name: "Back to the Connect Center" }).click();
  const card = owner.getByRole("region", { name: "Microsoft Teams" });
  await card.getByText(/was disconnected .* connecting the same tenant again restores them/).waitFor();
  await card.getByRole("button", { name: "Connect Microsoft Teams" }).click();
  while (owner.url().startsWith(demo.sim)) {
    await owner.getByLabel(/account/i).first().fill("switchboard.service@acme.example");
    await owner.getByRole("button", { name: "Accept" }).click();
    await owner.waitForLoadState();
  }
  await owner.getByText(/^Connected .*Microsoft Teams/).waitFor();
  const again = (await api("/connections")).connections.filter((c) => c.platform === "teams");
  assert.deepEqual(again.map((c) => [c.id, c.status]), [[before.id, "connected"]], "the same connection, connected");
});

test("no page tripped its Content-Security-Policy", () => {
  assert.deepEqual(refusedByPolicy, []);
});
