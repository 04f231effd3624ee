"""Reference ids: the key to exactly-once sending. DubDash makes random ones; a person may choose one."""

from __future__ import annotations

import uuid

from submissions.models import GENERATED_REFERENCE_ID

REFERENCE_ID_CLASH = (
    "A job made outside DubDash on the same Chamelaion account already uses the reference id “{reference_id}”. "
    "Nothing was sent: looking the job up by that id would find the other one. Choose another reference id "
    "(or leave it blank) and send it again."
)


def new_reference_id() -> str:
    return f"dubdash-{uuid.uuid4().hex}"


def chose_reference_id(reference_id: str) -> bool:
    """Whether a person chose this id (one DubDash made is random: no other job can hold it)."""
    return GENERATED_REFERENCE_ID.fullmatch(reference_id or "") is None
