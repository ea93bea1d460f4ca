from datetime import UTC, date, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from wallets.codes import code_batch_create


def whole_number(raw: str, *, argument: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise CommandError(f"{argument}: {raw!r} is not a whole number.") from None


def day(raw: str | None) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"--expires: {raw!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = (
        "Make a batch of COUNT redemption codes worth CREDITS each and print them, one per line: this is "
        "the only time they are shown (Parley stores their digests). With --expires, the codes work until "
        "the end of that day (UTC). A summary goes to stderr, so stdout can be redirected to a file."
    )

    def add_arguments(self, parser):
        # Values are checked in handle(), so that every bad value is one sentence and exit status 1.
        parser.add_argument("--count", required=True, help="How many codes (1 to 10000).")
        parser.add_argument("--credits", required=True, help="Credits per code.")
        parser.add_argument("--expires", help="Last day the codes work (UTC), YYYY-MM-DD.")
        parser.add_argument("--name", help="The batch's name, shown on each redemption's ledger entry.")

    def handle(self, *args, count: str, credits: str, expires: str | None, name: str | None, **options):
        count, credits = whole_number(count, argument="--count"), whole_number(credits, argument="--credits")
        expires = day(expires)
        expires_at = None if expires is None else datetime.combine(expires + timedelta(days=1), time(), UTC)
        if name is None:
            name = f"{count} codes of {credits} credits"
        try:
            batch, codes = code_batch_create(
                name=name, count=count, credits=credits, expires_at=expires_at, actor=None
            )
        except DomainError as exc:
            raise CommandError(_describe(exc, expires=expires)) from None
        for code in codes:
            self.stdout.write(code)
        until = f", until the end of {expires:%Y-%m-%d} (UTC)" if expires else ", with no expiry"
        self.stderr.write(
            f"Batch #{batch.pk} {batch.name!r}: {batch.count} codes of {batch.credits} credits{until}."
        )


# The service names its inputs as the admin does; the operator typed these.
_ARGUMENTS = {"count": "--count", "credits": "--credits", "expires_at": "--expires", "name": "--name"}


def _describe(exc: DomainError, *, expires: date | None) -> str:
    """One sentence per problem, in the command's terms; nothing was written."""
    problems = []
    for field, errors in exc.details.items():
        for error in errors if isinstance(errors, list) else [errors]:
            if field == "expires_at":
                error = f"{expires:%Y-%m-%d} is in the past; the codes would never work."
            problems.append(f"{_ARGUMENTS.get(field, field)}: {error}")
    return " ".join(problems) or exc.message
