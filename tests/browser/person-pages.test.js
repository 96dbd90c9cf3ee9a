// The pages a person opens from a prompt's "Sync now" link, on a phone against the demo: the
// link's page, the platform's sign-in, the "synced" page, then the spent and the unknown link.
// Each page is styled by the hub's stylesheet (not the browser's defaults), fits 375 px without
// scrolling sideways, has large tap targets, and trips nothing of its Content-Security-Policy.
// Saves screenshots under target/screenshots/ for docs/admin-guide.md.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { launchBrowser, promptLink, repo, startDemo } from "./support.js";

const screenshots = path.join(repo, "target", "screenshots");
const PHONE = { viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

let demo;
let browser;

async function api(route, init = {}) {
  const response = await fetch(`${demo.hub}/api/v1${route}`, {
    ...init,
    headers: { authorization: `Bearer ${demo.token}`, "content-type": "application/json", ...init.headers },
  });
  assert.ok(response.ok, `${route}: ${response.status}`);
  return response.json();
}

/// What the pages' Content-Security-Policy refused, as Chromium reports it on the console and
/// as the pages' `securitypolicyviolation` events say.
const refusedByPolicy = [];

async function phone() {
  const context = await browser.newContext(PHONE);
  context.on("console", (message) => {
    if (message.text().includes("Content Security Policy")) {
      refusedByPolicy.push(`${message.location().url}: ${message.text()}`);
    }
  });
  // Init scripts run in the page's world whatever its policy says.
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      console.error(`Content Security Policy: ${event.violatedDirective} refused ${event.blockedURI}`);
    });
  });
  return context.newPage();
}

/// Checks that the hub's page in `page` wears the console's look and fits a phone, and saves it.
async function checkLooks(page, name) {
  const looks = await page.evaluate(() => {
    const card = document.querySelector(".card");
    const style = (element) => (element ? getComputedStyle(element) : null);
    const buttons = [...document.querySelectorAll("button, a.button, label.choice")].map((b) => b.getBoundingClientRect());
    return {
      viewport: document.querySelector('meta[name="viewport"]')?.content,
      scrollWidth: document.documentElement.scrollWidth,
      font: style(document.body).fontFamily,
      background: style(document.body).backgroundColor,
      card: card && { background: style(card).backgroundColor, radius: style(card).borderTopLeftRadius, right: card.getBoundingClientRect().right },
      primary: style(document.querySelector("button[type=submit], a.button"))?.backgroundColor,
      smallestTap: buttons.length ? Math.min(...buttons.map((b) => b.height)) : null,
    };
  });
  assert.match(looks.viewport ?? "", /width=device-width/, `${name}: a viewport meta tag`);
  assert.ok(looks.scrollWidth <= 375, `${name}: ${looks.scrollWidth} px wide, more than the phone's 375`);
  assert.match(looks.font, /system-ui/, `${name}: the console's typeface`);
  assert.ok(looks.card, `${name}: the message sits on a card`);
  assert.notEqual(looks.card.background, looks.background, `${name}: the card stands out of the page`);
  assert.notEqual(looks.card.radius, "0px", `${name}: the card's corners are rounded`);
  assert.ok(looks.card.right <= 375, `${name}: the card fits the phone`);
  if (looks.smallestTap !== null) {
    assert.ok(looks.smallestTap >= 44, `${name}: tap targets are at least 44 px high, not ${looks.smallestTap}`);
  }
  await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });
  return looks;
}

before(async () => {
  mkdirSync(screenshots, { recursive: true });
  demo = await startDemo(40);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  demo?.process.kill("SIGTERM");
});

test("a prompt's link, the sign-in and its end, on a phone: styled like the console, no sideways scrolling", async () => {
  const { people } = await api("/people?primary=unchosen&limit=1000");
  const person = people.find((p) => p.platforms.join(",") === "slack,teams");
  await api(`/people/${person.id}/primary`, { method: "PUT", body: JSON.stringify({ platform: "slack" }) });
  const synced = await api(`/people/${person.id}/sync/teams`, { method: "POST", body: "{}" });
  assert.equal(synced.prompted, true, JSON.stringify(synced));
  const link = await promptLink(demo.sim, person.email);
  const page = await phone();

  await page.goto(link);
  await page.getByRole("heading", { name: `Hello ${person.display_name}` }).waitFor();
  const looks = await checkLooks(page, "person-sync-now");
  assert.equal(looks.primary, "rgb(5, 80, 174)", "Sync now is the console's blue button");
  assert.equal(await page.getByRole("radio", { name: "Slack" }).isChecked(), true);

  await page.getByRole("button", { name: "Sync now" }).click();
  await page.getByLabel(/^Account/).fill(person.email);
  await page.getByRole("button", { name: "Accept" }).click();
  await page.getByRole("heading", { name: "Synced" }).waitFor();
  await checkLooks(page, "person-synced");

  await page.goto(link);
  await page.getByRole("heading", { name: "Already linked" }).waitFor();
  await checkLooks(page, "person-already-linked");

  await page.goto(`${demo.hub}/sync/not-a-link`);
  await page.getByRole("heading", { name: "This link has expired" }).waitFor();
  await checkLooks(page, "person-expired");
});

test("no person-facing page tripped its Content-Security-Policy", () => {
  assert.deepEqual(refusedByPolicy, []);
});
