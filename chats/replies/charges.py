"""What a reply's ledger charge says: which reply, where it was asked, and on which model.

Support reads these lines in the admin's ledger (and a user in their own): a
chat reply names its session's title, its category and its catalogue model (the
model's public id, which set its price); a ``/v1/`` request names its key and
the catalogue model, and the category when the client named one. The ids find
the message or the usage record. A line never exceeds the ledger's
``description``: a long title (or key name) is shortened, so that the category
and the model are always said.
"""

from wallets.models import LedgerEntry

DESCRIPTION_MAX = LedgerEntry._meta.get_field("description").max_length
ELLIPSIS = "…"


def reply_charge_description(*, reply_id, session_title: str, category_name: str, model: str) -> str:
    """``Reply <id> in "<session title>" (<category name>, model <model>)``."""
    tail = f" ({category_name}, model {model})"
    if not session_title:
        return _fitted(f"Reply {reply_id} in an untitled session", "", tail)
    return _fitted(f'Reply {reply_id} in "', session_title, f'"{tail}')


def request_charge_description(*, record_id, key_label: str, model: str, category_slug: str = "") -> str:
    """``API request <id> with key <prefix> (<key name>), model <model id>[ (category <slug>)]``: the
    category when the client named one whose slug is not its model's id."""
    category = f" (category {category_slug})" if category_slug and category_slug != model else ""
    return _fitted(f"API request {record_id} with key ", key_label, f", model {model}{category}")


def _fitted(head: str, middle: str, tail: str) -> str:
    """``head + middle + tail`` in at most ``DESCRIPTION_MAX`` characters, ``middle`` shortened first."""
    room = DESCRIPTION_MAX - len(head) - len(tail)
    if len(middle) > room:
        middle = middle[: max(room - len(ELLIPSIS), 0)] + ELLIPSIS
    return f"{head}{middle}{tail}"[:DESCRIPTION_MAX]
