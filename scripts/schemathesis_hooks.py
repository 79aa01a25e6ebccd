"""Schemathesis hooks for the schema-driven fuzzing of the backend and the sandbox (tests/openapi.rs runs it).

Each generated request gets the credential its operation's OpenAPI `security` names, so that it reaches the
handler rather than stopping at 401/403: a studio session (a second, sacrificial one for `/link/unlink`, which
ends the session it is called with), the game server's token, a Login with Amazon token, the Moments API key, or
a DTA1 signature computed over the exact bytes sent (a `requests` auth hook runs after the body is encoded). Every
answer is counted per operation and status into the JSON file named by ST_COUNTS.

The DTA1 signer is written here from the Java SDK's `Signer.java` as `amazon_rewards_protocol::dta1` describes it,
independently of the Rust one, so a request the backend accepts is one Amazon's own signer would produce.
"""

import atexit
import collections
import datetime
import hashlib
import hmac
import json
import os
import re
import urllib.parse

import requests
import schemathesis

COUNTS = collections.defaultdict(collections.Counter)


def _env(name):
    return os.environ.get(name, "")


class Dta1(requests.auth.AuthBase):
    """DTA1-HMAC-SHA256 over `content-type;x-amz-date`, as Amazon signs Instant Access calls."""

    def __init__(self, key_id, secret):
        self.key_id = key_id
        self.secret = secret

    def __call__(self, request):
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        content_type = re.sub(r"\s+", " ", request.headers.get("Content-Type", ""))
        path = urllib.parse.quote(urllib.parse.urlsplit(request.url).path or "/", safe="/-._~")
        canonical = "\n".join([
            request.method, path, "",
            f"content-type:{content_type}", f"x-amz-date:{date}", "",
            "content-type;x-amz-date", hashlib.sha256(body).hexdigest(),
        ])
        to_sign = f"DTA1-HMAC-SHA256\n{date}\n\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = hmac.new(self.secret.encode(), date[:8].encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        request.headers["x-amz-date"] = date
        request.headers["Authorization"] = (
            f"DTA1-HMAC-SHA256 SignedHeaders=content-type;x-amz-date, "
            f"Credential={self.key_id}/{date[:8]}, Signature={signature}"
        )
        return request


def _half(value):
    """Whether a generated value is swapped for a live one: half of them, decided by the value itself so that a
    run with the same seed sends the same requests."""
    return int(hashlib.sha256(repr(value).encode()).hexdigest(), 16) % 2 == 0


def _live_values(case):
    """Swaps half of the generated tokens and client ids for live ones, so that those requests get past "unknown
    token" / "unknown client" into the rest of the handler (the other half tests the refusals)."""
    for part, name, env in (
        ("query", "access_token", "ST_LWA_TOKEN"),
        ("query", "client_id", "ST_CLIENT_ID"),
        ("body", "client_id", "ST_CLIENT_ID"),
    ):
        values = getattr(case, part)
        if isinstance(values, dict) and isinstance(values.get(name), str) and _env(env) and _half(values[name]):
            values[name] = _env(env)


def _schemes(case):
    security = case.operation.definition.raw.get("security") or []
    return {name for requirement in security for name in requirement}


@schemathesis.hook
def before_call(context, case, kwargs):
    schemes = _schemes(case)
    headers = case.headers if case.headers is not None else {}
    for name in ("Authorization", "x-amz-access-token", "x-api-key", "x-amz-date"):
        headers.pop(name, None)
    if "session" in schemes:
        unlink = case.operation.path == "/link/unlink"
        headers["Authorization"] = "Bearer " + _env("ST_UNLINK_SESSION" if unlink else "ST_SESSION")
    if "game_server" in schemes:
        headers["Authorization"] = "Bearer " + _env("ST_SERVER_TOKEN")
    if "lwa_token" in schemes:
        headers["Authorization"] = "Bearer " + _env("ST_LWA_TOKEN")
    if "amazon_access_token" in schemes:
        headers["x-amz-access-token"] = _env("ST_LWA_TOKEN")
    if "moments_api_key" in schemes:
        headers["x-api-key"] = _env("ST_MOMENTS_KEY")
    case.headers = headers
    _live_values(case)
    if "dta1" in schemes:
        kwargs["auth"] = Dta1(_env("ST_DTA1_KEY"), _env("ST_DTA1_SECRET"))


@schemathesis.hook
def after_call(context, case, response):
    COUNTS[f"{case.operation.method.upper()} {case.operation.path}"][str(response.status_code)] += 1
    if _env("ST_LOG"):
        with open(_env("ST_LOG"), "a") as log:
            log.write(f"{response.status_code} {case.operation.method.upper()} {response.request.url}\n")


@atexit.register
def _write_counts():
    path = _env("ST_COUNTS")
    if path:
        with open(path, "w") as out:
            json.dump({label: dict(statuses) for label, statuses in sorted(COUNTS.items())}, out, indent=1)
