"""The simulated Webex driven by `webexpythonsdk` (2.0.6), the community's official Python SDK.

The SDK is pointed at the simulator with base_url (trailing slash kept); if the simulator and
the SDK disagree about the wire (paths, 200 on POST, 204 on DELETE, `Link` paging, errors), these
tests fail.
"""

import hashlib
import hmac
import http.server
import json
import queue
import threading
import urllib.parse

import pytest
import requests
from webexpythonsdk import WebexAPI
from webexpythonsdk.exceptions import ApiError

PLATFORM = "webex"
INTEGRATION_CLIENT_ID = "C5b1e5d2a0c4f4e8a9d7c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1"
INTEGRATION_CLIENT_SECRET = "9d1c5e3a7b2f4c6d8e0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e"
SERVICE_APP_CLIENT_ID = "Cf0e1d2c3b4a5968778695a4b3c2d1e0f9e8d7c6b5a4938271605f4e3d2c1b0a9"
SERVICE_APP_CLIENT_SECRET = "4e6a8c0e2a4c6e8a0c2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e4a6c8e0a2c4e6a"
REDIRECT_URI = "https://hub.example/callback"


def base_url(sim):
    return sim.base_url + "/webex/v1/"


def api(sim, token):
    return WebexAPI(access_token=token, base_url=base_url(sim), wait_on_rate_limit=False)


def people(sim):
    users = sim.users(PLATFORM)
    admin = next(u for u in users if u["kind"] == "admin")
    members = [u for u in users if u["kind"] == "member"]
    service = next(u for u in users if u["kind"] == "service")
    return admin, members, service


def as_person(sim, user):
    return api(sim, sim.token(PLATFORM, user["email"]))


def test_people_are_listed_and_paged_through_link_headers(sim):
    admin, members, _ = people(sim)
    everyone = sim.users(PLATFORM)
    listed = list(as_person(sim, admin).people.list(max=7))
    assert len(listed) == len(everyone)
    assert len({person.id for person in listed}) == len(everyone)
    ada = as_person(sim, members[0])
    assert ada.people.me().emails == [members[0]["email"]]
    found = list(ada.people.list(email=members[1]["email"]))
    assert [person.id for person in found] == [members[1]["id"]]


def test_a_one_to_one_message_by_email_makes_the_direct_room(sim):
    _, members, _ = people(sim)
    ada, bob = as_person(sim, members[0]), as_person(sim, members[1])
    first = ada.messages.create(toPersonEmail=members[1]["email"], text="hi", markdown="**hi**")
    assert first.roomType == "direct"
    assert first.html == "<strong>hi</strong>"
    second = ada.messages.create(toPersonId=members[1]["id"], text="again")
    assert second.roomId == first.roomId
    rooms = list(bob.rooms.list(type="direct"))
    assert [room.id for room in rooms] == [first.roomId]
    direct = list(bob.messages.list_direct(personEmail=members[0]["email"]))
    assert [m.id for m in direct] == [second.id, first.id]


def test_messages_are_paged_threaded_edited_and_deleted(sim):
    _, members, _ = people(sim)
    ada, bob = as_person(sim, members[0]), as_person(sim, members[1])
    room = ada.rooms.create("SDK room")
    ada.memberships.create(room.id, personEmail=members[1]["email"])
    memberships = list(bob.memberships.list(roomId=room.id, max=1))
    assert {m.personId for m in memberships} == {members[0]["id"], members[1]["id"]}

    sent = [ada.messages.create(roomId=room.id, text=f"m{n}") for n in range(5)]
    listed = list(bob.messages.list(room.id, max=2))
    assert [m.id for m in listed] == [m.id for m in reversed(sent)]

    reply = bob.messages.create(roomId=room.id, parentId=sent[0].id, text="threaded")
    assert reply.parentId == sent[0].id
    with pytest.raises(ApiError) as refused:
        ada.messages.create(roomId=room.id, parentId=reply.id, text="deeper")
    assert refused.value.status_code == 400
    assert [m.id for m in bob.messages.list(room.id, parentId=sent[0].id)] == [reply.id]

    with pytest.raises(ApiError) as not_author:
        bob.messages.update(sent[1].id, roomId=room.id, text="not mine")
    assert not_author.value.status_code == 403
    edited = ada.messages.update(sent[1].id, roomId=room.id, markdown="**edited**")
    assert edited.text == "edited"
    assert bob.messages.get(sent[1].id).text == "edited"

    ada.messages.delete(sent[2].id)
    with pytest.raises(ApiError) as gone:
        bob.messages.get(sent[2].id)
    assert gone.value.status_code == 404
    ada.memberships.delete(next(m.id for m in memberships if m.personId == members[1]["id"]))
    with pytest.raises(ApiError) as left:
        bob.rooms.get(room.id)
    assert left.value.status_code == 404


class Receiver(http.server.BaseHTTPRequestHandler):
    deliveries = queue.Queue()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        Receiver.deliveries.put((self.headers.get("x-spark-signature"), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_):
        pass


@pytest.fixture
def receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while not Receiver.deliveries.empty():
        Receiver.deliveries.get_nowait()
    yield f"http://127.0.0.1:{server.server_address[1]}/webex"
    server.shutdown()


def next_verified(secret):
    signature, body = Receiver.deliveries.get(timeout=5)
    assert signature == hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return json.loads(body)


def test_webhooks_deliver_signed_events_that_the_sdk_can_follow(sim, receiver):
    _, members, _ = people(sim)
    ada, bob = as_person(sim, members[0]), as_person(sim, members[1])
    secret = "somesupersecretphrase"
    webhook = bob.webhooks.create("hub", receiver, "messages", "all", secret=secret)
    assert [w.id for w in bob.webhooks.list()] == [webhook.id]

    sent = ada.messages.create(toPersonEmail=members[1]["email"], text="hello")
    created = next_verified(secret)
    assert (created["resource"], created["event"]) == ("messages", "created")
    assert created["data"]["id"] == sent.id
    assert "text" not in created["data"]
    assert bob.messages.get(created["data"]["id"]).text == "hello"

    ada.messages.update(sent.id, roomId=sent.roomId, text="hello again")
    assert next_verified(secret)["event"] == "updated"
    ada.messages.delete(sent.id)
    assert next_verified(secret)["event"] == "deleted"

    renamed = bob.webhooks.update(webhook.id, name="renamed", targetUrl=receiver)
    assert renamed.name == "renamed"
    bob.webhooks.delete(webhook.id)
    with pytest.raises(ApiError) as gone:
        bob.webhooks.get(webhook.id)
    assert gone.value.status_code == 404


def test_integration_oauth_and_service_app_guests(sim):
    admin, members, service = people(sim)
    consent = requests.post(
        sim.base_url + "/webex/v1/authorize",
        data={
            "client_id": INTEGRATION_CLIENT_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "spark:all spark:kms",
            "state": "s1",
            "email": service["email"],
            "decision": "accept",
        },
        allow_redirects=False,
    )
    assert consent.status_code == 303
    query = urllib.parse.parse_qs(urllib.parse.urlparse(consent.headers["location"]).query)
    tokens = api(sim, "unused").access_tokens.get(
        INTEGRATION_CLIENT_ID, INTEGRATION_CLIENT_SECRET, query["code"][0], REDIRECT_URI
    )
    assert tokens.expires_in == 1209600
    hub = api(sim, tokens.access_token)
    assert hub.people.me().id == service["id"]
    teams = list(hub.teams.list())
    assert teams
    assert list(hub.team_memberships.list(teams[0].id, max=10))
    refreshed = api(sim, "unused").access_tokens.refresh(
        INTEGRATION_CLIENT_ID, INTEGRATION_CLIENT_SECRET, tokens.refresh_token
    )
    assert api(sim, refreshed.access_token).people.me().id == service["id"]

    authorised = requests.post(
        sim.base_url + "/webex/admin/service-app",
        data={"email": admin["email"], "decision": "authorise"},
        allow_redirects=False,
    )
    assert authorised.status_code == 303
    app = requests.post(
        base_url(sim) + "access_token",
        data={
            "grant_type": "client_credentials",
            "client_id": SERVICE_APP_CLIENT_ID,
            "client_secret": SERVICE_APP_CLIENT_SECRET,
        },
    ).json()["access_token"]

    def issue(name):
        return requests.post(
            base_url(sim) + "guests/token",
            json={"subject": "visitor-1", "displayName": name},
            headers={"authorization": f"Bearer {app}"},
        ).json()

    first, again = issue("Visitor"), issue("Visitor Renamed")
    assert again["id"] == first["id"]
    guest = api(sim, again["accessToken"])
    assert guest.people.me().displayName == "Visitor Renamed"
    sent = guest.messages.create(toPersonEmail=members[0]["email"], text="from a guest")
    assert as_person(sim, members[0]).messages.get(sent.id).personId == first["id"]
