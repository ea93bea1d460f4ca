from django.urls import path

from core.routing import either_slash
from wallets.views import WalletViewSet

app_name = "wallets"

# Explicit maps rather than a router: one wallet per user, so the resource has
# no id, and a router's list/detail routes would not fit it. ``name`` and
# ``description`` keep what OPTIONS says about each URL.
wallet = WalletViewSet.as_view(
    {"get": "retrieve", "post": "create"},
    name="Wallet",
    description=WalletViewSet.retrieve.__doc__,
)
transactions = WalletViewSet.as_view(
    {"get": "transactions"},
    name="Transaction List",
    description=WalletViewSet.transactions.__doc__,
)
# A routed @action gets its own arguments (here the throttles) from the router; mapped by hand,
# it gets them from here.
redeem = WalletViewSet.as_view({"post": "redeem"}, **{**WalletViewSet.redeem.kwargs, "name": "Redeem"})

urlpatterns = [
    path("wallet/", wallet, name="wallet"),
    path("wallet/transactions/", transactions, name="transactions"),
    path("wallet/redeem/", redeem, name="redeem"),
]
urlpatterns = either_slash(urlpatterns)
