"""Schemathesis hooks for scripts/contract-fuzz: make generated requests use
the API's opaque values the way a real client does, so that a refusal of
them says something about the server.

- `cursor` is opaque: only the `next_cursor` of a previous page is one. A
  schema-valid (positive) case therefore sends none; negative cases keep
  theirs, so an invalid cursor must still be refused.
- `Idempotency-Key` names one request: a client makes a fresh key for each
  new request. Positive cases get a fresh one, so that two different
  generated requests never share a key (which is `422
  idempotency_key_reused`, rightly).
"""

import uuid

import schemathesis


def _positive(case):
    meta = getattr(case, "meta", None)
    try:
        return meta is not None and meta.generation.mode.is_positive
    except AttributeError:
        return False


@schemathesis.hook
def before_call(context, case, **kwargs):
    if not _positive(case):
        return
    if case.query and "cursor" in case.query:
        del case.query["cursor"]
    if case.headers:
        for name in list(case.headers):
            if name.lower() == "idempotency-key":
                case.headers[name] = str(uuid.uuid4())
