from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from tests.helpers.money import age_hold, reserve
from wallets import services
from wallets.codes import code_redeem
from wallets.models import CREDITS_MAX, CodeBatch, LedgerEntry, RedemptionCode, Wallet

pytestmark = pytest.mark.django_db


def run(name: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def balance_of(user) -> int:
    return Wallet.objects.get(user=user).balance


# --- topup_wallet ------------------------------------------------------------


def test_topup_prints_the_new_balance(user):
    out, _ = run("topup_wallet", "alice", "50", "--reason", "bank transfer 42")
    assert out.strip() == "alice: balance 150 credits"
    entry = LedgerEntry.objects.get(kind="topup")
    assert (entry.amount, entry.description, entry.actor) == (50, "bank transfer 42", None)


def test_topup_finds_the_login_id_in_any_case(user):
    run("topup_wallet", "ALICE", "5", "--reason", "x")
    assert balance_of(user) == 105


def test_topup_with_a_key_applies_once(user):
    run("topup_wallet", "alice", "50", "--reason", "order 1", "--key", "order-1")
    out, _ = run("topup_wallet", "alice", "50", "--reason", "order 1", "--key", "order-1")
    assert "already applied" in out
    assert "balance 150" in out
    assert balance_of(user) == 150


def test_topup_key_reused_with_another_amount_fails(user):
    run("topup_wallet", "alice", "50", "--reason", "order 1", "--key", "order-1")
    with pytest.raises(CommandError) as caught:
        run("topup_wallet", "alice", "60", "--reason", "order 1", "--key", "order-1")
    assert str(caught.value) == (
        "--key 'order-1' was already used for a different operation (another user, amount or kind); "
        "nothing added."
    )
    assert balance_of(user) == 150


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "5", "--reason", "x"], "No user with login id 'nobody'."),
        (["alice", "0", "--reason", "x"], "AMOUNT: Must be greater than zero."),
        (["alice", "-5", "--reason", "x"], "AMOUNT: Must be greater than zero."),
        (["alice", "1.5", "--reason", "x"], "Error: argument amount: '1.5' is not a whole number of credits"),
        (["alice", "ten", "--reason", "x"], "Error: argument amount: 'ten' is not a whole number of credits"),
        (["alice", "5"], "Error: the following arguments are required: --reason"),
        (["alice", "5", "--reason", "   "], "--reason: A reason is required."),
        (
            ["alice", "5", "--reason", "x", "--key", ""],
            "--key: A non-empty string of at most 200 characters.",
        ),
        (["alice", str(2**63), "--reason", "x"], f"AMOUNT: Must be at most {CREDITS_MAX} credits."),
        (["alice", str(10**30), "--reason", "x"], f"AMOUNT: Must be at most {CREDITS_MAX} credits."),
        (
            ["alice", str(CREDITS_MAX), "--reason", "x"],
            f"AMOUNT: The balance would pass {CREDITS_MAX} credits, the most a wallet holds (it holds 100).",
        ),
    ],
)
def test_topup_bad_input_is_one_clear_sentence_and_writes_nothing(user, args, message):
    with pytest.raises(CommandError) as caught:
        run("topup_wallet", *args)
    assert str(caught.value) == message
    assert "request" not in message
    assert balance_of(user) == 100
    assert LedgerEntry.objects.count() == 1


def test_topup_past_the_range_exits_non_zero_without_a_traceback(user, capsys):
    command = load_command_class("wallets", "topup_wallet")
    with pytest.raises(SystemExit) as exited:
        command.run_from_argv(["manage.py", "topup_wallet", "alice", str(10**30), "--reason", "x"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.strip() == f"CommandError: AMOUNT: Must be at most {CREDITS_MAX} credits."
    # (run_from_argv closes the connections, so the balance is checked by the call_command tests above.)


def test_topup_failure_exits_non_zero_from_the_command_line(user, capsys):
    command = load_command_class("wallets", "topup_wallet")
    with pytest.raises(SystemExit) as exited:
        command.run_from_argv(["manage.py", "topup_wallet", "nobody", "5", "--reason", "x"])
    assert exited.value.code == 1
    assert "No user with login id 'nobody'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("topup_wallet", ["LOGIN_ID", "AMOUNT", "--reason", "--key", "applies once"]),
        ("audit_wallets", ["ledger", "held", "non-zero", "release_stale_holds"]),
    ],
)
def test_help_explains_each_command(command, words):
    text = " ".join(
        load_command_class("wallets", command).create_parser("manage.py", command).format_help().split()
    )
    for word in words:
        assert word in text


# --- audit_wallets -----------------------------------------------------------


def test_audit_passes_when_every_wallet_matches(user, other_user):
    # Released, not settled: a charge needs its usage record, which the chats app writes (and its
    # tests audit with).
    hold = reserve(user=user, amount=10)
    services.wallet_release(hold_id=hold.pk)
    reserve(user=other_user, amount=10)
    out, err = run("audit_wallets")
    assert "Every wallet matches" in out
    assert err == ""


def test_audit_catches_a_tampered_balance(user, other_user):
    Wallet.objects.filter(user=user).update(balance=500)
    with pytest.raises(CommandError, match="1 problem"):
        run("audit_wallets")


def test_audit_lists_every_mismatch(user, other_user):
    Wallet.objects.filter(user=user).update(balance=500)
    Wallet.objects.filter(user=other_user).update(held=5)
    err = StringIO()
    with pytest.raises(CommandError, match="2 problem"):
        call_command("audit_wallets", stdout=StringIO(), stderr=err)
    lines = err.getvalue().splitlines()
    assert len(lines) == 2
    assert "(alice)" in lines[0]
    assert "balance 500 != ledger sum 100" in lines[0]
    assert "last entry's balance_after 100" in lines[0]
    assert "(bob)" in lines[1]
    assert "held 5 != open holds 0" in lines[1]


def test_audit_reports_a_stale_hold(user):
    hold = reserve(user=user, amount=10)
    age_hold(hold, minutes=60)
    err = StringIO()
    with pytest.raises(CommandError, match="1 problem"):
        call_command("audit_wallets", stdout=StringIO(), stderr=err)
    assert f"hold {hold.pk} of 10" in err.getvalue()
    assert "run release_stale_holds" in err.getvalue()


# --- create_codes --------------------------------------------------------------


def test_create_codes_prints_the_codes_one_per_line_and_a_summary_on_stderr(user):
    out, err = run("create_codes", "--count", "3", "--credits", "20", "--name", "Conference")

    codes = out.splitlines()
    assert len(set(codes)) == 3
    batch = CodeBatch.objects.get()
    assert err.strip() == f"Batch #{batch.pk} 'Conference': 3 codes of 20 credits, with no expiry."
    assert (batch.count, batch.credits, batch.expires_at, batch.created_by) == (3, 20, None, None)
    assert code_redeem(user=user, code=codes[2]).amount == 20


def test_create_codes_expire_at_the_end_of_the_given_day_utc():
    _, err = run("create_codes", "--count", "1", "--credits", "5", "--expires", "2099-03-31")
    batch = CodeBatch.objects.get()
    assert batch.expires_at == datetime(2099, 4, 1, tzinfo=UTC)
    assert batch.name == "1 codes of 5 credits"
    assert "until the end of 2099-03-31 (UTC)" in err


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--count", "0", "--credits", "5"], "--count: A whole number from 1 to 10000."),
        (["--count", "x", "--credits", "5"], "--count: 'x' is not a whole number."),
        (["--count", "2", "--credits", "0"], "--credits: Must be greater than zero."),
        (["--count", "2", "--credits", "1.5"], "--credits: '1.5' is not a whole number."),
        (
            ["--count", "2", "--credits", str(CREDITS_MAX + 1)],
            f"--credits: Must be at most {CREDITS_MAX} credits.",
        ),
        (
            ["--count", "2", "--credits", "5", "--expires", "31/12/2099"],
            "--expires: '31/12/2099' is not a date",
        ),
        (
            ["--count", "2", "--credits", "5", "--expires", "2020-01-01"],
            "--expires: 2020-01-01 is in the past; the codes would never work.",
        ),
        (["--count", "2", "--credits", "5", "--name", " "], "--name: A name is required."),
    ],
)
def test_create_codes_bad_input_is_one_sentence_and_writes_nothing(args, sentence):
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("create_codes", *args, stdout=out, stderr=err)

    assert str(caught.value).startswith(sentence) and "\n" not in str(caught.value)
    assert (out.getvalue(), err.getvalue()) == ("", "")
    assert not CodeBatch.objects.exists() and not RedemptionCode.objects.exists()


def test_create_codes_bad_input_exits_1_from_the_command_line(capsys):
    command = load_command_class("wallets", "create_codes")
    with pytest.raises(SystemExit) as exited:
        command.run_from_argv(["manage.py", "create_codes", "--count", "2", "--credits", "-5"])
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", "CommandError: --credits: Must be greater than zero.\n")
    # (run_from_argv closes the connections, so "nothing written" is checked through call_command above.)
