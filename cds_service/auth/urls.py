"""Check the URLs key sets are fetched from."""

from __future__ import annotations

from urllib.parse import urlsplit


def jwks_url_problem(url: object, *, allow_http: bool) -> str | None:
    """Why `url` may not be used to fetch a JWK Set, or None when it may."""
    if not isinstance(url, str) or not url:
        return "must be a non-empty string"
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        hint = "" if allow_http else " (http only with allow_http_jwks)"
        return f"{url!r} must be an https URL{hint}"
    if not parts.hostname:
        return f"{url!r} has no host"
    if parts.username is not None or parts.password is not None:
        return f"{url!r} must not carry credentials"
    if parts.fragment:
        return f"{url!r} must not have a fragment"
    return None
