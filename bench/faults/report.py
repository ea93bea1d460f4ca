"""What the drill prints: a table per scenario, the figures table, and a block for docs/operations.md."""

from __future__ import annotations

from collections import Counter, defaultdict

from faults.scenarios import Result, fmt, one_line

PHASES = ("before", "during", "after")


def scenario_report(result: Result) -> None:
    """What clients saw (by kind, outcome and phase), the figures, the expectations, the books."""
    print(f"\n=== {result.name}: {result.fault} ===")
    window = result.repaired_at - result.fault_at
    print(
        f"fault at +{result.fault_at - result.started:.1f} s, repaired {window:.1f} s later; "
        f"{len(result.records)} requests"
    )
    table: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for index, record in enumerate(result.records):
        outcome = record.outcome()
        if index in result.cut_on_purpose:
            outcome += " [killed worker]"
        table[(record.kind, outcome)][result.phase(record)] += 1
    width = max((len(f"{kind}  {outcome}") for kind, outcome in table), default=20)
    print(f"  {'what clients saw':<{width}}  {'before':>6} {'during':>6} {'after':>6}")
    for (kind, outcome), phases in sorted(table.items()):
        label = f"{kind}  {outcome}"
        print(f"  {label:<{width}}  " + " ".join(f"{phases[p]:>6}" for p in PHASES))
    for name, value in result.figures:
        print(f"  {name}: {value}")
    for expectation in result.expectations:
        mark = "met    " if expectation.met else "NOT MET"
        print(f"  [{mark}] {expectation.text}\n            seen: {expectation.seen}")
    sweep = one_line(result.sweep.output) if result.sweep else "not run"
    print(f"  release_stale_holds: {sweep}")
    print(f"  audit_wallets: {audit_verdict(result)}")
    left = result.leftovers
    print(
        f"  left after the sweep: open holds {left.get('open_holds')}, pending replies "
        f"{left.get('pending_replies')}, wallets holding credit {left.get('wallets_holding')}, "
        f"reply slots taken in Redis {left.get('slots')}"
    )
    if result.log:
        print("  the workers' logs meanwhile (WARNING/ERROR lines by message):")
        for message, count in result.log.most_common(8):
            print(f"    {count:5d}  {message}")
    if result.violations:
        print(f"  INVARIANTS BROKEN ({len(result.violations)}):")
        for violation in result.violations[:20]:
            print(f"    - {violation}")
    else:
        print("  invariants: held")


def audit_verdict(result: Result) -> str:
    if result.audit is None:
        return "not run"
    if result.audit.ok:
        return "clean"
    return f"FAILED ({one_line(result.audit.output)[-300:]})"


def recovery_text(result: Result) -> str:
    if result.recovery is None:
        return result.recovery_note or "-"
    accepted, complete = result.recovery
    return f"{fmt(accepted)} / {fmt(complete)}"


def figures_table(results: list[Result]) -> None:
    print("\n=== figures ===")
    head = (
        "scenario",
        "requests",
        "5xx",
        "unanswered",
        "recovery s (accepted/complete)",
        "audit",
        "invariants",
        "expectations met",
    )
    rows = [head]
    for result in results:
        # Unanswered: cut without a status or a stream's last event, the killed worker's aside.
        fives = sum(1 for r in result.records if (r.status or 0) >= 500)
        five_hundreds = sum(1 for r in result.records if r.status == 500)
        unanswered = sum(
            1
            for index, r in enumerate(result.records)
            if not r.answered and index not in result.cut_on_purpose
        )
        met = sum(e.met for e in result.expectations)
        rows.append(
            (
                result.name,
                str(len(result.records)),
                f"{fives} ({five_hundreds})",
                str(unanswered),
                recovery_text(result),
                audit_verdict(result)[:6],
                "held" if not result.violations else f"{len(result.violations)} broken",
                f"{met}/{len(result.expectations)}",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(head))]
    for row in rows:
        print("  " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def markdown(results: list[Result], lease: int, max_replies: int) -> None:
    """A block for docs/operations.md: what each fault does to clients and to the books, as measured."""
    print("\n=== markdown for docs/operations.md ===\n")
    print("### What a failure does (measured by `bench/fault_drill.py`)\n")
    print(
        f"Two workers on PostgreSQL and Redis, ~20 replies streaming plus a trickle of sign-ins, wallet "
        f"reads, resumes and stops; `REPLY_LEASE_SECONDS={lease}`, `MAX_CONCURRENT_REPLIES={max_replies}`. "
        "After each fault `release_stale_holds`, then `audit_wallets`.\n"
    )
    print(
        "| fault | what clients saw during it | recovery (s, accepted / complete) | books after the sweep |"
    )
    print("|---|---|---|---|")
    for result in results:
        during = Counter(
            record.outcome()
            for index, record in enumerate(result.records)
            if result.phase(record) == "during" and index not in result.cut_on_purpose
        )
        seen = ", ".join(f"{count} x {name}" for name, count in during.most_common(4)) or "-"
        books = audit_verdict(result)
        books = (
            "audit clean, no hold open"
            if books == "clean" and not result.leftovers.get("open_holds")
            else books
        )
        print(f"| {result.fault} | {seen} | {recovery_text(result)} | {books} |")
    print()
    for result in results:
        for expectation in result.expectations:
            state = "yes" if expectation.met else "**no**"
            print(f"- {result.name}: {expectation.text}: {state} ({expectation.seen})")
