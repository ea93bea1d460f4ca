import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from chats.catalogue.config import ConfigInvalid, config_document, config_dump, config_parse
from chats.catalogue.selectors import catalogue_read
from chats.catalogue.services import catalogue_apply


class Command(BaseCommand):
    help = (
        "The catalogue (providers, models and their deployments) as YAML: `apply FILE` creates or "
        "updates what FILE names, all or nothing, and changes nothing on a second run; `export` prints "
        "the catalogue in the same format."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{apply,export}")
        apply = actions.add_parser("apply", help="Apply FILE (YAML; - for standard input).")
        apply.add_argument("file")
        actions.add_parser("export", help="Print the catalogue as YAML.")

    def handle(self, *args, action: str, **options):
        if action == "export":
            self.stdout.write(config_dump(config_document(*catalogue_read())), ending="")
            return
        name = options["file"]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {name}: {exc.strerror or exc}.") from None
        try:
            changes = catalogue_apply(config=config_parse(text))
        except ConfigInvalid as exc:
            raise CommandError(f"{name}: {exc.message} Nothing was changed.") from None
        if not changes:
            self.stdout.write(f"No changes: the catalogue already matches {name}.")
            return
        for change in changes:
            self.stdout.write(change)
        self.stdout.write(f"Applied {name}: {len(changes)} change(s).")
