// Zoom's official Node SDK, @zoom/rivet 0.4.0, driven against the simulated Zoom: the proof
// that the simulator speaks Zoom's wire format. Run with the simulator's URL:
//   ZOOM_SIM_URL=http://127.0.0.1:8090 npm test
// The simulator must serve /_sim/users and /_sim/token beside /zoom/ (the simulator server
// does; so does the crate's in-process test `the_official_sdk_speaks_with_the_simulator`).
//
// Rivet sends OAuth to https://zoom.us whatever its base URL (sdk-wire-facts §3.1), so the
// tokens come from the simulator's own token endpoint and reach Rivet through a token store.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { TeamChatClient, TeamChatS2SAuthClient } from "@zoom/rivet/teamchat";
import { UsersS2SAuthClient } from "@zoom/rivet/users";
import { ChatbotClient } from "@zoom/rivet/chatbot";

const SIM = process.env.ZOOM_SIM_URL;
if (!SIM) {
  throw new Error("set ZOOM_SIM_URL to the simulator's URL, e.g. http://127.0.0.1:8090");
}
const BASE_URL = `${SIM}/zoom/v2`;

// The simulator's fixed Marketplace credentials (docs/simulator-zoom.md).
const ACCOUNT_ID = "SbSimZoomAccount000001";
const S2S = { id: "SbS2SClient0zoom000001", secret: "s2sSecret0f2b6a1e9c4d8e7f3a5b1c0d2e4f6a8b", token: "s2sToken6a1e9c4d8e7f3a5b" };
const BOT = { id: "SbBotClient0zoom000001", secret: "botSecret8e7f3a5b1c0d2e4f6a8b0f2b6a1e9c4d", token: "botToken7f3a5b1c0d2e4f6a" };

let owner, alice, bob;
let s2sToken, aliceToken, botToken;
const started = [];

const inAnHour = () => new Date(Date.now() + 3_500_000).toISOString();
const store = (token) => ({
  getLatestToken: () => token,
  storeToken: () => {},
});

async function form(path, pairs, headers = {}) {
  const body = new URLSearchParams(pairs);
  return fetch(`${SIM}${path}`, {
    method: "POST",
    body,
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  });
}

async function grant(client, pairs) {
  const response = await fetch(`${SIM}/zoom/oauth/token`, {
    method: "POST",
    body: new URLSearchParams(pairs),
    headers: {
      authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
    },
  });
  assert.equal(response.status, 200);
  return (await response.json()).access_token;
}

async function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves with the first call of the listener `register` is given, or rejects in 5 s. */
function nextCall(register) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no event within 5 s")), 5000);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

before(async () => {
  const users = await (await fetch(`${SIM}/_sim/users?platform=zoom`)).json();
  owner = users.find((u) => u.kind === "owner");
  const members = users.filter((u) => u.kind === "member");
  [alice, bob] = members;
  for (const app of ["server_to_server", "user", "chatbot"]) {
    const created = await form("/zoom/admin/apps", { email: owner.email, app });
    assert.equal(created.status, 303);
  }
  s2sToken = await grant(S2S, { grant_type: "account_credentials", account_id: ACCOUNT_ID });
  botToken = await grant(BOT, { grant_type: "client_credentials" });
  const minted = await fetch(`${SIM}/_sim/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ platform: "zoom", email: alice.email }),
  });
  aliceToken = (await minted.json()).token;
});

after(async () => {
  for (const client of started) {
    await client.receiver?.stop?.();
  }
});

test("the users client lists the account's active users page by page", async () => {
  const client = new UsersS2SAuthClient({
    clientId: S2S.id, clientSecret: S2S.secret, accountId: ACCOUNT_ID,
    tokenStore: store({ accessToken: s2sToken, expirationTimeIso: inAnHour(), scopes: [] }),
    baseUrl: BASE_URL, disableReceiver: true,
  });
  const all = [];
  let next_page_token = "";
  let pages = 0;
  do {
    const { statusCode, data } = await client.endpoints.users.listUsers({
      query: { status: "active", page_size: 7, next_page_token },
    });
    assert.equal(statusCode, 200);
    all.push(...data.users);
    next_page_token = data.next_page_token;
    pages += 1;
  } while (next_page_token);
  const users = await (await fetch(`${SIM}/_sim/users?platform=zoom`)).json();
  const active = users.filter((u) => u.kind !== "deactivated");
  assert.equal(all.length, active.length);
  assert.equal(new Set(all.map((u) => u.id)).size, active.length);
  assert.equal(pages, Math.ceil(active.length / 7));
  assert.ok(all.every((u) => u.email && u.display_name && u.status === "active"));
});

test("the Team Chat client sends, replies, lists, gets, edits, reacts and deletes", async () => {
  const client = new TeamChatClient({
    clientId: "c", clientSecret: "s",
    tokenStore: store({ accessToken: aliceToken, refreshToken: "unused", expirationTimeIso: inAnHour(), scopes: [] }),
    // Rivet's user-OAuth client reads these even with its receiver off; nothing is installed.
    installerOptions: { redirectUri: "http://127.0.0.1/unused", stateStore: "unused-state-secret" },
    baseUrl: BASE_URL, disableReceiver: true,
  });
  const messages = client.endpoints.chatMessages;
  const sent = await messages.sendChatMessage({
    path: { userId: "me" },
    body: { message: "Hello from Rivet", to_contact: bob.email },
  });
  assert.equal(sent.statusCode, 201);
  const id = sent.data.id;
  const reply = await messages.sendChatMessage({
    path: { userId: "me" },
    body: { message: "a reply", to_contact: bob.email, reply_main_message_id: id },
  });
  const listed = await messages.listUsersChatMessages({
    path: { userId: "me" },
    query: { to_contact: bob.email, page_size: 1 },
  });
  assert.equal(listed.data.messages.length, 1);
  assert.equal(listed.data.messages[0].id, reply.data.id);
  assert.ok(listed.data.next_page_token);
  const older = await messages.listUsersChatMessages({
    path: { userId: "me" },
    query: { to_contact: bob.email, page_size: 1, next_page_token: listed.data.next_page_token },
  });
  assert.equal(older.data.messages[0].id, id);
  const edited = await messages.updateMessage({
    path: { userId: "me", messageId: id },
    body: { message: "Hello again", to_contact: bob.email },
  });
  assert.equal(edited.statusCode, 204);
  const reacted = await messages.reactToChatMessage({
    path: { userId: "me", messageId: id },
    body: { action: "add", emoji: "U+1F44D", to_contact: bob.email },
  });
  assert.equal(reacted.statusCode, 204);
  const got = await messages.getMessage({
    path: { userId: "me", messageId: id },
    query: { to_contact: bob.email },
  });
  assert.equal(got.data.message, "Hello again");
  assert.equal(got.data.reactions[0].emoji, "U+1F44D");
  assert.equal(got.data.reactions[0].total_count, 1);
  const deleted = await messages.deleteMessage({
    path: { userId: "me", messageId: id },
    query: { to_contact: bob.email },
  });
  assert.equal(deleted.statusCode, 204);
  await assert.rejects(
    messages.getMessage({ path: { userId: "me", messageId: id }, query: { to_contact: bob.email } }),
    (error) => error.name === "ApiResponseError" && /404/.test(error.message),
  );
  await assert.rejects(
    messages.sendChatMessage({ path: { userId: "me" }, body: { message: "hi", to_contact: "nobody@acme.example" } }),
    (error) => /\[404\/4130\]/.test(error.message),
  );
});

test("Rivet's receiver validates the endpoint and accepts the signed events", async () => {
  const port = await freePort();
  const client = new TeamChatS2SAuthClient({
    clientId: S2S.id, clientSecret: S2S.secret, accountId: ACCOUNT_ID,
    tokenStore: store({ accessToken: s2sToken, expirationTimeIso: inAnHour(), scopes: [] }),
    baseUrl: BASE_URL, webhooksSecretToken: S2S.token, port,
  });
  await client.start();
  started.push(client);
  // The Marketplace saves the endpoint only once Rivet answered the validation challenge.
  const subscribed = await form("/zoom/admin/events", [
    ["email", owner.email], ["app", "server_to_server"],
    ["url", `http://127.0.0.1:${port}/zoom/events`],
    ["event", "team_chat.dm_message_posted"], ["event", "team_chat.channel_message_posted"],
  ]);
  assert.equal(subscribed.status, 303, await subscribed.text());
  const posted = nextCall((done) => client.webEventConsumer.event("team_chat.dm_message_posted", done));
  // The account's app writes as Alice, by her id.
  const text = "Événement / <signé> 👍 \"quoted\"\nnext line";
  const sent = await client.endpoints.chatMessages.sendChatMessage({
    path: { userId: alice.id },
    body: { message: text, to_contact: bob.email },
  });
  const event = await posted;
  assert.equal(event.payload.object.message_id, sent.data.id);
  assert.equal(event.payload.object.message, text);
  assert.equal(event.payload.operator, alice.email);
  assert.equal(event.payload.object.contact_email, bob.email);
  const channel = await client.endpoints.chatChannels.createChannel({
    path: { userId: alice.id },
    body: { name: "Rivet", type: 4, members: [{ email: bob.email }] },
  });
  assert.equal(channel.statusCode, 201);
  const inChannel = nextCall((done) => client.webEventConsumer.onChannelMessagePosted(/hello/, done));
  await client.endpoints.chatMessages.sendChatMessage({
    path: { userId: alice.id },
    body: { message: "hello channel", to_channel: channel.data.id },
  });
  const channelEvent = await inChannel;
  assert.equal(channelEvent.payload.object.channel_id, channel.data.id);
  // The receiver is no pushover: the same event with a wrong signature is refused.
  const forged = await fetch(`http://127.0.0.1:${port}/zoom/events`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-zm-request-timestamp": "1700000000", "x-zm-signature": "v0=00" },
    body: JSON.stringify(event),
  });
  assert.equal(forged.status, 400);
});

test("the chatbot hears a user through Rivet's receiver, answers with say(), edits and deletes", async () => {
  const port = await freePort();
  const bot = new ChatbotClient({
    clientId: BOT.id, clientSecret: BOT.secret,
    tokenStore: store({ accessToken: botToken, expirationTimeIso: inAnHour(), scopes: [] }),
    baseUrl: BASE_URL, webhooksSecretToken: BOT.token, port,
  });
  await bot.start();
  started.push(bot);
  const subscribed = await form("/zoom/admin/events", [
    ["email", owner.email], ["app", "chatbot"],
    ["url", `http://127.0.0.1:${port}/zoom/events`], ["event", "bot_notification"],
  ]);
  assert.equal(subscribed.status, 303, await subscribed.text());
  const answered = nextCall((done) =>
    bot.webEventConsumer.onSlashCommand(/^ping/, async ({ say, payload }) => {
      const reply = await say(`pong to ${payload.userName}`);
      done({ payload, reply });
    }),
  );
  // Alice writes to the chatbot in the web view.
  const signedIn = await form("/zoom/signin", { email: alice.email });
  const cookie = signedIn.headers.get("set-cookie").split(";")[0];
  const wrote = await form("/zoom/chat/send", { bot: "1", message: "ping" }, { cookie });
  assert.equal(wrote.status, 303);
  const { payload, reply } = await answered;
  assert.equal(payload.cmd, "ping");
  assert.equal(reply.statusCode, 201);
  const chat = async () => (await fetch(`${SIM}/zoom/chat?bot=1`, { headers: { cookie } })).text();
  const id = reply.data.message_id;
  assert.ok(id);
  assert.equal(reply.data.to_jid, payload.toJid);
  let page = await chat();
  assert.match(page, /pong to /);
  assert.ok(page.includes(`id="m${id}"`));
  // Rivet's own Chatbot API methods edit the answer, then delete it.
  const messages = bot.endpoints.messages;
  const edited = await messages.editChatbotMessage({
    path: { message_id: id },
    body: {
      robot_jid: payload.robotJid, account_id: payload.accountId, user_jid: payload.userJid,
      content: { head: { text: "Pong" }, body: [{ type: "message", text: `edited for ${payload.userName}` }] },
    },
  });
  assert.equal(edited.statusCode, 200);
  assert.equal(edited.data.message_id, id);
  assert.equal(edited.data.robot_jid, payload.robotJid);
  assert.equal(edited.data.to_jid, payload.toJid);
  assert.equal(edited.data.user_jid, payload.userJid);
  assert.equal(edited.data.sent_time, reply.data.sent_time);
  page = await chat();
  assert.ok(page.includes(`id="m${id}"`));
  assert.match(page, /Pong<br>edited for /);
  assert.match(page, /· edited/);
  assert.doesNotMatch(page, /pong to /);
  const deleted = await messages.deleteChatbotMessage({
    path: { message_id: id },
    query: { robot_jid: payload.robotJid, account_id: payload.accountId, user_jid: payload.userJid },
  });
  assert.equal(deleted.statusCode, 200);
  assert.equal(deleted.data.message_id, id);
  assert.equal(deleted.data.robot_jid, payload.robotJid);
  assert.equal(deleted.data.to_jid, payload.toJid);
  assert.equal(deleted.data.user_jid, payload.userJid);
  assert.ok(Date.parse(deleted.data.sent_time) >= Date.parse(reply.data.sent_time));
  page = await chat();
  assert.ok(!page.includes(`id="m${id}"`));
  assert.doesNotMatch(page, /edited for /);
  // What Alice wrote stays; the deleted answer is gone for Rivet too.
  assert.match(page, />ping</);
  await assert.rejects(
    messages.deleteChatbotMessage({
      path: { message_id: id },
      query: { robot_jid: payload.robotJid, user_jid: payload.userJid },
    }),
    (error) => error.name === "ApiResponseError" && /404/.test(error.message),
  );
});
