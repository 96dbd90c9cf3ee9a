// What the browser tests share: the binary, free ports, waiting for a server, and Debian's
// Chromium launched without network access beyond the loopback.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const binary = process.env.SWITCHBOARD_BIN ?? path.join(repo, "target", "debug", "switchboard");

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function waitHealthy(url) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not healthy in time`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/// Starts `switchboard demo` (with `extraArgs`) and resolves with what its banner says, once it
/// is ready.
export async function startDemo(people, extraArgs = []) {
  const [hubPort, simPort] = [await freePort(), await freePort()];
  const demo = spawn(
    binary,
    [
      "demo",
      "--listen",
      `127.0.0.1:${hubPort}`,
      "--sim-listen",
      `127.0.0.1:${simPort}`,
      "--people",
      String(people),
      ...extraArgs,
    ],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  const banner = await new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`the demo was not ready in time:\n${text}`)), 60_000);
    demo.stdout.on("data", (chunk) => {
      text += chunk;
      if (text.includes("Press Ctrl-C to stop.")) {
        clearTimeout(timer);
        resolve(text);
      }
    });
    demo.once("exit", (code) => reject(new Error(`the demo exited with ${code}:\n${text}`)));
  });
  demo.stdout.resume();
  const line = (label) => banner.match(new RegExp(`${label}:\\s+(\\S+)`))?.[1];
  return {
    process: demo,
    banner,
    hub: `http://127.0.0.1:${hubPort}`,
    sim: `http://127.0.0.1:${simPort}`,
    token: line("API token"),
    console: line("Console"),
    dataDir: line("Data"),
  };
}

/// Calls the simulated Slack's Web API at `sim` as the owner of `token`; fails the test unless
/// Slack answers ok.
async function slack(sim, method, token, args) {
  const response = await fetch(`${sim}/slack/api/${method}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: new URLSearchParams(args),
  });
  const answer = await response.json();
  if (answer.ok !== true) throw new Error(`${method}: ${JSON.stringify(answer)}`);
  return answer;
}

/// The "Sync now" link of the newest prompt the hub's Slack app sent this person.
export async function promptLink(sim, email) {
  const { token } = await (
    await fetch(`${sim}/_sim/token`, { method: "POST", body: JSON.stringify({ platform: "slack", email }), headers: { "content-type": "application/json" } })
  ).json();
  const users = await (await fetch(`${sim}/_sim/users?platform=slack`)).json();
  const hub = users.find((u) => u.kind === "bot" && u.display_name === "Switchboard");
  const opened = await slack(sim, "conversations.open", token, { users: hub.id });
  const history = await slack(sim, "conversations.history", token, { channel: opened.channel.id });
  const prompt = history.messages.find((m) => m.user === hub.id && m.text.includes("|Sync now>"));
  if (!prompt) throw new Error(`no prompt for ${email}`);
  return prompt.text.match(/<([^|>]+)\|Sync now>/)[1];
}
