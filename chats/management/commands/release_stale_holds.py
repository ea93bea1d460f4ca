from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from chats.replies.services import holds_release_orphaned, replies_close_stale


class Command(BaseCommand):
    help = (
        "Close replies whose process died mid-stream (their lease ran out): stored failed, their holds "
        "released. Then release any other reservation still open after --minutes (default "
        "STALE_HOLD_MINUTES). Charges nothing; live replies and holds settled meanwhile are left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--minutes",
            type=int,
            default=settings.STALE_HOLD_MINUTES,
            help="Age in minutes after which a hold of no live reply counts as stale (default: %(default)s).",
        )

    def handle(self, *args, minutes: int, **options):
        if minutes < 0:
            raise CommandError("--minutes must be zero or more.")
        closed = replies_close_stale()
        self.stdout.write(f"Closed {closed} stale repl{'y' if closed == 1 else 'ies'} as failed.")
        released = holds_release_orphaned(older_than=timedelta(minutes=minutes))
        for hold in released:
            self.stdout.write(f"released hold {hold.pk}: {hold.amount} credits of wallet {hold.wallet_id}")
        self.stdout.write(f"Released {len(released)} stale hold(s).")
