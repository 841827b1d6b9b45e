"""Schemathesis hooks for scripts/api-conformance (loaded through SCHEMATHESIS_HOOKS).

1. Real identifiers. Drawn folios, homoclaves and webhook ids almost never exist, so
   the handlers behind them would only ever answer 400/404. The script passes the
   seeded ones (CONFORMANCE_FOLIOS, CONFORMANCE_HOMOCLAVES, CONFORMANCE_WEBHOOK_IDS,
   comma-separated); a path parameter of that name is then drawn from the seeded
   values or kept as generated, so both the real documents and the refusals are tested.
2. Fresh idempotency keys. Generated `Idempotency-Key` values are short and repeat
   ("0", "a"), so a later request would reuse an earlier one's key with another body and
   get the contract's 422 `idempotency_key_reused`, a failure of the test, not of the API.
   A valid key gets a unique suffix (still valid: visible ASCII, at most 200 characters);
   a key that is invalid as generated is left as it is.
3. Integers written as integers. JSON Schema counts 5.0 as an integer, and schemathesis
   sends such values for integer fields; serde (like most typed JSON readers) takes
   only 5. Every integral float in a JSON body is sent as an integer: the same JSON
   Schema value, so no case changes between valid and invalid.
4. Receivers on this machine only. A webhook subscription created by a test points at
   127.0.0.1 (a closed port), so the service never sends a delivery elsewhere, even
   when the script could not isolate it in a network namespace of its own.
"""

import itertools
import os
import re

import schemathesis
from hypothesis import strategies as st


def _pool(name):
    return [v for v in os.environ.get(name, "").split(",") if v]


POOLS = {
    "folio": _pool("CONFORMANCE_FOLIOS"),
    "homoclave": _pool("CONFORMANCE_HOMOCLAVES"),
    "id": _pool("CONFORMANCE_WEBHOOK_IDS"),
}

LOOPBACK_RECEIVER = "http://127.0.0.1:9/webhook"
_C0_AND_SPACE = "".join(map(chr, range(0x21)))


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    choices = {}
    for name, value in path_parameters.items():
        pool = POOLS.get(name)
        if pool:
            choices[name] = st.sampled_from([value, *pool])
    if not choices:
        return st.just(path_parameters)
    return st.fixed_dictionaries(choices).map(lambda drawn: {**path_parameters, **drawn})


_KEY = re.compile(r"[ -~]*")
_SERIAL = itertools.count(1)


@schemathesis.hook
def map_headers(context, headers):
    if not isinstance(headers, dict):
        return headers
    for name, value in headers.items():
        if name.lower() != "idempotency-key" or not isinstance(value, str):
            continue
        key = value.strip(" ")
        if 1 <= len(key) <= 200 and _KEY.fullmatch(value):
            suffix = f"~{os.getpid()}.{next(_SERIAL)}"
            headers = {**headers, name: key[: 200 - len(suffix)] + suffix}
    return headers


def _integral(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


@schemathesis.hook
def map_body(context, body):
    body = _integral(body)
    op = context.operation
    if (
        op is not None
        and op.method.upper() == "POST"
        and op.path == "/api/v1/webhooks"
        and isinstance(body, dict)
        and isinstance(body.get("url"), str)
    ):
        # As lenient as the service's URL parser (WHATWG: leading C0 controls and spaces
        # are dropped, tabs and newlines anywhere, `http:host` has a host): anything it
        # could take as http(s) goes.
        url = body["url"].translate({9: None, 10: None, 13: None})
        if url.lstrip(_C0_AND_SPACE).lower().startswith(("http:", "https:")):
            return {**body, "url": LOOPBACK_RECEIVER}
    return body


# Received mail goes to the service as raw RFC 822 text; schemathesis has no serializer
# for message/rfc822, so it is sent as text. Besides the generated strings, a plain
# well-formed message (a new report) is sometimes sent, so the accepted path is tested too.
schemathesis.serializer.alias("message/rfc822", "text/plain")

SAMPLE_EMAIL = (
    "From: Responsable <responsable@example.gob.mx>\r\n"
    "To: Mesa de ayuda <mesa@incidencias.gob.mx>\r\n"
    "Subject: Falla en el tramite\r\n"
    "Date: Tue, 01 Dec 2026 10:00:00 -0600\r\n"
    "Message-ID: <conformance-1@example.gob.mx>\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "El tramite no responde desde las 9:30.\r\n"
)


@schemathesis.hook
def flatmap_body(context, body):
    op = context.operation
    if (
        op is not None
        and op.method.upper() == "POST"
        and op.path == "/api/v1/inbound-email"
        and isinstance(body, str)  # a non-string is a negative case: left as it is
    ):
        return st.sampled_from([body, SAMPLE_EMAIL])
    return st.just(body)
