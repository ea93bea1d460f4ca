import argparse

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.errors import DomainError
from wallets.errors import IdempotencyKeyReused
from wallets.models import Wallet
from wallets.services import wallet_top_up


def whole_credits(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of credits") from None


class Command(BaseCommand):
    help = (
        "Add AMOUNT credits to the wallet of LOGIN_ID, recorded as a top-up with a reason. "
        "With --key, running it again with the same key credits nothing more. Prints the new balance."
    )

    def add_arguments(self, parser):
        parser.add_argument("login_id", help="The user's login id (any case).")
        parser.add_argument("amount", type=whole_credits, help="Whole credits, greater than zero.")
        parser.add_argument("--reason", required=True, help="Why; stored on the ledger entry.")
        parser.add_argument("--key", help="Idempotency key: the same key applies once.")

    def handle(self, *args, login_id: str, amount: int, reason: str, key: str | None, **options):
        User = get_user_model()
        try:
            user = User.objects.get_by_natural_key(login_id)
        except User.DoesNotExist:
            raise CommandError(f"No user with login id {login_id!r}.") from None
        started = timezone.now()
        try:
            entry = wallet_top_up(user=user, amount=amount, reason=reason, idempotency_key=key)
        except DomainError as exc:
            raise CommandError(_describe(exc, key=key)) from None
        balance = Wallet.objects.get(pk=entry.wallet_id).balance
        if entry.created_at < started:
            self.stdout.write(
                f"Key {key!r} was already applied on {entry.created_at:%Y-%m-%d %H:%M}; nothing added."
            )
        self.stdout.write(f"{user.login_id}: balance {balance} credits")


# The service names its inputs as the API does; the operator typed these.
_ARGUMENTS = {"amount": "AMOUNT", "reason": "--reason", "idempotency_key": "--key"}


def _describe(exc: DomainError, *, key: str | None) -> str:
    """One sentence per problem, in the command's terms; nothing written, so say nothing twice."""
    if isinstance(exc, IdempotencyKeyReused):
        return (
            f"--key {key!r} was already used for a different operation (another user, amount or kind); "
            "nothing added."
        )
    problems = [
        f"{_ARGUMENTS.get(field, field)}: {error}"
        for field, errors in exc.details.items()
        for error in (errors if isinstance(errors, list) else [errors])
    ]
    return " ".join(problems) or exc.message
