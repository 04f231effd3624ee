"""What DubDash adds to Django's own protections: the Content-Security-Policy header, and the two hooks
django-axes calls (the lockout page, and the client address behind a reverse proxy)."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.shortcuts import render

# No inline script or style anywhere (htmx's indicator styles are switched off in base.html); media comes
# from any https origin (and http on plain-http pages), because outputs and sources are hosted elsewhere.
_POLICY = (
    ("default-src", "'self'"),
    ("script-src", "'self'"),
    ("style-src", "'self'"),
    ("img-src", "'self' data:"),
    ("media-src", "'self' https:"),
    ("connect-src", "'self'"),
    ("frame-ancestors", "'none'"),
    ("form-action", "'self'"),
    ("base-uri", "'none'"),
    ("object-src", "'none'"),
)


def content_security_policy(*, allow_http_media: bool) -> str:
    return "; ".join(
        f"{directive} {sources} http:" if directive == "media-src" and allow_http_media else f"{directive} {sources}"
        for directive, sources in _POLICY
    )


def allows_http_media(request) -> bool:
    """Plain-http media only on pages served over plain http: development and the sandbox, whose simulator
    serves http. On an https page browsers upgrade (or block) http media before the policy applies, so
    there http: would only widen the policy. Decided without a database query: this runs on every response."""
    return not request.is_secure()


class SecurityHeadersMiddleware:
    """Sets Content-Security-Policy on every response that does not bring its own. Django's
    SecurityMiddleware and XFrameOptionsMiddleware send the other headers (nosniff, Referrer-Policy,
    Cross-Origin-Opener-Policy, X-Frame-Options)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = content_security_policy(allow_http_media=allows_http_media(request))
        return response


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' lockout response (AXES_LOCKOUT_CALLABLE): a page in the normal layout saying what
    happened and what to do, with 429 Too Many Requests."""
    cool_off = settings.AXES_COOLOFF_TIME
    minutes = int(cool_off.total_seconds() // 60) if cool_off else None
    status = getattr(settings, "AXES_HTTP_RESPONSE_CODE", 429)  # axes fills in its own default
    return render(request, "registration/lockout.html", {"minutes": minutes}, status=status)


def client_ip_address(request) -> str | None:
    """The address login failures are counted under (AXES_CLIENT_IP_CALLABLE).

    Without proxies (AXES_IPWARE_PROXY_COUNT unset) it is REMOTE_ADDR. Behind N proxies that each append
    the address they received the request from to X-Forwarded-For, it is the N-th entry from the right:
    what the outermost proxy saw. Entries further left were written by the client and are ignored."""
    remote_addr = request.META.get("REMOTE_ADDR")
    proxies = settings.AXES_IPWARE_PROXY_COUNT
    if not proxies:
        return remote_addr
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < proxies:
        return remote_addr  # not through the expected proxies: the connection's own address
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote_addr
