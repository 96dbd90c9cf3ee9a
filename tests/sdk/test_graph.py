"""The simulated Microsoft Graph and Entra ID, driven by Microsoft's official Python SDK
(`msgraph-sdk`, Kiota-based) and, for sign-in, by a browser-like client over plain HTTP.

Every Graph call goes through `GraphServiceClient` pointed at `/graph/v1.0`; errors are parsed by
the SDK into `ODataError`. If the simulator and the SDK disagree about the wire, these tests fail.
"""

import asyncio
import base64
import datetime
import hashlib
import http.server
import json
import queue
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.chats.item.messages.messages_request_builder import MessagesRequestBuilder
from msgraph.generated.chats.item.messages.item.set_reaction.set_reaction_post_request_body import (
    SetReactionPostRequestBody,
)
from msgraph.generated.chats.item.messages.item.unset_reaction.unset_reaction_post_request_body import (
    UnsetReactionPostRequestBody,
)
from msgraph.generated.models.aad_user_conversation_member import AadUserConversationMember
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.chat import Chat
from msgraph.generated.models.chat_message import ChatMessage
from msgraph.generated.models.chat_message_attachment import ChatMessageAttachment
from msgraph.generated.models.chat_message_mention import ChatMessageMention
from msgraph.generated.models.chat_message_mentioned_identity_set import (
    ChatMessageMentionedIdentitySet,
)
from msgraph.generated.models.chat_type import ChatType
from msgraph.generated.models.identity import Identity
from msgraph.generated.models.invitation import Invitation
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.models.user import User
from msgraph.generated.groups.delta.delta_request_builder import (
    DeltaRequestBuilder as GroupsDeltaRequestBuilder,
)
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter

# Documented in docs/simulator-microsoft.md.
CUSTOMER_TENANT = "5b000000-c057-4000-8000-000000000001"
INTEROP_TENANT = "5b000000-c057-4000-8000-000000000002"
INTEROP_DOMAIN = "switchboard-interop.example"
HUB_APP_ID = "5b000000-a990-4000-8000-000000000001"
HUB_APP_SECRET = "sim~hub.app-secret_0nly-valid-in-the-simulator"
SERVICE_UPN = "switchboard.service@acme.example"
REDIRECT_URI = "https://hub.example/teams/oauth/callback"


# One loop for the whole module: the SDK's HTTP connections belong to the loop that opened them.
LOOP = asyncio.new_event_loop()


def run(coroutine):
    return LOOP.run_until_complete(coroutine)


class StaticToken(AccessTokenProvider):
    def __init__(self, token):
        self.token = token

    async def get_authorization_token(self, uri, additional_authentication_context=None):
        return self.token

    def get_allowed_hosts_validator(self):
        return AllowedHostsValidator(["127.0.0.1"])


def graph(sim, token):
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(token)))
    adapter.base_url = sim.base_url + "/graph/v1.0"
    return GraphServiceClient(request_adapter=adapter)


def odata_error(coroutine):
    with pytest.raises(ODataError) as raised:
        run(coroutine)
    return raised.value


def members(sim):
    """Enabled member accounts of the customer tenant, the service user excluded."""
    return [
        u
        for u in sim.users("teams")
        if u["kind"] == "member" and u["email"].lower() != SERVICE_UPN
    ]


# --- a browser, enough for Entra's consent pages -----------------------------------------------


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browse(sim, path, form=None):
    """Returns (status, headers, text); redirects are returned, not followed."""
    opener = urllib.request.build_opener(NoRedirects())
    data = None if form is None else urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(sim.base_url + path, data=data)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def redirect_query(headers):
    location = headers["Location"]
    assert location.startswith(REDIRECT_URI), location
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def token_request(sim, tenant, form):
    request = urllib.request.Request(
        f"{sim.base_url}/login/{tenant}/oauth2/v2.0/token",
        data=urllib.parse.urlencode(form).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def sign_in(sim, login, scope, decision="accept"):
    """Drives the authorize page like a browser; returns (redirect query, code verifier)."""
    verifier, challenge = pkce_pair()
    params = {
        "client_id": HUB_APP_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": "st-42",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    path = f"/login/{CUSTOMER_TENANT}/oauth2/v2.0/authorize"
    status, _, page = browse(sim, path + "?" + urllib.parse.urlencode(params))
    assert status == 200 and "<form" in page and 'name="login"' in page, page
    status, headers, page = browse(sim, path, {**params, "login": login, "decision": decision})
    assert status == 302, page
    return redirect_query(headers), verifier


def admin_consent(sim, tenant=CUSTOMER_TENANT, login=SERVICE_UPN):
    params = {
        "client_id": HUB_APP_ID,
        "scope": "https://graph.microsoft.com/.default",
        "redirect_uri": REDIRECT_URI,
        "state": "admin-1",
    }
    path = f"/login/{tenant}/v2.0/adminconsent"
    status, _, page = browse(sim, path + "?" + urllib.parse.urlencode(params))
    assert status == 200 and "<form" in page, page
    status, headers, page = browse(sim, path, {**params, "login": login, "decision": "accept"})
    assert status == 302, page
    return redirect_query(headers)


def app_token(sim, tenant=CUSTOMER_TENANT):
    status, body = token_request(
        sim,
        tenant,
        {
            "grant_type": "client_credentials",
            "client_id": HUB_APP_ID,
            "client_secret": HUB_APP_SECRET,
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert status == 200, body
    return body["access_token"]


def consented_app(sim):
    assert admin_consent(sim)["admin_consent"] == "True"
    return graph(sim, app_token(sim))


def one_on_one(a, b):
    return Chat(
        chat_type=ChatType.OneOnOne,
        members=[
            AadUserConversationMember(
                odata_type="#microsoft.graph.aadUserConversationMember",
                roles=["owner"],
                additional_data={
                    "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{user_id}')"
                },
            )
            for user_id in (a, b)
        ],
    )


# --- Entra ID ------------------------------------------------------------------------------------


def test_authorization_code_with_pkce_through_the_consent_page(sim):
    alice = members(sim)[0]
    query, verifier = sign_in(sim, alice["email"], "offline_access User.Read ChatMessage.Send")
    assert query["state"] == "st-42"
    exchange = {
        "grant_type": "authorization_code",
        "client_id": HUB_APP_ID,
        "client_secret": HUB_APP_SECRET,
        "code": query["code"],
        "redirect_uri": REDIRECT_URI,
    }
    status, error = token_request(sim, "organizations", {**exchange, "code_verifier": "wrong"})
    assert status == 400 and error["error"] == "invalid_grant", error
    assert error["error_codes"] and error["trace_id"] and error["correlation_id"]
    assert error["error_description"].startswith("AADSTS")
    status, bad_client = token_request(
        sim, CUSTOMER_TENANT, {**exchange, "client_secret": "nope", "code_verifier": verifier}
    )
    assert status == 401 and bad_client["error"] == "invalid_client"
    status, tokens = token_request(sim, CUSTOMER_TENANT, {**exchange, "code_verifier": verifier})
    assert status == 200, tokens
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0
    assert "ChatMessage.Send" in tokens["scope"]

    me = run(graph(sim, tokens["access_token"]).me.get())
    assert me.id == alice["id"]

    status, refreshed = token_request(
        sim,
        CUSTOMER_TENANT,
        {
            "grant_type": "refresh_token",
            "client_id": HUB_APP_ID,
            "client_secret": HUB_APP_SECRET,
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert status == 200, refreshed
    assert refreshed["refresh_token"] != tokens["refresh_token"]

    status, replayed = token_request(sim, CUSTOMER_TENANT, {**exchange, "code_verifier": verifier})
    assert status == 400 and replayed["error"] == "invalid_grant"



def test_cancel_and_unknown_accounts_on_the_consent_page(sim):
    query, _ = sign_in(sim, members(sim)[0]["email"], "User.Read", decision="cancel")
    assert query["error"] == "access_denied"
    assert query["error_description"].startswith("AADSTS65004")
    assert query["state"] == "st-42"

    status, _, page = browse(
        sim,
        f"/login/{CUSTOMER_TENANT}/oauth2/v2.0/authorize",
        {
            "client_id": HUB_APP_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "User.Read",
            "login": "nobody@nowhere.example",
            "decision": "accept",
        },
    )
    assert status == 200 and "AADSTS50034" in page

    status, _, page = browse(
        sim,
        f"/login/{CUSTOMER_TENANT}/oauth2/v2.0/authorize?client_id=00000000-0000-0000-0000-000000000000"
        "&response_type=code&redirect_uri=https://x.example/&scope=User.Read",
    )
    assert status == 400 and "AADSTS700016" in page


def test_client_credentials_need_admin_consent_first(sim):
    status, error = token_request(
        sim,
        CUSTOMER_TENANT,
        {
            "grant_type": "client_credentials",
            "client_id": HUB_APP_ID,
            "client_secret": HUB_APP_SECRET,
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert status == 400 and error["error"] == "unauthorized_client", error

    non_admin = members(sim)[0]["email"]
    params = {
        "client_id": HUB_APP_ID,
        "scope": "https://graph.microsoft.com/.default",
        "redirect_uri": REDIRECT_URI,
        "state": "a",
        "login": non_admin,
        "decision": "accept",
    }
    status, _, page = browse(sim, f"/login/{CUSTOMER_TENANT}/v2.0/adminconsent", params)
    assert status == 200 and "AADSTS90094" in page

    query = admin_consent(sim)
    assert query == {
        "admin_consent": "True",
        "tenant": CUSTOMER_TENANT,
        "scope": "https://graph.microsoft.com/.default",
        "state": "admin-1",
    }
    status, error = token_request(
        sim,
        CUSTOMER_TENANT,
        {
            "grant_type": "client_credentials",
            "client_id": HUB_APP_ID,
            "client_secret": HUB_APP_SECRET,
            "scope": "User.Read.All",
        },
    )
    assert status == 400 and error["error"] == "invalid_scope"
    assert app_token(sim)


# --- directory -----------------------------------------------------------------------------------


def test_users_page_to_the_end_of_fifteen_thousand(sim):
    sim.seed(31769)  # 17 of every 36 people are on each platform: 15,000 on Slack and on Teams
    client = consented_app(sim)
    config = RequestConfiguration(
        query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            top=999, select=["id", "mail", "userPrincipalName", "userType", "accountEnabled"]
        )
    )

    async def all_users():
        # The first page goes through the SDK's models. The SDK spends about 6 ms deserialising
        # each user, so later pages take the same request pipeline (auth, middleware, nextLink
        # handling) but are decoded as plain JSON: 15,000 users stay a matter of seconds.
        page = await client.users.get(request_configuration=config)
        users = [{"id": u.id, "mail": u.mail, "userType": u.user_type, "accountEnabled": u.account_enabled} for u in page.value]
        next_link = page.odata_next_link
        pages = 1
        while next_link:
            request = client.users.with_url(next_link).to_get_request_information()
            raw = await client.request_adapter.send_primitive_async(
                request, "bytes", {"XXX": ODataError}
            )
            body = json.loads(raw)
            users.extend(body["value"])
            next_link = body.get("@odata.nextLink")
            pages += 1
        return users, pages

    users, pages = run(all_users())
    assert len(users) == 15001, "15,000 Teams people and the hub's service user"
    assert pages == 16
    assert len({u["id"] for u in users}) == len(users)
    assert all(u["userType"] == "Member" for u in users)
    assert any(u["accountEnabled"] is False for u in users)
    assert any(u["mail"] != u["mail"].lower() for u in users)


def test_filter_by_mail_select_and_lookups(sim):
    client = consented_app(sim)
    person = next(u for u in members(sim) if u["email"] != u["email"].lower())

    async def lookups():
        found = await client.users.get(
            request_configuration=RequestConfiguration(
                query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                    filter=f"mail eq '{person['email'].lower()}'",
                    select=["id", "mail", "proxyAddresses", "otherMails", "assignedLicenses"],
                )
            )
        )
        by_id = await client.users.by_user_id(person["id"]).get()
        return found, by_id

    found, by_id = run(lookups())
    assert [u.id for u in found.value] == [person["id"]]
    assert found.value[0].mail == person["email"]
    assert found.value[0].proxy_addresses[0] == "SMTP:" + person["email"]
    assert found.value[0].assigned_licenses[0].sku_id
    assert by_id.display_name == person["display_name"]
    assert by_id.user_type is None, "not in the default property set"

    error = odata_error(client.users.by_user_id("nobody@nowhere.example").get())
    assert error.response_status_code == 404
    assert error.error.code == "Request_ResourceNotFound"

    error = odata_error(
        client.users.get(
            request_configuration=RequestConfiguration(
                query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=1000)
            )
        )
    )
    assert error.response_status_code == 400 and error.error.code == "Request_BadRequest"

    error = odata_error(
        client.users.get(
            request_configuration=RequestConfiguration(
                query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                    filter="mail eq"
                )
            )
        )
    )
    assert error.response_status_code == 400

    minted = graph(sim, sim.token("teams", person["email"]))
    error = odata_error(minted.users.delta.get())
    assert error.response_status_code == 403 and error.error.code == "Authorization_RequestDenied"


def test_groups_teams_and_members(sim):
    client = consented_app(sim)
    alice = members(sim)[0]

    async def directory():
        groups = await client.groups.get(
            request_configuration=RequestConfiguration(
                query_parameters=GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
                    filter="resourceProvisioningOptions/Any(x:x eq 'Team')"
                )
            )
        )
        group = groups.value[0]
        group_members = await client.groups.by_group_id(group.id).members.get()
        team_members = await client.teams.by_team_id(group.id).members.get()
        joined = await client.users.by_user_id(alice["id"]).joined_teams.get()
        return groups, group_members, team_members, joined

    groups, group_members, team_members, joined = run(directory())
    assert groups.value and all("Team" in g.resource_provisioning_options for g in groups.value)
    assert {m.id for m in group_members.value} == {m.user_id for m in team_members.value}
    assert team_members.value[0].odata_type == "#microsoft.graph.aadUserConversationMember"
    assert team_members.value[0].roles == ["owner"]
    assert len(joined.value) == 1


# The groups seeded for Directory Sync (docs/simulator-microsoft.md).
ENTRA_USERS = "5b000005-0000-4000-8000-000000000000"
ENTRA_PILOTS = "5b000005-0000-4000-8000-000000000001"
ENTRA_ALL_EMPLOYEES = "5b000005-0000-4000-8000-000000000002"


def test_directory_groups_nest_and_dynamic_groups_follow_their_rule(sim):
    client = consented_app(sim)
    joiner = members(sim)[3]
    sim.control(
        "POST",
        "/teams/group-members",
        {"group": ENTRA_PILOTS, "email": joiner["email"], "action": "add"},
    )

    async def read():
        users = await client.groups.by_group_id(ENTRA_USERS).get()
        direct = await client.groups.by_group_id(ENTRA_USERS).members.get()
        transitive = await client.groups.by_group_id(ENTRA_USERS).transitive_members.graph_user.get()
        everyone = await client.groups.by_group_id(ENTRA_ALL_EMPLOYEES).get()
        return users, direct, transitive, everyone

    users, direct, transitive, everyone = run(read())
    assert users.security_enabled and users.group_types == []
    assert [m.odata_type for m in direct.value] == ["#microsoft.graph.group"]
    assert [m.id for m in transitive.value] == [joiner["id"]]
    assert everyone.group_types == ["DynamicMembership"]
    assert everyone.membership_rule
    status, refused = sim.call(
        "POST",
        "/_sim/teams/group-members",
        {"group": ENTRA_ALL_EMPLOYEES, "email": joiner["email"], "action": "remove"},
    )
    assert status == 422 and "dynamic" in refused["error"]


def test_groups_delta_names_members_added_and_removed(sim):
    client = consented_app(sim)

    async def first_round():
        page = await client.groups.delta.get(
            request_configuration=RequestConfiguration(
                query_parameters=GroupsDeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                    select=["displayName", "members"]
                )
            )
        )
        groups = list(page.value)
        while page.odata_next_link:
            page = await client.groups.delta.with_url(page.odata_next_link).get()
            groups += page.value
        return groups, page.odata_delta_link

    groups, delta_link = run(first_round())
    assert ENTRA_PILOTS in {g.id for g in groups}
    assert "$deltatoken=" in delta_link
    joiner = members(sim)[4]
    seen = []
    for action in ["add", "remove"]:
        sim.control(
            "POST",
            "/teams/group-members",
            {"group": ENTRA_PILOTS, "email": joiner["email"], "action": action},
        )
        changes = run(client.groups.delta.with_url(delta_link).get())
        delta_link = changes.odata_delta_link
        assert [g.id for g in changes.value] == [ENTRA_PILOTS]
        delta = changes.value[0].additional_data["members@delta"]
        assert [str(m["id"]) for m in delta] == [joiner["id"]]
        seen.append(delta[0].get("@removed"))
    assert seen[0] is None and seen[1] == {"reason": "deleted"}


def test_a_groups_subscription_hears_members_join(sim):
    client = consented_app(sim)
    receiver = Receiver()
    try:
        run(
            client.subscriptions.post(
                Subscription(
                    change_type="updated,deleted",
                    notification_url=receiver.url,
                    resource="/groups",
                    expiration_date_time=in_minutes(41000),
                    client_state="groups",
                )
            )
        )
        joiner = members(sim)[6]
        sim.control(
            "POST",
            "/teams/group-members",
            {"group": ENTRA_USERS, "email": joiner["email"], "action": "add"},
        )
        item = receiver.next()["value"][0]
        assert item["changeType"] == "updated"
        assert item["resource"] == f"Groups/{ENTRA_USERS}"
        assert item["resourceData"]["members@delta"] == [{"id": joiner["id"]}]
    finally:
        receiver.close()


def test_delta_returns_only_changes_and_removals(sim):
    client = consented_app(sim)

    async def first_round():
        page = await client.users.delta.get(
            request_configuration=RequestConfiguration(
                query_parameters=DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                    select=["displayName", "mail"]
                )
            )
        )
        count = len(page.value)
        while page.odata_next_link:
            page = await client.users.delta.with_url(page.odata_next_link).get()
            count += len(page.value)
        return count, page.odata_delta_link

    count, delta_link = run(first_round())
    assert count == len(sim.users("teams"))
    assert "$deltatoken=" in delta_link
    assert run(client.users.delta.with_url(delta_link).get()).value == []

    gone = members(sim)[2]
    run(client.users.by_user_id(gone["id"]).delete())
    changes = run(client.users.delta.with_url(delta_link).get())
    assert [u.id for u in changes.value] == [gone["id"]]
    assert changes.value[0].additional_data["@removed"] == {"reason": "changed"}
    assert gone["id"] not in {u["id"] for u in sim.users("teams")}


def test_invitations_create_guests_who_sign_in_from_the_interop_tenant(sim):
    interop = graph(sim, app_token(sim, INTEROP_TENANT))
    upn = f"grace.slack@{INTEROP_DOMAIN}"
    created = run(
        interop.users.post(
            User(
                account_enabled=True,
                display_name="Grace (Slack)",
                mail_nickname="grace.slack",
                user_principal_name=upn,
                mail=upn,
                password_profile=PasswordProfile(
                    password="Interop-Passw0rd!", force_change_password_next_sign_in=False
                ),
            )
        )
    )
    assert created.id

    client = consented_app(sim)
    invitation = run(
        client.invitations.post(
            Invitation(
                invited_user_email_address=upn,
                invite_redirect_url="https://hub.example/",
                invited_user_display_name="Grace (Slack)",
                send_invitation_message=False,
            )
        )
    )
    assert invitation.status == "PendingAcceptance"
    guest_id = invitation.invited_user.id
    guest = run(
        client.users.by_user_id(guest_id).get(
            request_configuration=RequestConfiguration(
                query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                    select=["userPrincipalName", "userType", "creationType", "externalUserState"]
                )
            )
        )
    )
    assert guest.user_type == "Guest" and guest.creation_type == "Invitation"
    assert guest.user_principal_name == f"grace.slack_{INTEROP_DOMAIN}#EXT#@acme.example"
    assert guest.external_user_state == "PendingAcceptance"

    error = odata_error(
        client.invitations.post(
            Invitation(invited_user_email_address="not-an-address", invite_redirect_url="https://x")
        )
    )
    assert error.response_status_code == 400

    status, tokens = token_request(
        sim,
        CUSTOMER_TENANT,
        {
            "grant_type": "password",
            "client_id": HUB_APP_ID,
            "client_secret": HUB_APP_SECRET,
            "username": upn,
            "password": "Interop-Passw0rd!",
            "scope": "https://graph.microsoft.com/.default offline_access",
        },
    )
    assert status == 200, tokens
    me = run(graph(sim, tokens["access_token"]).me.get())
    assert me.id == guest_id
    guest = run(
        client.users.by_user_id(guest_id).get(
            request_configuration=RequestConfiguration(
                query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                    select=["externalUserState"]
                )
            )
        )
    )
    assert guest.external_user_state == "Accepted"


# --- chats and messages --------------------------------------------------------------------------


def test_chats_messages_mentions_reactions_edits_and_soft_delete(sim):
    alice, bob, carol = members(sim)[:3]
    as_alice = graph(sim, sim.token("teams", alice["email"]))
    as_bob = graph(sim, sim.token("teams", bob["email"]))

    chat = run(as_alice.chats.post(one_on_one(alice["id"], bob["id"])))
    assert chat.chat_type == ChatType.OneOnOne
    assert run(as_bob.chats.post(one_on_one(bob["id"], alice["id"]))).id == chat.id

    group = Chat(
        chat_type=ChatType.Group,
        topic="Launch",
        members=one_on_one(alice["id"], bob["id"]).members
        + [
            AadUserConversationMember(
                odata_type="#microsoft.graph.aadUserConversationMember",
                roles=["owner"],
                additional_data={
                    "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{carol['id']}')"
                },
            )
        ],
    )
    group = run(as_alice.chats.post(group))
    assert group.topic == "Launch" and group.id != chat.id

    messages = as_alice.chats.by_chat_id(chat.id).messages
    posted = run(
        messages.post(
            ChatMessage(
                body=ItemBody(
                    content_type=BodyType.Html,
                    content=f'Hello <at id="0">{bob["display_name"]}</at>',
                ),
                mentions=[
                    ChatMessageMention(
                        id=0,
                        mention_text=bob["display_name"],
                        mentioned=ChatMessageMentionedIdentitySet(
                            user=Identity(id=bob["id"], display_name=bob["display_name"])
                        ),
                    )
                ],
            )
        )
    )
    assert posted.from_.user.id == alice["id"]
    assert posted.mentions[0].mentioned.user.id == bob["id"]

    error = odata_error(
        messages.post(
            ChatMessage(body=ItemBody(content_type=BodyType.Html, content='<at id="3">x</at>'))
        )
    )
    assert error.response_status_code == 400

    bob_message = as_bob.chats.by_chat_id(chat.id).messages.by_chat_message_id(posted.id)
    run(bob_message.set_reaction.post(SetReactionPostRequestBody(reaction_type="👍")))
    read = run(bob_message.get())
    assert [r.reaction_type for r in read.reactions] == ["👍"]
    assert read.reactions[0].user.user.id == bob["id"]
    run(bob_message.unset_reaction.post(UnsetReactionPostRequestBody(reaction_type="👍")))
    assert run(bob_message.get()).reactions == []

    error = odata_error(bob_message.patch(ChatMessage(body=ItemBody(content="not mine"))))
    assert error.response_status_code == 403
    mine = messages.by_chat_message_id(posted.id)
    run(mine.patch(ChatMessage(body=ItemBody(content_type=BodyType.Text, content="edited"))))
    edited = run(mine.get())
    assert edited.body.content == "edited" and edited.last_edited_date_time is not None

    error = odata_error(mine.replies.get())
    assert error.response_status_code == 400

    deleting = (
        as_alice.users.by_user_id(alice["id"]).chats.by_chat_id(chat.id).messages.by_chat_message_id(posted.id)
    )
    run(deleting.soft_delete.post())
    listed = run(as_bob.chats.by_chat_id(chat.id).messages.get())
    assert listed.value[0].deleted_date_time is not None and listed.value[0].body.content == ""
    run(deleting.undo_soft_delete.post())
    assert run(mine.get()).body.content == "edited"

    fetched = run(as_bob.chats.by_chat_id(chat.id).get())
    assert fetched.id == chat.id
    chat_members = run(as_bob.chats.by_chat_id(chat.id).members.get())
    assert {m.user_id for m in chat_members.value} == {alice["id"], bob["id"]}
    as_carol = graph(sim, sim.token("teams", carol["email"]))
    error = odata_error(as_carol.chats.by_chat_id(chat.id).messages.get())
    assert error.response_status_code == 403


def graph_time(moment):
    """A datetime as Graph writes one in a $filter: UTC, milliseconds, Z."""
    utc = moment.astimezone(datetime.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def listing(**parameters):
    return RequestConfiguration(
        query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(**parameters)
    )


def test_a_message_with_a_file_and_a_card_attached_reads_back_with_them(sim):
    alice, bob = members(sim)[:2]
    as_alice = graph(sim, sim.token("teams", alice["email"]))
    as_bob = graph(sim, sim.token("teams", bob["email"]))
    chat = run(as_alice.chats.post(one_on_one(alice["id"], bob["id"])))
    file = ChatMessageAttachment(
        id="153fa47d-18c9-4179-be08-9879815a9f90",
        content_type="reference",
        content_url="https://contoso.sharepoint.com/sites/s/Shared%20Documents/plan.docx",
        name="plan.docx",
    )
    card = ChatMessageAttachment(
        id="74d20c7f34aa4a7fb74e2b30004247c5",
        content_type="application/vnd.microsoft.card.adaptive",
        content='{"type": "AdaptiveCard", "version": "1.4", "body": []}',
    )
    posted = run(
        as_alice.chats.by_chat_id(chat.id).messages.post(
            ChatMessage(
                body=ItemBody(
                    content_type=BodyType.Html,
                    content=f'The plan <attachment id="{file.id}"></attachment><attachment id="{card.id}"></attachment>',
                ),
                attachments=[file, card],
            )
        )
    )
    read = run(as_bob.chats.by_chat_id(chat.id).messages.by_chat_message_id(posted.id).get())
    assert [(a.id, a.content_type, a.name) for a in read.attachments] == [
        (file.id, "reference", "plan.docx"),
        (card.id, "application/vnd.microsoft.card.adaptive", None),
    ]
    assert read.attachments[0].content_url == file.content_url
    assert read.attachments[1].content == card.content

    error = odata_error(
        as_alice.chats.by_chat_id(chat.id).messages.post(
            ChatMessage(body=ItemBody(content="x"), attachments=[ChatMessageAttachment(name="no id")])
        )
    )
    assert error.response_status_code == 400


def test_chat_messages_are_listed_for_catch_up_with_orderby_filter_and_top(sim):
    alice, bob = members(sim)[:2]
    as_alice = graph(sim, sim.token("teams", alice["email"]))
    chat = run(as_alice.chats.post(one_on_one(alice["id"], bob["id"])))
    messages = as_alice.chats.by_chat_id(chat.id).messages
    sent = []
    for n in range(5):
        sent.append(run(messages.post(ChatMessage(body=ItemBody(content=f"m{n}")))))
        time.sleep(0.01)
    run(messages.by_chat_message_id(sent[0].id).patch(ChatMessage(body=ItemBody(content="m0, edited"))))

    def contents(page):
        return [m.body.content for m in page.value]

    app = consented_app(sim)
    listed = app.chats.by_chat_id(chat.id).messages
    assert contents(run(listed.get())) == ["m0, edited", "m4", "m3", "m2", "m1"]
    by_creation = run(listed.get(request_configuration=listing(orderby=["createdDateTime desc"])))
    assert contents(by_creation) == ["m4", "m3", "m2", "m1", "m0, edited"]

    since = graph_time(sent[2].last_modified_date_time)
    first = run(
        listed.get(
            request_configuration=listing(
                top=2,
                orderby=["lastModifiedDateTime desc"],
                filter=f"lastModifiedDateTime gt {since}",
            )
        )
    )
    assert contents(first) == ["m0, edited", "m4"]
    assert first.odata_next_link
    second = run(listed.with_url(first.odata_next_link).get())
    assert contents(second) == ["m3"] and second.odata_next_link is None

    until = graph_time(sent[2].created_date_time)
    older = run(
        listed.get(
            request_configuration=listing(
                orderby=["createdDateTime desc"], filter=f"createdDateTime lt {until}"
            )
        )
    )
    assert contents(older) == ["m1", "m0, edited"]

    for refused in (
        listing(orderby=["createdDateTime desc"], filter=f"createdDateTime gt {until}"),
        listing(orderby=["createdDateTime asc"]),
        listing(top=51),
    ):
        error = odata_error(listed.get(request_configuration=refused))
        assert error.response_status_code == 400 and error.error.code == "BadRequest"


def test_injected_throttling_holds_one_chat(sim):
    alice, bob, carol = members(sim)[:3]
    as_alice = graph(sim, sim.token("teams", alice["email"]))
    held = run(as_alice.chats.post(one_on_one(alice["id"], bob["id"])))
    free = run(as_alice.chats.post(one_on_one(alice["id"], carol["id"])))
    sim.set_faults(
        [
            {
                "route_prefix": f"/graph/v1.0/chats/{held.id}/messages",
                "error_rate": 1.0,
                "error_status": 429,
                "retry_after_secs": 1,
                "duration_secs": 60,
            }
        ]
    )
    # The SDK's retry handler waits out Retry-After a few times before giving up, hence 1 second.
    error = odata_error(as_alice.chats.by_chat_id(held.id).messages.get())
    assert error.response_status_code == 429 and error.error.code == "TooManyRequests"
    assert error.response_headers["Retry-After"] == "1"
    assert run(as_alice.chats.by_chat_id(free.id).messages.get()).value == []


def test_app_only_tokens_cannot_post_edit_or_react(sim):
    alice, bob = members(sim)[:2]
    app = consented_app(sim)
    chat = run(app.chats.post(one_on_one(alice["id"], bob["id"])))
    error = odata_error(
        app.chats.by_chat_id(chat.id).messages.post(ChatMessage(body=ItemBody(content="hi")))
    )
    assert error.response_status_code == 401
    assert error.error.code == "Unauthorized"
    assert "import" in error.error.message
    assert error.error.inner_error.request_id

    as_alice = graph(sim, sim.token("teams", alice["email"]))
    posted = run(as_alice.chats.by_chat_id(chat.id).messages.post(ChatMessage(body=ItemBody(content="hi"))))
    by_app = app.chats.by_chat_id(chat.id).messages.by_chat_message_id(posted.id)
    error = odata_error(by_app.set_reaction.post(SetReactionPostRequestBody(reaction_type="👍")))
    assert error.response_status_code == 403 and error.error.code == "Forbidden"
    error = odata_error(by_app.patch(ChatMessage(body=ItemBody(content="x"))))
    assert error.response_status_code == 403
    assert run(by_app.get()).body.content == "hi", "app-only may read with Chat.Read.All"


def test_a_token_without_the_send_scope_is_forbidden(sim):
    alice, bob = members(sim)[:2]
    query, verifier = sign_in(sim, alice["email"], "User.Read Chat.Create")
    status, tokens = token_request(
        sim,
        CUSTOMER_TENANT,
        {
            "grant_type": "authorization_code",
            "client_id": HUB_APP_ID,
            "client_secret": HUB_APP_SECRET,
            "code": query["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
    )
    assert status == 200, tokens
    narrow = graph(sim, tokens["access_token"])
    chat = run(narrow.chats.post(one_on_one(alice["id"], bob["id"])))
    error = odata_error(
        narrow.chats.by_chat_id(chat.id).messages.post(ChatMessage(body=ItemBody(content="x")))
    )
    assert error.response_status_code == 403 and error.error.code == "Forbidden"
    assert "ChatMessage.Send" in error.error.message


def test_errors_throttling_and_injected_failures(sim):
    alice, bob = members(sim)[:2]
    token = sim.token("teams", alice["email"])
    error = odata_error(graph(sim, "not-a-token").me.get())
    assert error.response_status_code == 401
    assert error.error.code == "InvalidAuthenticationToken"

    chat = run(graph(sim, token).chats.post(one_on_one(alice["id"], bob["id"])))
    sim.settings(rate_limits=True)
    try:
        statuses = []
        retry_after = None
        for n in range(30):
            request = urllib.request.Request(
                f"{sim.base_url}/graph/v1.0/chats/{urllib.parse.quote(chat.id)}/messages",
                data=json.dumps({"body": {"content": f"burst {n}"}}).encode(),
                headers={"authorization": "Bearer " + token, "content-type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    statuses.append(response.status)
            except urllib.error.HTTPError as failure:
                statuses.append(failure.code)
                body = json.loads(failure.read())
                assert body["error"]["code"] == "TooManyRequests"
                retry_after = failure.headers["Retry-After"]
        assert 201 in statuses and 429 in statuses
        assert retry_after is not None and int(retry_after) >= 1
    finally:
        sim.settings(rate_limits=False)

    sim.set_faults([{"route_prefix": "/graph/v1.0/me", "error_rate": 1.0, "error_status": 500}])
    try:
        error = odata_error(graph(sim, token).me.get())
        assert error.response_status_code == 500
        assert error.error.code == "generalException"
    finally:
        sim.clear_faults()


# --- change notifications ------------------------------------------------------------------------


class Receiver:
    """A webhook endpoint: answers Graph's validation handshake, queues notifications."""

    def __init__(self, echo=True):
        self.notifications = queue.Queue()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if "validationToken" in query:
                    answer = query["validationToken"][0] if echo else "not the token"
                    self.send_response(200)
                    self.send_header("content-type", "text/plain")
                    self.end_headers()
                    self.wfile.write(answer.encode())
                    return
                receiver.notifications.put(json.loads(body))
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self):
        return self.notifications.get(timeout=15)

    def close(self):
        self.server.shutdown()


def in_minutes(minutes):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)


def test_subscriptions_handshake_client_state_renewal_and_lifecycle(sim):
    alice, bob = members(sim)[:2]
    client = graph(sim, sim.token("teams", alice["email"]))
    chat = run(client.chats.post(one_on_one(alice["id"], bob["id"])))
    receiver = Receiver()
    refusing = Receiver(echo=False)
    try:
        error = odata_error(
            client.subscriptions.post(
                Subscription(
                    change_type="created",
                    notification_url=refusing.url,
                    resource=f"/chats/{chat.id}/messages",
                    expiration_date_time=in_minutes(30),
                )
            )
        )
        assert error.response_status_code == 400 and error.error.code == "ValidationError"

        error = odata_error(
            client.subscriptions.post(
                Subscription(
                    change_type="created",
                    notification_url=receiver.url,
                    resource=f"/chats/{chat.id}/messages",
                    expiration_date_time=in_minutes(120),
                )
            )
        )
        assert "lifecycleNotificationUrl" in error.error.message

        error = odata_error(
            client.subscriptions.post(
                Subscription(
                    change_type="created",
                    notification_url=receiver.url,
                    lifecycle_notification_url=receiver.url,
                    resource=f"/chats/{chat.id}/messages",
                    expiration_date_time=in_minutes(4400),
                )
            )
        )
        assert "4320" in error.error.message

        subscription = run(
            client.subscriptions.post(
                Subscription(
                    change_type="created,updated,deleted",
                    notification_url=receiver.url,
                    lifecycle_notification_url=receiver.url,
                    resource=f"/users/{alice['id']}/chats/getAllMessages",
                    expiration_date_time=in_minutes(180),
                    client_state="s3cret-state",
                )
            )
        )
        assert subscription.id and subscription.client_state == "s3cret-state"

        posted = run(
            graph(sim, sim.token("teams", bob["email"]))
            .chats.by_chat_id(chat.id)
            .messages.post(ChatMessage(body=ItemBody(content="ping")))
        )
        item = receiver.next()["value"][0]
        assert item["subscriptionId"] == subscription.id
        assert item["clientState"] == "s3cret-state"
        assert item["changeType"] == "created"
        assert item["tenantId"] == CUSTOMER_TENANT
        assert item["resource"] == f"chats('{chat.id}')/messages('{posted.id}')"
        assert item["resourceData"]["id"] == posted.id
        assert item["resourceData"]["@odata.type"] == "#Microsoft.Graph.chatMessage"

        run(
            graph(sim, sim.token("teams", bob["email"]))
            .chats.by_chat_id(chat.id)
            .messages.by_chat_message_id(posted.id)
            .set_reaction.post(SetReactionPostRequestBody(reaction_type="❤️"))
        )
        assert receiver.next()["value"][0]["changeType"] == "updated"

        item = run(client.subscriptions.by_subscription_id(subscription.id).get())
        assert item.resource == f"/users/{alice['id']}/chats/getAllMessages"
        renewed = run(
            client.subscriptions.by_subscription_id(subscription.id).patch(
                Subscription(expiration_date_time=in_minutes(600))
            )
        )
        assert renewed.expiration_date_time > in_minutes(590)
        run(client.subscriptions.by_subscription_id(subscription.id).reauthorize.post())
        listed = run(client.subscriptions.get())
        assert [s.id for s in listed.value] == [subscription.id]
        run(client.subscriptions.by_subscription_id(subscription.id).delete())
        error = odata_error(client.subscriptions.by_subscription_id(subscription.id).get())
        assert error.response_status_code == 404
    finally:
        receiver.close()
        refusing.close()


def test_directory_subscriptions_hear_deletions(sim):
    client = consented_app(sim)
    receiver = Receiver()
    try:
        subscription = run(
            client.subscriptions.post(
                Subscription(
                    change_type="updated,deleted",
                    notification_url=receiver.url,
                    resource="/users",
                    expiration_date_time=in_minutes(41000),
                    client_state="directory",
                )
            )
        )
        gone = members(sim)[5]
        run(client.users.by_user_id(gone["id"]).delete())
        item = receiver.next()["value"][0]
        assert item["subscriptionId"] == subscription.id
        assert item["changeType"] == "deleted"
        assert item["clientState"] == "directory"
        assert item["resourceData"]["id"] == gone["id"]
    finally:
        receiver.close()
