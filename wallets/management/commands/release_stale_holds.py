from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from wallets.services import holds_release_stale


class Command(BaseCommand):
    help = (
        "Release reservations still open after --minutes (default STALE_HOLD_MINUTES), such as those "
        "left by a process that crashed mid-reply, and mark such replies failed. Charges nothing; a hold "
        "settled meanwhile is left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--minutes",
            type=int,
            default=settings.STALE_HOLD_MINUTES,
            help="Age in minutes after which an open hold counts as stale (default: %(default)s).",
        )

    def handle(self, *args, minutes: int, **options):
        if minutes < 0:
            raise CommandError("--minutes must be zero or more.")
        older_than = timedelta(minutes=minutes)
        if apps.is_installed("chats"):
            # Replies left streaming by a dead process: marked failed, their holds released.
            from chats.services import replies_close_stale

            closed = replies_close_stale(older_than=older_than)
            self.stdout.write(f"Closed {closed} stale repl{'y' if closed == 1 else 'ies'} as failed.")
        # Then any hold still open, whoever made it.
        released = holds_release_stale(older_than=older_than)
        for hold in released:
            self.stdout.write(f"released hold {hold.pk}: {hold.amount} credits of wallet {hold.wallet_id}")
        self.stdout.write(f"Released {len(released)} stale hold(s).")
