"""Every route of the app in one table, so the auth and OpenAPI tests can walk them."""

from __future__ import annotations

from aiohttp import web

from commhub.web import hooks, live
from commhub.web.api import (
    calls,
    contacts,
    emails,
    health,
    identify,
    imports,
    interactions,
    mail_admin,
    session,
    sms,
    users,
)
from commhub.web.openapi import openapi_document
from commhub.web.ui import actions, assets, home, login

API = "/api/v1"


def add_routes(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.get(f"{API}/health", health.health),
            web.get(f"{API}/openapi.json", openapi_document),
            web.post(f"{API}/auth/login", session.login),
            web.post(f"{API}/auth/logout", session.logout),
            web.get(f"{API}/auth/me", session.me),
            web.post(f"{API}/auth/password", session.change_password),
            web.get(f"{API}/users", users.list_users),
            web.post(f"{API}/users", users.create_user),
            web.patch(f"{API}/users/{{id}}", users.update_user),
            web.get(f"{API}/tokens", users.list_tokens),
            web.post(f"{API}/tokens", users.create_token),
            web.delete(f"{API}/tokens/{{id}}", users.revoke_token),
            web.get(f"{API}/contacts", contacts.search_contacts),
            web.post(f"{API}/contacts", contacts.create_contact),
            web.get(f"{API}/contacts/{{id}}", contacts.get_card),
            web.patch(f"{API}/contacts/{{id}}", contacts.update_contact),
            web.get(f"{API}/contacts/{{id}}/timeline", contacts.get_timeline),
            web.post(f"{API}/contacts/{{id}}/merge", contacts.merge_contacts),
            web.get(f"{API}/identify", identify.identify),
            web.get(f"{API}/interactions", interactions.list_interactions),
            web.post(f"{API}/interactions", interactions.create_interaction),
            web.post(f"{API}/imports", imports.create_import),
            web.get(f"{API}/imports/{{id}}", imports.get_import),
            web.get(f"{API}/imports/{{id}}/errors", imports.get_import_errors),
            web.post(f"{API}/calls", calls.place_call),
            web.get(f"{API}/calls/live", calls.live_calls),
            web.get(f"{API}/calls/missed", calls.list_missed),
            web.post(f"{API}/calls/missed/{{id}}/dismiss", calls.dismiss_missed),
            web.get(f"{API}/channels", calls.channel_health),
            web.post(f"{API}/emails", emails.send_email),
            web.get(f"{API}/emails/unmatched", emails.list_unmatched),
            web.get(f"{API}/emails/failures", mail_admin.list_failures),
            web.get(f"{API}/emails/failures/{{id}}/raw", mail_admin.get_failure_raw),
            web.post(f"{API}/emails/failures/{{id}}/resolve", mail_admin.resolve_failure),
            web.get(f"{API}/emails/{{id}}", emails.get_email),
            web.get(f"{API}/emails/{{id}}/raw", emails.get_raw),
            web.get(f"{API}/emails/{{id}}/attachments/{{index}}", emails.get_attachment),
            web.post(f"{API}/emails/{{id}}/assign", emails.assign_email),
            web.post(f"{API}/emails/{{id}}/dismiss", emails.dismiss_email),
            web.get(f"{API}/suppressions", mail_admin.list_suppressions),
            web.delete(f"{API}/suppressions/{{id}}", mail_admin.lift_suppression),
            web.post(f"{API}/sms", sms.send_sms),
            web.post(f"{API}/sms/preview", sms.preview_sms),
            web.get(f"{API}/sms/{{id}}", sms.get_sms),
            web.get(f"{API}/live", live.live_feed),
            web.post("/hooks/{channel}/{path:.*}", hooks.gateway_callback),
            web.get("/hooks/{channel}/{path:.*}", hooks.gateway_callback),
            # The console (server-rendered pages; see docs/console.md).
            web.get("/static/{name}", assets.static_file),
            web.get("/login", login.login_form),
            web.post("/login", login.login_submit),
            web.post("/logout", login.logout_submit),
            web.get("/", home.home),
            web.post("/calls", actions.place_call),
            web.post("/missed/{id}/dismiss", actions.dismiss_missed),
            web.post("/follow-ups/{id}/done", actions.follow_up_done),
        ]
    )
