"""Request and response bodies of the e-mail endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from commhub.web.api.schemas import Strict


class EmailRecipientIn(Strict):
    address: str = Field(min_length=3, max_length=320)
    name: str = Field(default="", max_length=200)


class AttachmentIn(Strict):
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(default="", max_length=200)
    content_base64: str = Field(description="The file's bytes, base64-encoded.")


class EmailCreate(Strict):
    mailbox: str | None = Field(
        default=None, description="The mailbox to send from; needed when several are configured."
    )
    to: list[EmailRecipientIn] = Field(min_length=1, max_length=50)
    cc: list[EmailRecipientIn] = Field(default_factory=list, max_length=50)
    subject: str | None = Field(
        default=None, max_length=500, description="On a reply, defaults to 'Re: ' and the subject."
    )
    text: str = Field(default="", max_length=1_000_000)
    html: str | None = Field(default=None, max_length=2_000_000)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)
    contact_id: int | None = Field(default=None, description="The card; found from 'to' if unset.")
    reply_to_id: int | None = Field(
        default=None, description="The e-mail interaction this answers: threading headers follow."
    )


class OutboxOut(BaseModel):
    id: int
    key: str
    state: str = Field(
        description="queued, sending, sent, failed, uncertain (the server's answer to the "
        "message never came: it may have it; a person settles it) or dismissed"
    )
    mailbox: str
    interaction_id: int
    contact_id: int | None
    recipients: list[str]
    attempts: int
    last_error: str | None
    reply: str | None = Field(description="The mail server's answer when it took the message.")
    created_at: datetime
    sent_at: datetime | None


class AttachmentOut(BaseModel):
    index: int | None
    filename: str
    content_type: str
    size: int
    url: str | None


class ThreadItem(BaseModel):
    interaction_id: int
    direction: str
    status: str
    sender: str
    subject: str
    occurred_at: datetime


class EmailOut(BaseModel):
    interaction_id: int
    contact_id: int | None
    direction: str
    status: str
    kind: str = Field(
        description="message, auto_reply, bounce or complaint (a feedback-loop report)"
    )
    mailbox: str
    message_id: str
    in_reply_to: str
    references: list[str]
    thread_id: int | None
    sender: str
    to: list[str]
    cc: list[str]
    reply_to: list[str]
    subject: str
    text: str
    html: str | None = Field(
        description="The original HTML, unsanitised: render it only in a sandboxed frame."
    )
    attachments: list[AttachmentOut]
    size: int
    truncated: bool
    occurred_at: datetime
    outbox: OutboxOut | None
    thread: list[ThreadItem]


class UnmatchedOut(BaseModel):
    interaction_id: int
    sender: str
    from_address: str
    subject: str
    summary: str
    occurred_at: datetime
    candidates: list[int] = Field(description="Contacts sharing the address, when several do.")


class UnmatchedPage(BaseModel):
    items: list[UnmatchedOut]
    next_cursor: str | None


class PageQuery(Strict):
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


class AssignIn(Strict):
    contact_id: int
    add_address: bool = Field(
        default=True, description="Also add the sender's address to the contact's card."
    )


class MailFailureOut(BaseModel):
    id: int
    mailbox: str
    folder: str
    uid: int
    error: str
    size: int
    created_at: datetime
    resolved_at: datetime | None


class MailFailurePage(BaseModel):
    items: list[MailFailureOut]
    next_cursor: str | None


class SuppressionOut(BaseModel):
    id: int
    channel: str
    address: str
    reason: str
    source: str
    created_at: datetime


class SuppressionQuery(Strict):
    channel: str | None = Field(default=None, max_length=20)
    address: str | None = Field(default=None, max_length=320)
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


class SuppressionPage(BaseModel):
    items: list[SuppressionOut]
    next_cursor: str | None
