"""The simulated Google driven by Google's official Python clients: the Chat client
(`google-apps-chat`), the Workspace Events client (`google-apps-events-subscriptions`), the
Pub/Sub client (`google-cloud-pubsub`), the discovery-based Admin SDK client
(`google-api-python-client`) and google-auth (service-account credentials with domain-wide
delegation, and the verification of Pub/Sub push tokens).

Every client uses its REST transport pointed at the simulator; if the simulator and a client
disagree about the wire, these tests fail.
"""

import base64
import http.server
import json
import queue
import threading
import urllib.request

import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.credentials
import pytest
from google import pubsub_v1
from google.api_core import exceptions
from google.apps import chat_v1
from google.apps import events_subscriptions_v1 as events
from google.oauth2 import id_token, service_account
from googleapiclient import discovery

PLATFORM = "google_chat"
PROJECT = "switchboard-demo"
HUB_SERVICE_ACCOUNT = "switchboard-hub@switchboard-demo.iam.gserviceaccount.com"
HUB_SERVICE_ACCOUNT_ID = "110000000000000000001"
SCOPE = "https://www.googleapis.com/auth/"


def people(sim):
    users = sim.users(PLATFORM)
    admin = next(u for u in users if u["kind"] == "admin")
    members = [u for u in users if u["kind"] == "member"]
    return admin, members


def credentials(sim, email):
    return google.oauth2.credentials.Credentials(token=sim.token(PLATFORM, email))


def chat(sim, creds):
    return chat_v1.ChatServiceClient(
        credentials=creds, transport="rest", client_options={"api_endpoint": sim.base_url + "/google/chat"}
    )


def events_client(sim, creds):
    return events.SubscriptionsServiceClient(
        credentials=creds, transport="rest", client_options={"api_endpoint": sim.base_url + "/google/workspaceevents"}
    )


def pubsub(sim, creds):
    options = {"api_endpoint": sim.base_url + "/google/pubsub"}
    return (
        pubsub_v1.PublisherClient(credentials=creds, transport="rest", client_options=options),
        pubsub_v1.SubscriberClient(credentials=creds, transport="rest", client_options=options),
    )


def set_up_dm(client, other_id):
    return client.set_up_space(
        request=chat_v1.SetUpSpaceRequest(
            space=chat_v1.Space(space_type=chat_v1.Space.SpaceType.DIRECT_MESSAGE),
            memberships=[chat_v1.Membership(member=chat_v1.User(name=f"users/{other_id}", type_=chat_v1.User.Type.HUMAN))],
        )
    )


def test_chat_client_sets_up_a_dm_and_posts_edits_reacts_and_deletes(sim):
    _, members = people(sim)
    ada, bob = members[0], members[1]
    ada_chat, bob_chat = chat(sim, credentials(sim, ada["email"])), chat(sim, credentials(sim, bob["email"]))

    space = set_up_dm(ada_chat, bob["id"])
    assert space.space_type == chat_v1.Space.SpaceType.DIRECT_MESSAGE
    assert set_up_dm(ada_chat, bob["id"]).name == space.name
    found = bob_chat.find_direct_message(request=chat_v1.FindDirectMessageRequest(name=f"users/{ada['id']}"))
    assert found.name == space.name
    with pytest.raises(exceptions.NotFound):
        ada_chat.find_direct_message(request=chat_v1.FindDirectMessageRequest(name=f"users/{members[2]['id']}"))

    first = ada_chat.create_message(
        request=chat_v1.CreateMessageRequest(
            parent=space.name,
            message=chat_v1.Message(text=f"hello <users/{bob['id']}>", thread=chat_v1.Thread(thread_key="k1")),
            message_reply_option=chat_v1.CreateMessageRequest.MessageReplyOption.REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD,
            message_id="client-first",
            request_id="req-1",
        )
    )
    assert first.client_assigned_message_id == "client-first"
    assert first.annotations[0].type_ == chat_v1.AnnotationType.USER_MENTION
    assert first.annotations[0].user_mention.user.name == f"users/{bob['id']}"
    reply = bob_chat.create_message(
        request=chat_v1.CreateMessageRequest(
            parent=space.name,
            message=chat_v1.Message(text="reply", thread=chat_v1.Thread(thread_key="k1")),
            message_reply_option=chat_v1.CreateMessageRequest.MessageReplyOption.REPLY_MESSAGE_OR_FAIL,
        )
    )
    assert reply.thread.name == first.thread.name
    assert reply.thread_reply

    edited = ada_chat.update_message(
        request=chat_v1.UpdateMessageRequest(message=chat_v1.Message(name=first.name, text="edited"), update_mask="text")
    )
    assert edited.text == "edited"
    assert bob_chat.get_message(name=f"{space.name}/messages/client-first").text == "edited"

    reaction = bob_chat.create_reaction(
        request=chat_v1.CreateReactionRequest(parent=first.name, reaction=chat_v1.Reaction(emoji=chat_v1.Emoji(unicode="👍")))
    )
    assert reaction.emoji.unicode == "👍"
    assert ada_chat.get_message(name=first.name).emoji_reaction_summaries[0].reaction_count == 1

    listed = list(ada_chat.list_messages(request=chat_v1.ListMessagesRequest(parent=space.name, page_size=1)))
    assert [m.name for m in listed] == [first.name, reply.name]
    ada_chat.delete_message(name=first.name)
    assert [m.name for m in ada_chat.list_messages(parent=space.name)] == [reply.name]
    with pytest.raises(exceptions.Forbidden):
        ada_chat.delete_message(name=reply.name)
    assert space.name in [s.name for s in bob_chat.list_spaces(request=chat_v1.ListSpacesRequest(page_size=10))]


def test_events_client_subscribes_and_pubsub_client_pulls_the_events(sim):
    admin, members = people(sim)
    ada, bob = members[0], members[1]
    publisher, subscriber = pubsub(sim, credentials(sim, admin["email"]))
    topic = publisher.create_topic(name=f"projects/{PROJECT}/topics/events")
    assert topic.name in [t.name for t in publisher.list_topics(project=f"projects/{PROJECT}")]
    pull = subscriber.create_subscription(name=f"projects/{PROJECT}/subscriptions/pull", topic=topic.name)
    assert subscriber.get_subscription(subscription=pull.name).topic == topic.name

    client = events_client(sim, credentials(sim, ada["email"]))
    created = client.create_subscription(
        subscription=events.Subscription(
            target_resource="//chat.googleapis.com/spaces/-",
            event_types=["google.workspace.chat.message.v1.created"],
            notification_endpoint=events.NotificationEndpoint(pubsub_topic=topic.name),
            payload_options=events.PayloadOptions(include_resource=True),
        )
    ).result()
    assert created.state == events.Subscription.State.ACTIVE
    assert created.authority == f"users/{ada['id']}"
    assert client.get_subscription(name=created.name).uid == created.uid
    listed = list(client.list_subscriptions(filter='event_types:"google.workspace.chat.message.v1.created"'))
    assert [s.name for s in listed] == [created.name]

    bob_chat = chat(sim, credentials(sim, bob["email"]))
    space = set_up_dm(bob_chat, ada["id"])
    message = bob_chat.create_message(parent=space.name, message=chat_v1.Message(text="for the hub"))

    pulled = subscriber.pull(subscription=pull.name, max_messages=10)
    assert len(pulled.received_messages) == 1
    received = pulled.received_messages[0]
    assert received.message.attributes["ce-type"] == "google.workspace.chat.message.v1.created"
    assert json.loads(received.message.data)["message"]["name"] == message.name
    subscriber.acknowledge(subscription=pull.name, ack_ids=[received.ack_id])
    assert not subscriber.pull(subscription=pull.name, max_messages=10).received_messages

    client.delete_subscription(name=created.name).result()
    with pytest.raises(exceptions.NotFound):
        client.get_subscription(name=created.name)


def test_directory_client_lists_users_page_by_page(sim):
    admin, _ = people(sim)
    directory = discovery.build(
        "admin",
        "directory_v1",
        credentials=credentials(sim, admin["email"]),
        static_discovery=True,
        client_options={"api_endpoint": sim.base_url + "/google/"},
    )
    emails = []
    request = directory.users().list(customer="my_customer", maxResults=5, orderBy="email")
    while request is not None:
        page = request.execute()
        emails.extend(user["primaryEmail"] for user in page["users"])
        request = directory.users().list_next(request, page)
    assert sorted(emails) == sorted(u["email"] for u in sim.users(PLATFORM))
    user = directory.users().get(userKey=admin["email"]).execute()
    assert user["isAdmin"] is True


class ChannelReceiver(http.server.BaseHTTPRequestHandler):
    """A Reports API notification channel's address: queues each push's headers and body."""

    pushes = queue.Queue()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        ChannelReceiver.pushes.put((headers, json.loads(body) if body else None))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_):
        pass


def test_reports_client_watches_and_lists_group_membership_activities(sim):
    admin, members = people(sim)
    reports = discovery.build(
        "admin",
        "reports_v1",
        credentials=credentials(sim, admin["email"]),
        static_discovery=True,
        client_options={"api_endpoint": sim.base_url + "/google/"},
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ChannelReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        channel = reports.activities().watch(
            userKey="all",
            applicationName="admin",
            body={
                "id": "directory-sync-1",
                "type": "web_hook",
                "address": f"http://127.0.0.1:{server.server_address[1]}/push",
                "token": "only-the-hub-knows",
            },
        ).execute()
        assert channel["kind"] == "api#channel" and channel["resourceId"]
        headers, body = ChannelReceiver.pushes.get(timeout=10)
        assert headers["x-goog-resource-state"] == "sync" and body is None
        groups = sim.control("GET", f"/groups?platform={PLATFORM}")
        pilots = next(g for g in groups if g["name"] == "Switchboard pilots")
        joiner = members[0]["email"]
        sim.control(
            "POST",
            f"/{PLATFORM}/group-members",
            {"group": pilots["id"], "email": joiner, "action": "add"},
        )
        headers, activity = ChannelReceiver.pushes.get(timeout=10)
        assert headers["x-goog-channel-id"] == "directory-sync-1"
        assert headers["x-goog-channel-token"] == "only-the-hub-knows"
        assert headers["x-goog-resource-state"] == "ADD_GROUP_MEMBER"
        event = activity["events"][0]
        assert event["name"] == "ADD_GROUP_MEMBER"
        assert {"name": "USER_EMAIL", "value": joiner} in event["parameters"]
        listed = reports.activities().list(
            userKey="all", applicationName="admin", eventName="ADD_GROUP_MEMBER"
        ).execute()
        assert listed["items"][0]["id"]["uniqueQualifier"] == activity["id"]["uniqueQualifier"]
        reports.channels().stop(body={"id": channel["id"], "resourceId": channel["resourceId"]}).execute()
        sim.control(
            "POST",
            f"/{PLATFORM}/group-members",
            {"group": pilots["id"], "email": joiner, "action": "remove"},
        )
        with pytest.raises(queue.Empty):
            ChannelReceiver.pushes.get(timeout=1)
    finally:
        server.shutdown()


class Receiver(http.server.BaseHTTPRequestHandler):
    deliveries = queue.Queue()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        Receiver.deliveries.put((self.headers.get("authorization"), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_):
        pass


def test_push_tokens_verify_with_google_auth_against_the_simulator_certs(sim):
    admin, _ = people(sim)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/push"
    audience = "https://hub.example/webhooks/google_chat"
    try:
        publisher, subscriber = pubsub(sim, credentials(sim, admin["email"]))
        topic = publisher.create_topic(name=f"projects/{PROJECT}/topics/pushed")
        subscriber.create_subscription(
            request=pubsub_v1.Subscription(
                name=f"projects/{PROJECT}/subscriptions/pushed",
                topic=topic.name,
                push_config=pubsub_v1.PushConfig(
                    push_endpoint=endpoint,
                    oidc_token=pubsub_v1.PushConfig.OidcToken(service_account_email=HUB_SERVICE_ACCOUNT, audience=audience),
                ),
            )
        )
        publisher.publish(topic=topic.name, messages=[pubsub_v1.PubsubMessage(data=b"hello", attributes={"k": "v"})])
        authorization, envelope = Receiver.deliveries.get(timeout=10)
    finally:
        server.shutdown()
    assert base64.b64decode(envelope["message"]["data"]) == b"hello"
    assert envelope["subscription"] == f"projects/{PROJECT}/subscriptions/pushed"
    token = authorization.removeprefix("Bearer ")
    claims = id_token.verify_token(
        token,
        google.auth.transport.requests.Request(),
        audience=audience,
        certs_url=sim.base_url + "/google/oauth2/v1/certs",
    )
    assert claims["email"] == HUB_SERVICE_ACCOUNT
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["sub"] == HUB_SERVICE_ACCOUNT_ID


def service_account_key(sim, admin_token):
    request = urllib.request.Request(
        f"{sim.base_url}/google/iam/v1/projects/{PROJECT}/serviceAccounts/{HUB_SERVICE_ACCOUNT}/keys",
        data=b"{}",
        method="POST",
        headers={"authorization": f"Bearer {admin_token}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        created = json.loads(response.read())
    return json.loads(base64.b64decode(created["privateKeyData"]))


def test_service_account_credentials_impersonate_once_delegated(sim):
    admin, members = people(sim)
    key = service_account_key(sim, sim.token(PLATFORM, admin["email"]))
    assert key["token_uri"] == sim.base_url + "/google/oauth2/token"
    scopes = [SCOPE + "chat.messages", SCOPE + "chat.spaces"]
    delegated = service_account.Credentials.from_service_account_info(key, scopes=scopes, subject=members[0]["email"])
    with pytest.raises(google.auth.exceptions.RefreshError, match="unauthorized_client"):
        delegated.refresh(google.auth.transport.requests.Request())

    sim.control("POST", f"/{PLATFORM}/delegate", {"client_id": key["client_id"], "scopes": scopes})
    delegated = service_account.Credentials.from_service_account_info(key, scopes=scopes, subject=members[0]["email"])
    delegated.refresh(google.auth.transport.requests.Request())
    assert delegated.token.startswith("ya29.")
    as_user = chat(sim, delegated)
    space = set_up_dm(as_user, members[1]["id"])
    as_user.create_message(parent=space.name, message=chat_v1.Message(text="sent by delegation"))
    assert [m.text for m in chat(sim, credentials(sim, members[1]["email"])).list_messages(parent=space.name)] == [
        "sent by delegation"
    ]
