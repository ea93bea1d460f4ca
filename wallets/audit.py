"""Checks of the ledger against rows other apps keep beside it, run by ``audit_wallets``.

``wallets`` imports nothing of the apps above it (chats → wallets → accounts → core), yet some of
them keep a row for each entry of the ledger (chats: the usage record of each ``charge``). Such an
app registers a check here from its ``AppConfig.ready``, and the command runs it after its own.
"""

from collections.abc import Callable, Iterable

#: Yields one line per problem found, naming the wallet as ``WalletMismatch`` does.
AuditCheck = Callable[[], Iterable[str]]

_checks: dict[str, AuditCheck] = {}


def audit_check_register(name: str, check: AuditCheck) -> None:
    """Have ``audit_wallets`` run ``check``; registering a ``name`` again replaces its check."""
    _checks[name] = check


def audit_checks() -> list[AuditCheck]:
    """The registered checks, in the order they were first registered."""
    return list(_checks.values())
