from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from wallets.audit import audit_checks
from wallets.selectors import holds_stale, wallets_audit


class Command(BaseCommand):
    help = (
        "Check every wallet against its rows: balance = sum of its ledger = the last entry's balance_after, "
        "available (balance - held) not negative, held = sum of its open holds. Lists each mismatch and "
        "exits non-zero if there is any. Also lists holds open longer than STALE_HOLD_MINUTES "
        "(release_stale_holds frees those whose reply is gone), and runs the checks other apps add "
        "(chats: every charge has the usage record of its hold, at its amount)."
    )

    def handle(self, *args, **options):
        older_than = timedelta(minutes=settings.STALE_HOLD_MINUTES)
        problems = [str(mismatch) for mismatch in wallets_audit()]
        problems += [
            f"wallet {hold.wallet_id} ({hold.wallet.user.login_id}): hold {hold.pk} of {hold.amount} "
            f"open since {hold.created_at:%Y-%m-%d %H:%M:%S} (run release_stale_holds)"
            for hold in holds_stale(older_than=older_than)
        ]
        problems += [problem for check in audit_checks() for problem in check()]
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} problem(s) found.")
        self.stdout.write(self.style.SUCCESS("Every wallet matches its ledger and holds."))
