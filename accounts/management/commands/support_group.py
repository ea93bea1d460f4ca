from django.core.management.base import BaseCommand, CommandError

from accounts.roles import SUPPORT_GROUP, SUPPORT_PERMISSIONS, PermissionMissing, support_group_sync


class Command(BaseCommand):
    help = (
        f"Create the {SUPPORT_GROUP!r} group, or set its permissions back to the support role's list "
        "(accounts/roles.py). Run after migrate; add support staff to the group in the admin."
    )

    def handle(self, *args, **options):
        try:
            group, created = support_group_sync()
        except PermissionMissing as exc:
            raise CommandError(f"Unknown permissions (run migrate first): {exc}") from None
        members = group.user_set.count()
        self.stdout.write(
            f"{'Created' if created else 'Updated'} the {group.name!r} group: "
            f"{len(SUPPORT_PERMISSIONS)} permissions, {members} member(s)."
        )
