"""Carrying a new token's plaintext across the redirect after "Save", to be shown once.

The add form's POST redirects to a page of its own (POST/redirect/GET), so reloading that page
cannot post the form again and create a second token. The plaintext must reach that page
without being stored anywhere it could be read later: it is split into two random-looking
halves, ``plaintext XOR pad`` in the session and ``pad`` in a short-lived cookie scoped to the
page. Neither half alone tells anything of the token; the page's first view takes both and
forgets them, so a reload (or anyone reading the session table) finds nothing.
"""

from __future__ import annotations

import base64
import secrets

from django.http import HttpRequest, HttpResponse

# Seconds the halves wait for the first view of the page.
CARRY_SECONDS = 300


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def _name(key: str) -> str:
    """The session key and the cookie name of one secret's halves."""
    return f"mcp_sse_once_{key}"


def stash(request: HttpRequest, response: HttpResponse, key: str, secret: str, path: str) -> None:
    """Keep ``secret`` for one view of the page at ``path`` (``key`` tells secrets apart)."""
    session_key = cookie = _name(key)
    data = secret.encode()
    pad = secrets.token_bytes(len(data))
    request.session[session_key] = base64.b64encode(_xor(data, pad)).decode()
    response.set_cookie(
        cookie,
        base64.urlsafe_b64encode(pad).decode(),
        max_age=CARRY_SECONDS,
        path=path,
        secure=request.is_secure(),
        httponly=True,
        samesite="Strict",
    )


def take(request: HttpRequest, key: str) -> str | None:
    """The secret stashed under ``key``, once; None if it was taken, expired or never stashed."""
    session_key = cookie = _name(key)
    masked = request.session.pop(session_key, None)
    pad = request.COOKIES.get(cookie)
    if not masked or not pad:
        return None
    try:
        data = _xor(base64.b64decode(masked), base64.urlsafe_b64decode(pad))
        return data.decode()
    except (ValueError, UnicodeDecodeError):
        return None


def forget(response: HttpResponse, key: str, path: str) -> None:
    """Drop the cookie half (call on the page's response, whether or not ``take`` found it)."""
    response.delete_cookie(_name(key), path=path, samesite="Strict")
