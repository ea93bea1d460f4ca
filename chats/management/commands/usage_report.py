import csv
import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from chats.usage.periods import DEFAULT_RANGE_DAYS, LAST_DAY, default_range, today
from chats.usage.selectors import REPORT_COLUMNS, REPORT_GROUPS, usage_report_rows

FORMATS = ("table", "csv")
# Rows are written as the database yields them, so the table's first column cannot be sized
# from the data: it is as wide as the longest value its group can hold (a login may be longer,
# and then only its own line is pushed out).
GROUP_WIDTHS = {"day": 10, "user": 32, "category": 24}
NUMBER_WIDTH = 16


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} must be a date written YYYY-MM-DD, not {value!r}.") from None


class Command(BaseCommand):
    help = (
        "Credits charged to everyone over a range of UTC days (both included), by day, user or "
        "category: the number of charges and the credits. Rows are streamed from the database."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from",
            dest="date_from",
            help=f"First UTC day, YYYY-MM-DD (default: {DEFAULT_RANGE_DAYS - 1} days before --to).",
        )
        parser.add_argument(
            "--to", dest="date_to", help="Last UTC day, YYYY-MM-DD, included (default: today)."
        )
        parser.add_argument("--group-by", choices=REPORT_GROUPS, default="day")
        parser.add_argument("--format", dest="output_format", choices=FORMATS, default="table")

    def handle(self, *args, date_from, date_to, group_by, output_format, **options):
        end = _date(date_to, "--to") if date_to else today()
        if end > LAST_DAY:
            raise CommandError(f"--to must be {LAST_DAY.isoformat()} or earlier, not {end}.")
        start = _date(date_from, "--from") if date_from else default_range(end=end)[0]
        if start > end:
            raise CommandError(f"--from ({start}) must not be after --to ({end}).")
        rows = usage_report_rows(date_from=start, date_to=end, group_by=group_by)
        header = (group_by, *REPORT_COLUMNS)
        if output_format == "csv":
            writer = csv.writer(self.stdout, lineterminator="\n")
            writer.writerow(header)
            for row in rows:
                writer.writerow(_text(row))
            return
        width = GROUP_WIDTHS[group_by]
        line = f"{{:<{width}}}" + f"  {{:>{NUMBER_WIDTH}}}" * len(REPORT_COLUMNS)
        self.stdout.write(line.format(*header))
        charges = credits = 0
        for row in rows:
            charges, credits = charges + row[1], credits + row[2]
            self.stdout.write(line.format(*_text(row)))
        self.stdout.write(line.format("total", charges, credits))


def _text(row: tuple) -> tuple:
    group, *numbers = row
    if group is None:  # a category not kept (``UsageRecord``)
        return ("(unknown)", *numbers)
    return (group.isoformat() if isinstance(group, dt.date) else str(group), *numbers)
