from django.core.management.base import BaseCommand, CommandError

from chats.catalogue.checks import deployments_check


class Command(BaseCommand):
    help = (
        "Reach every deployment's provider (its model list and a one-token completion) and print, per "
        "deployment, reachable or not and the time it took. Exits non-zero if any is unreachable."
    )

    def handle(self, *args, **options):
        checks = deployments_check()
        if not checks:
            self.stdout.write("No deployments to check.")
            return
        for check in checks:
            target = check.target
            where = f"{target.model} -> {target.upstream_model} on {target.provider} ({target.kind})"
            state = "reachable" if check.reachable else "UNREACHABLE"
            detail = f": {check.detail}" if check.detail else ""
            self.stdout.write(f"{where}: {state} in {check.seconds * 1000:.0f} ms{detail}")
        failed = sum(not check.reachable for check in checks)
        if failed:
            raise CommandError(f"{failed} of {len(checks)} deployments unreachable.")
        self.stdout.write(f"All {len(checks)} deployments reachable.")
