"""Migrations that change what existing money rows mean, run on rows written before them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import User
from wallets import services
from wallets.codes import code_batch_create, code_redeem
from wallets.models import CodeBatch, LedgerEntry, RedemptionCode, Wallet

BEFORE_SCOPES = [("wallets", "0001_initial"), ("accounts", "0003_user_login_key_unique")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_key_scopes_keep_existing_keys_working_and_free_a_squatted_bonus_key():
    old = migrate(BEFORE_SCOPES)
    OldUser = old.get_model("accounts", "User")
    OldWallet = old.get_model("wallets", "Wallet")
    OldEntry = old.get_model("wallets", "LedgerEntry")
    alice = OldUser.objects.create(login_id="alice", login_key="alice", password="")
    wallet = OldWallet.objects.create(user=alice, balance=105)
    OldEntry.objects.create(
        wallet=wallet, kind="bonus", amount=100, balance_after=100, idempotency_key=f"bonus:{alice.pk}"
    )
    next_id = alice.pk + 1000
    # An operator's squat of the next user's bonus key, as the old schema allowed.
    OldEntry.objects.create(
        wallet=wallet, kind="topup", amount=5, balance_after=105, idempotency_key=f"bonus:{next_id}"
    )
    OldEntry.objects.create(wallet=wallet, kind="topup", amount=1, balance_after=106)
    OldWallet.objects.filter(pk=wallet.pk).update(balance=106)
    try:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

        scopes = dict(LedgerEntry.objects.values_list("amount", "key_scope"))
        assert scopes == {100: "system", 5: "caller", 1: ""}

        alice = User.objects.get(login_id="alice")
        replay = services.wallet_top_up(user=alice, amount=5, reason="x", idempotency_key=f"bonus:{next_id}")
        assert replay.amount == 5 and LedgerEntry.objects.filter(amount=5).count() == 1
        dora = User.objects.create_user("dora", password="a-long-enough-pass-123", id=next_id)
        assert Wallet.objects.get(user=dora).balance == 100
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_redemption_codes_migration_applies_to_existing_wallets_and_reverses():
    others = [
        node for node in MigrationExecutor(connection).loader.graph.leaf_nodes() if node[0] != "wallets"
    ]
    old = migrate([("wallets", "0003_money_rows_outlive_users"), *others])
    OldUser = old.get_model("accounts", "User")
    OldWallet = old.get_model("wallets", "Wallet")
    alice = OldUser.objects.create(login_id="alice", login_key="alice", password="")
    OldWallet.objects.create(user=alice, balance=0)
    try:
        new = migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())  # 0004 and what follows
        assert new.get_model("wallets", "CodeBatch").objects.count() == 0

        _, [code] = code_batch_create(name="after the migration", count=1, credits=7)
        assert code_redeem(user=User.objects.get(login_id="alice"), code=code).balance_after == 7
        RedemptionCode.objects.all().delete()
        CodeBatch.objects.all().delete()
        migrate([("wallets", "0003_money_rows_outlive_users"), *others])  # and back
        assert "wallets_codebatch" not in connection.introspection.table_names()
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
