from django.urls import path

from wallets import views

app_name = "wallets"

urlpatterns = [
    path("wallet/", views.WalletView.as_view(), name="wallet"),
    path("wallet/transactions/", views.TransactionListView.as_view(), name="transactions"),
]
