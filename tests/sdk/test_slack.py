"""The simulated Slack, driven by Slack's official Python SDK and by a browser-like client.

Every Web API call goes through `slack_sdk.WebClient`; event deliveries are checked with
`slack_sdk.signature.SignatureVerifier`. If the simulator and the SDK disagree about the wire, these
tests fail.
"""

import html.parser
import http.server
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.metadata import Metadata
from slack_sdk.signature import SignatureVerifier

REDIRECT_URI = "https://hub.example/slack/oauth/callback"
BOT_SCOPES = ["chat:write", "im:history", "im:write", "mpim:history", "reactions:read", "users:read"]


def web(sim, token=None):
    return WebClient(token=token, base_url=sim.base_url + "/slack/api/")


def people(sim):
    """The seeded people (not bots, not deactivated), first the primary owner."""
    return [u for u in sim.users("slack") if u["kind"] not in ("bot", "deactivated")]


def error_of(call):
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value.response


# --- a browser, enough for the consent page and the web client ---------------------------------


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    def __init__(self, base_url):
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(CookieJar()), NoRedirects()
        )

    def request(self, url, form=None):
        """Returns (status, headers, text); redirects are returned, not followed."""
        if not url.startswith("http"):
            url = self.base_url + url
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(urllib.request.Request(url, data=data), timeout=30) as response:
                return response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode()

    def sign_in(self, email):
        status, headers, _ = self.request("/slack/signin", {"email": email})
        assert status in (302, 303), status
        return headers


class Forms(html.parser.HTMLParser):
    """The forms of a page: action and fields (hidden and text inputs)."""

    def __init__(self, text):
        super().__init__()
        self.forms = []
        self.codes = {}
        self._code = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "fields": {}})
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""
        elif tag == "code" and attrs.get("id"):
            self._code = attrs["id"]

    def handle_data(self, data):
        if self._code:
            self.codes[self._code] = data

    def handle_endtag(self, tag):
        if tag == "code":
            self._code = None


def config_token(sim, email):
    """An app configuration token from the app settings page, as a person would get one."""
    browser = Browser(sim.base_url)
    browser.sign_in(email)
    status, _, page = browser.request("/slack/apps/tokens", {})
    assert status == 200, page
    codes = Forms(page).codes
    return codes["access-token"], codes["refresh-token"]


def consent(sim, authorize_url, email, decision="allow", state="st4te"):
    """Follows an app's authorize link, signs in as `email` and decides. Returns the status and
    the redirect's query (or the page, when the simulator did not redirect)."""
    browser = Browser(sim.base_url)
    url = authorize_url + "&" + urllib.parse.urlencode({"redirect_uri": REDIRECT_URI, "state": state})
    status, _, page = browser.request(url)
    assert status == 200, page
    form = next(f for f in Forms(page).forms if f["action"] == "/slack/oauth/v2/authorize")
    fields = dict(form["fields"], email=email, decision=decision)
    status, headers, page = browser.request(form["action"], fields)
    if status == 302:
        location = headers["Location"]
        assert location.startswith(REDIRECT_URI), location
        return status, dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    return status, page


# --- an Events API receiver ---------------------------------------------------------------------


class Receiver:
    """A Request URL: answers url_verification and keeps every delivery (body and headers)."""

    def __init__(self, echo_challenge=True):
        self.deliveries = []
        self.echo_challenge = echo_challenge
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                receiver.deliveries.append((dict(self.headers), body))
                payload = json.loads(body)
                answer = b""
                if payload.get("type") == "url_verification":
                    challenge = payload["challenge"] if receiver.echo_challenge else "wrong"
                    answer = json.dumps({"challenge": challenge}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def events(self, predicate, timeout=10):
        """Waits for an event_callback whose event matches; returns (headers, raw body, envelope)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for headers, body in list(self.deliveries):
                envelope = json.loads(body)
                if envelope.get("type") == "event_callback" and predicate(envelope["event"]):
                    return headers, body, envelope
            time.sleep(0.05)
        raise AssertionError(f"no matching event arrived; got {self.deliveries}")


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def manifest(name, request_url=None):
    manifest = {
        "display_information": {"name": name},
        "features": {"bot_user": {"display_name": name, "always_online": True}},
        "oauth_config": {
            "redirect_urls": [REDIRECT_URI],
            "scopes": {"bot": BOT_SCOPES, "user": ["chat:write"]},
        },
    }
    if request_url:
        manifest["settings"] = {
            "event_subscriptions": {
                "request_url": request_url,
                "bot_events": ["message.im", "message.mpim", "reaction_added", "team_join"],
            }
        }
    return manifest


# --- the tests ----------------------------------------------------------------------------------


def test_auth_and_the_directory(sim):
    ada, ben = people(sim)[0], people(sim)[1]
    client = web(sim, sim.token("slack", ada["email"]))
    me = client.auth_test()
    assert me["user_id"] == ada["id"]
    assert me["team_id"].startswith("T")

    info = client.users_info(user=ben["id"])["user"]
    assert info["id"] == ben["id"]
    assert info["real_name"] == ben["display_name"]
    assert info["profile"]["email"] == ben["email"]
    assert info["is_bot"] is False and info["deleted"] is False

    found = client.users_lookupByEmail(email=ben["email"].upper())["user"]
    assert found["id"] == ben["id"]
    assert error_of(lambda: client.users_lookupByEmail(email="nobody@nowhere.example"))["error"] == "users_not_found"
    assert error_of(lambda: client.users_info(user="U0NOBODY0"))["error"] == "user_not_found"

    assert error_of(lambda: web(sim).auth_test())["error"] == "not_authed"
    assert error_of(lambda: web(sim, "xoxp-not-a-token").auth_test())["error"] == "invalid_auth"

    members = client.users_list(limit=100)["members"]
    assert members[0]["id"] == ada["id"] and members[0]["is_admin"] is True
    assert sum(1 for m in members if m["is_bot"]) == 2
    assert sum(1 for m in members if m["deleted"]) == 1


def test_users_list_paginates_to_the_end(sim):
    sim.seed(31769)  # 17 of every 36 people are on each platform: 15,000 on Slack and on Teams
    expected = sim.users("slack")
    assert len([u for u in expected if u["kind"] not in ("bot", "deactivated")]) == 15000
    client = web(sim, sim.token("slack", people(sim)[3]["email"]))

    ids = []
    pages = 0
    for page in client.users_list(limit=1000):  # the SDK follows next_cursor itself
        ids.extend(member["id"] for member in page["members"])
        pages += 1
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == {u["id"] for u in expected}
    assert pages == -(-len(expected) // 1000)

    cursor, seen = None, 0
    while True:
        page = client.users_list(limit=200, cursor=cursor)
        seen += len(page["members"])
        cursor = page["response_metadata"]["next_cursor"]
        if cursor == "":
            break
    assert seen == len(expected)

    assert error_of(lambda: client.users_list())["error"] == "limit_required"
    assert error_of(lambda: client.users_list(limit=10, cursor="bm90IGEgY3Vyc29y"))["error"] == "invalid_cursor"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_people_talk_in_dms_and_group_dms(sim):
    ada, ben, cy, dee = people(sim)[:4]
    a = web(sim, sim.token("slack", ada["email"]))
    b = web(sim, sim.token("slack", ben["email"]))
    c = web(sim, sim.token("slack", cy["email"]))

    dm = a.conversations_open(users=[ben["id"]])["channel"]["id"]
    assert dm.startswith("D")
    again = b.conversations_open(users=ada["id"])
    assert again["channel"]["id"] == dm and again["already_open"] is True
    full = a.conversations_open(users=ben["id"], return_im=True)["channel"]
    assert full["is_im"] is True and full["user"] == ben["id"]
    group = a.conversations_open(users=[ben["id"], cy["id"]])["channel"]
    assert group["id"].startswith("G") and group["is_mpim"] is True
    assert c.conversations_open(users=[ben["id"], ada["id"]])["channel"]["id"] == group["id"]

    posted = a.chat_postMessage(channel=dm, text="Hello Ben")
    ts = posted["ts"]
    assert posted["channel"] == dm and posted["message"]["user"] == ada["id"]
    reply = b.chat_postMessage(channel=dm, text="Hi Ada", thread_ts=ts)
    assert reply["message"]["thread_ts"] == ts

    history = b.conversations_history(channel=dm)["messages"]
    assert [m["text"] for m in history] == ["Hello Ben"]
    assert history[0]["reply_count"] == 1
    thread = a.conversations_replies(channel=dm, ts=ts)["messages"]
    assert [m["text"] for m in thread] == ["Hello Ben", "Hi Ada"]

    assert error_of(lambda: b.chat_update(channel=dm, ts=ts, text="not mine"))["error"] == "cant_update_message"
    updated = a.chat_update(channel=dm, ts=ts, text="Hello, Ben")
    assert updated["message"]["text"] == "Hello, Ben" and "edited" in updated["message"]

    b.reactions_add(channel=dm, timestamp=ts, name="tada")
    assert error_of(lambda: b.reactions_add(channel=dm, timestamp=ts, name="tada"))["error"] == "already_reacted"
    reactions = a.conversations_history(channel=dm)["messages"][0]["reactions"]
    assert reactions == [{"name": "tada", "users": [ben["id"]], "count": 1}]
    b.reactions_remove(channel=dm, timestamp=ts, name="tada")
    assert error_of(lambda: b.reactions_remove(channel=dm, timestamp=ts, name="tada"))["error"] == "no_reaction"

    info = a.conversations_info(channel=group["id"])["channel"]
    assert info["is_mpim"] is True
    assert sorted(a.conversations_members(channel=group["id"])["members"]) == sorted([ada["id"], ben["id"], cy["id"]])

    assert error_of(lambda: c.chat_postMessage(channel=dm, text="let me in"))["error"] == "channel_not_found"
    assert error_of(lambda: c.conversations_history(channel=dm))["error"] == "channel_not_found"

    deleted = a.chat_delete(channel=dm, ts=ts)
    assert deleted["ts"] == ts
    assert error_of(lambda: a.chat_delete(channel=dm, ts=ts))["error"] == "message_not_found"

    many = [p["id"] for p in people(sim)[1:10]]
    deactivated = next(u for u in sim.users("slack") if u["kind"] == "deactivated")
    assert error_of(lambda: a.conversations_open(users=many))["error"] == "too_many_users"
    assert error_of(lambda: a.conversations_open(users="U0NOBODY0"))["error"] == "user_not_found"
    assert error_of(lambda: a.conversations_open(users=deactivated["id"]))["error"] == "user_disabled"
    assert error_of(lambda: a.api_call("conversations.open"))["error"] == "users_list_not_supplied"
    assert error_of(lambda: a.chat_postMessage(channel=dm, text=""))["error"] == "no_text"
    assert error_of(lambda: a.apps_manifest_create(manifest=manifest("X")))["error"] == "not_allowed_token_type"
    assert dee["id"] not in a.conversations_members(channel=dm)["members"]


def test_an_app_is_created_installed_and_receives_signed_events(sim, receiver):
    admin, member, other = people(sim)[0], people(sim)[5], people(sim)[6]
    token, refresh = config_token(sim, member["email"])
    assert token.startswith("xoxe.xoxp-") and refresh.startswith("xoxe-")
    tooling = web(sim, token)

    created = tooling.apps_manifest_create(manifest=manifest("Relay Ada", receiver.url))
    secret = created["credentials"]["signing_secret"]
    client_id = created["credentials"]["client_id"]
    client_secret = created["credentials"]["client_secret"]
    assert created["app_id"].startswith("A")
    verifier = SignatureVerifier(secret)
    headers, body = receiver.deliveries[0]
    assert json.loads(body)["type"] == "url_verification"
    assert verifier.is_valid_request(body, headers)

    status, page = consent(sim, created["oauth_authorize_url"], member["email"])
    assert status == 200 and "admin" in page
    status, query = consent(sim, created["oauth_authorize_url"], admin["email"], decision="cancel")
    assert query == {"error": "access_denied", "state": "st4te"}
    status, query = consent(sim, created["oauth_authorize_url"], admin["email"])
    assert query["state"] == "st4te"

    installed = web(sim).oauth_v2_access(
        client_id=client_id, client_secret=client_secret, code=query["code"], redirect_uri=REDIRECT_URI
    )
    assert installed["token_type"] == "bot"
    assert installed["access_token"].startswith("xoxb-")
    assert installed["app_id"] == created["app_id"]
    assert installed["enterprise"] is None and installed["is_enterprise_install"] is False
    assert installed["team"]["id"].startswith("T")
    assert set(installed["scope"].split(",")) == set(BOT_SCOPES)
    assert installed["authed_user"]["id"] == admin["id"]
    assert installed["authed_user"]["token_type"] == "user"
    assert installed["authed_user"]["access_token"].startswith("xoxp-")
    bot_user = installed["bot_user_id"]
    again = lambda secret: web(sim).oauth_v2_access(client_id=client_id, client_secret=secret, code=query["code"])
    assert error_of(lambda: again(client_secret))["error"] == "invalid_code"
    assert error_of(lambda: again("wrong"))["error"] == "bad_client_secret"
    assert error_of(lambda: web(sim).oauth_v2_access(client_id="1.999", client_secret="x", code="y"))["error"] == "invalid_client_id"

    bot = web(sim, installed["access_token"])
    assert bot.auth_test()["user_id"] == bot_user
    needs = error_of(lambda: bot.users_lookupByEmail(email=admin["email"]))
    assert needs["error"] == "missing_scope" and needs["needed"] == "users:read.email"

    person = web(sim, sim.token("slack", other["email"]))
    dm = person.conversations_open(users=bot_user)["channel"]["id"]
    ts = person.chat_postMessage(channel=dm, text="Hello, relay")["ts"]
    headers, body, envelope = receiver.events(lambda e: e["type"] == "message" and e.get("ts") == ts)
    assert verifier.is_valid_request(body, headers)
    assert envelope["api_app_id"] == created["app_id"]
    assert envelope["token"] == created["credentials"]["verification_token"]
    assert envelope["team_id"] == installed["team"]["id"]
    assert envelope["event_id"].startswith("Ev") and isinstance(envelope["event_time"], int)
    assert envelope["authorizations"][0]["user_id"] == bot_user
    assert envelope["event"]["channel"] == dm and envelope["event"]["channel_type"] == "im"
    assert envelope["event"]["user"] == other["id"] and envelope["event"]["text"] == "Hello, relay"

    person.chat_update(channel=dm, ts=ts, text="Hello again, relay")
    headers, body, envelope = receiver.events(lambda e: e.get("subtype") == "message_changed")
    assert verifier.is_valid_request(body, headers)
    assert envelope["event"]["message"]["text"] == "Hello again, relay"
    assert envelope["event"]["previous_message"]["text"] == "Hello, relay"

    person.reactions_add(channel=dm, timestamp=ts, name="wave")
    _, _, envelope = receiver.events(lambda e: e["type"] == "reaction_added")
    assert envelope["event"]["item"] == {"type": "message", "channel": dm, "ts": ts}
    assert envelope["event"]["item_user"] == other["id"]

    person.chat_delete(channel=dm, ts=ts)
    _, _, envelope = receiver.events(lambda e: e.get("subtype") == "message_deleted")
    assert envelope["event"]["deleted_ts"] == ts

    sent = bot.chat_postMessage(channel=dm, text="Relayed", username="Ada Abara")
    assert "username" not in sent["message"]  # needs chat:write.customize
    assert sent["message"]["bot_id"].startswith("B")

    rotated = web(sim).tooling_tokens_rotate(refresh_token=refresh)
    assert rotated["token"].startswith("xoxe.xoxp-") and rotated["user_id"] == member["id"]
    assert error_of(lambda: web(sim).tooling_tokens_rotate(refresh_token=refresh))["error"] == "invalid_refresh_token"
    web(sim, rotated["token"]).apps_manifest_delete(app_id=created["app_id"])
    assert error_of(lambda: bot.auth_test())["error"] == "token_revoked"


def test_a_manifest_whose_request_url_does_not_answer_is_refused(sim):
    silent = Receiver(echo_challenge=False)
    try:
        token, _ = config_token(sim, people(sim)[2]["email"])
        refused = error_of(lambda: web(sim, token).apps_manifest_create(manifest=manifest("Mute", silent.url)))
        assert refused["error"] == "invalid_manifest"
        assert refused["errors"][0]["pointer"] == "/settings/event_subscriptions/request_url"
        invalid = error_of(lambda: web(sim, token).apps_manifest_validate(manifest={"display_information": {}}))
        assert invalid["errors"][0]["pointer"] == "/display_information/name"
        assert web(sim, token).apps_manifest_validate(manifest=manifest("Fine"))["ok"] is True
    finally:
        silent.close()


def test_rate_limits_answer_429_with_retry_after(sim):
    sim.settings(rate_limits=True)
    client = web(sim, sim.token("slack", people(sim)[0]["email"]))
    for _ in range(30):
        try:
            client.users_list(limit=5)
        except SlackApiError as error:
            response = error.response
            break
    else:
        raise AssertionError("users.list (tier 2) was never throttled")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert response.data == {"ok": False, "error": "ratelimited"}


def test_injected_throttling_speaks_slack(sim):
    sim.set_faults([{"route_prefix": "/slack/api/auth.test", "throttle_rate": 1.0, "retry_after_secs": 7}])
    response = error_of(lambda: web(sim, sim.token("slack", people(sim)[0]["email"])).auth_test())
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response["error"] == "ratelimited"


def test_message_metadata_is_posted_and_read_back(sim):
    ada, ben = people(sim)[:2]
    a = web(sim, sim.token("slack", ada["email"]))
    dm = a.conversations_open(users=[ben["id"]])["channel"]["id"]

    as_json = {"event_type": "relay_copy", "event_payload": {"key": "k-1", "attempt": 1}}
    posted = a.chat_postMessage(channel=dm, text="first", metadata=as_json)
    assert posted["message"]["metadata"] == as_json
    model = Metadata(event_type="relay_copy", event_payload={"key": "k-2"})
    a.chat_postMessage(channel=dm, text="second", metadata=model)
    as_form = {"event_type": "relay_copy", "event_payload": {"key": "k-3"}}
    a.api_call(
        "chat.postMessage",
        data={"channel": dm, "text": "third", "metadata": json.dumps(as_form)},
    )

    plain = a.conversations_history(channel=dm)["messages"]
    assert [m["text"] for m in plain] == ["third", "second", "first"]
    assert all("metadata" not in m for m in plain)
    full = a.conversations_history(channel=dm, include_all_metadata=True)["messages"]
    assert [m["metadata"]["event_payload"]["key"] for m in full] == ["k-3", "k-2", "k-1"]

    oldest = posted["ts"]
    newer = a.conversations_history(channel=dm, oldest=oldest, limit=1)
    assert [m["text"] for m in newer["messages"]] == ["third"] and newer["has_more"] is True
    rest = a.conversations_history(
        channel=dm, oldest=oldest, limit=1, cursor=newer["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in rest["messages"]] == ["second"] and rest["has_more"] is False
    both = a.conversations_history(channel=dm, oldest=oldest, inclusive=True)["messages"]
    assert [m["text"] for m in both] == ["third", "second", "first"]

    broken = error_of(lambda: a.chat_postMessage(channel=dm, text="x", metadata={"event_payload": {}}))
    assert broken["error"] == "invalid_metadata_format"


def test_a_file_is_uploaded_and_shared_with_a_comment(sim):
    ada, ben = people(sim)[:2]
    a = web(sim, sim.token("slack", ada["email"]))
    b = web(sim, sim.token("slack", ben["email"]))
    dm = a.conversations_open(users=[ben["id"]])["channel"]["id"]

    # The SDK's own three steps: an upload URL, the bytes posted to it, the upload completed.
    shared = a.files_upload_v2(
        channel=dm, content="a,b\n1,2\n", filename="plan.csv", title="The plan",
        initial_comment="the plan, as promised",
    )
    assert shared["file"]["id"].startswith("F") and shared["file"]["title"] == "The plan"

    message = b.conversations_history(channel=dm)["messages"][0]
    assert message["text"] == "the plan, as promised" and message["user"] == ada["id"]
    assert message["subtype"] == "file_share" and message["upload"] is True
    [file] = message["files"]
    assert (file["id"], file["name"], file["title"], file["size"]) == (
        shared["file"]["id"], "plan.csv", "The plan", len("a,b\n1,2\n"),
    )

    never_sent = a.files_getUploadURLExternal(filename="x.txt", length=3)
    incomplete = error_of(lambda: a.files_completeUploadExternal(
        files=[{"id": never_sent["file_id"]}], channel_id=dm,
    ))
    assert incomplete["error"] == "file_upload_not_complete"
    assert error_of(lambda: b.files_completeUploadExternal(
        files=[{"id": shared["file"]["id"]}], channel_id=dm,
    ))["error"] == "file_not_found"


def test_injected_throttling_holds_one_channel(sim):
    ada, ben, cy = people(sim)[:3]
    a = web(sim, sim.token("slack", ada["email"]))
    held = a.conversations_open(users=[ben["id"]])["channel"]["id"]
    free = a.conversations_open(users=[cy["id"]])["channel"]["id"]
    sim.set_faults(
        [
            {
                "route_prefix": "/slack/api/chat.postMessage",
                "channel": held,
                "throttle_rate": 1.0,
                "retry_after_secs": 5,
                "duration_secs": 0.5,
            }
        ]
    )
    response = error_of(lambda: a.chat_postMessage(channel=held, text="held"))
    assert response.status_code == 429 and response.headers["Retry-After"] == "5"
    assert a.chat_postMessage(channel=free, text="free")["ok"] is True
    time.sleep(0.6)
    assert a.chat_postMessage(channel=held, text="released")["ok"] is True
    assert sim.control("GET", "/faults") == []


def test_the_web_client_is_usable_and_fires_events(sim, receiver):
    admin, ben = people(sim)[0], people(sim)[1]
    token, _ = config_token(sim, admin["email"])
    created = web(sim, token).apps_manifest_create(manifest=manifest("Relay Ben", receiver.url))
    _, query = consent(sim, created["oauth_authorize_url"], admin["email"])
    installed = web(sim).oauth_v2_access(
        client_id=created["credentials"]["client_id"],
        client_secret=created["credentials"]["client_secret"],
        code=query["code"],
        redirect_uri=REDIRECT_URI,
    )
    bot_user = installed["bot_user_id"]

    browser = Browser(sim.base_url)
    status, _, page = browser.request("/slack/")
    assert status == 200 and "Sign in" in page
    browser.sign_in(ben["email"])
    status, headers, _ = browser.request("/slack/open", {"to": bot_user})
    assert status in (302, 303)
    conversation = headers["Location"]
    browser.request(conversation + "/post", {"text": "typed in the browser"})
    headers, body, envelope = receiver.events(lambda e: e.get("text") == "typed in the browser")
    assert SignatureVerifier(created["credentials"]["signing_secret"]).is_valid_request(body, headers)
    assert envelope["event"]["user"] == ben["id"]

    status, _, page = browser.request(conversation)
    assert status == 200 and "typed in the browser" in page
    edit = next(f for f in Forms(page).forms if f["action"].endswith("/edit"))
    browser.request(edit["action"], dict(edit["fields"], text="edited in the browser"))
    receiver.events(lambda e: e.get("subtype") == "message_changed")
    history = web(sim, installed["access_token"]).conversations_history(channel=conversation.rsplit("/", 1)[1])
    assert history["messages"][0]["text"] == "edited in the browser"

    admin_browser = Browser(sim.base_url)
    admin_browser.sign_in(admin["email"])
    admin_browser.request("/slack/admin/members", {"email": "new.hire@acme.example", "real_name": "New Hire"})
    _, _, envelope = receiver.events(lambda e: e["type"] == "team_join")
    assert envelope["event"]["user"]["real_name"] == "New Hire"
    assert any(u["email"] == "new.hire@acme.example" for u in sim.users("slack"))
