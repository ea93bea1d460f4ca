import argparse

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.errors import DomainError
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
            raise CommandError(_describe(exc)) from None
        balance = Wallet.objects.get(pk=entry.wallet_id).balance
        if entry.created_at < started:
            self.stdout.write(
                f"Key {key!r} was already applied on {entry.created_at:%Y-%m-%d %H:%M}; nothing added."
            )
        self.stdout.write(f"{user.login_id}: balance {balance} credits")


def _describe(exc: DomainError) -> str:
    fields = "; ".join(f"{field}: {' '.join(map(str, errors))}" for field, errors in exc.details.items())
    return f"{exc.message} {fields}".strip()
