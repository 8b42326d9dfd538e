"""The sample application's cookie sessions, kept in the shared session store (`state_store`).

A session lives in the store, not in the process that started it: the cookie carries only its id,
so whichever color answers next finds it, which is what lets a user's session survive a switch and a
rollback. One DynamoDB item per session; every visit counts itself with an atomic update (ADD), so
two colors serving the same user at once never lose a visit, and pushes the expiry forward (the
table's TTL removes sessions nobody used for `BGTOOL_SESSION_TTL_SECONDS`).

Configured by the environment, as the user data configures the application on EC2:
BGTOOL_SESSION_TABLE (and AWS_ENDPOINT_URL / AWS_REGION on the embedded AWS).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any

COOKIE = "bgtool_session"
DEFAULT_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Visit:
    session: str
    hits: int
    started_color: str
    started_version: str
    new: bool

    def to_dict(self, color: str, version: str) -> dict[str, Any]:
        return {"session": self.session, "hits": self.hits, "new": self.new,
                "started_on": {"color": self.started_color, "version": self.started_version},
                "served_by": {"color": color, "version": version}}


def session_id(cookie_header: str | None) -> str | None:
    """The session id the client sent, if it looks like one of ours (anything else starts a new session)."""
    if not cookie_header:
        return None
    try:
        jar = SimpleCookie(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    value = morsel.value if morsel else ""
    return value if 16 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum() else None


def set_cookie(session: str, ttl_seconds: int) -> str:
    return f"{COOKIE}={session}; Max-Age={ttl_seconds}; Path=/; HttpOnly; SameSite=Lax"


class SessionStore:
    """Sessions in a DynamoDB table (hash key `id`, TTL attribute `expires_at`)."""

    def __init__(self, table: str, ttl_seconds: int, client: Any) -> None:
        self.table = table
        self.ttl_seconds = ttl_seconds
        self.client = client

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> SessionStore | None:
        table = environ.get("BGTOOL_SESSION_TABLE", "")
        if not table:
            return None
        import boto3  # only an application with a store needs it

        ttl = int(environ.get("BGTOOL_SESSION_TTL_SECONDS") or DEFAULT_TTL_SECONDS)
        return cls(table, ttl, boto3.session.Session().client("dynamodb"))

    def visit(self, session: str | None, color: str, version: str) -> Visit:
        """Count a visit of SESSION, or start a new session here when it is unknown or expired."""
        if session is not None:
            found = self._count(session)
            if found is not None:
                return found
        return self._start(color, version)

    def _count(self, session: str) -> Visit | None:
        now = int(time.time())
        try:
            item = self.client.update_item(
                TableName=self.table, Key={"id": {"S": session}},
                UpdateExpression="ADD hits :one SET expires_at = :expires",
                ConditionExpression="attribute_exists(id) AND expires_at > :now",
                ExpressionAttributeValues={":one": {"N": "1"}, ":expires": {"N": str(now + self.ttl_seconds)},
                                           ":now": {"N": str(now)}},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return Visit(session, int(item["hits"]["N"]), item["started_color"]["S"], item["started_version"]["S"], False)

    def _start(self, color: str, version: str) -> Visit:
        session = secrets.token_urlsafe(18)
        self.client.put_item(
            TableName=self.table,
            Item={"id": {"S": session}, "hits": {"N": "1"}, "started_color": {"S": color},
                  "started_version": {"S": version}, "expires_at": {"N": str(int(time.time()) + self.ttl_seconds)}},
            ConditionExpression="attribute_not_exists(id)",
        )
        return Visit(session, 1, color, version, True)
