"""Text that people type, paste or upload: what DubDash refuses in it, written once for every form."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# C0 controls and DEL. None is ever meant in a title, a name or an address; PostgreSQL cannot store NUL
# at all, and Chamelaion would receive the rest invisibly. Tab, line feed and carriage return are ordinary
# in pasted text, and the URL check refuses any whitespace in addresses anyway.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def refuse_control_characters(value: str) -> None:
    """Raise a ValidationError that says where the first invisible control character is."""
    found = CONTROL_CHARACTERS.search(value or "")
    if found is not None:
        raise ValidationError(
            "This contains an invisible control character (U+%(code)s) at position %(position)d, which "
            "cannot be stored or sent. Retype the text, or copy it again from its source.",
            code="control_character",
            params={"code": f"{ord(found.group()):04X}", "position": found.start() + 1},
        )
