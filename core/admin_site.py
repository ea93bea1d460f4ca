"""The admin site in support's words: its sections are the work, not the apps that hold the models.

Django's index lists every app under its own name, alphabetically, so allauth's
and simplejwt's models sat between the sections support uses every day. This
site (``admin.site``, through ``ParleyAdminConfig`` in ``INSTALLED_APPS``) lists,
in this order, on the index, in the sidebar and on an app's own page:

- People: users and their API keys (``accounts``)
- Money: wallets, ledger entries, holds, code batches, redemption codes (``wallets``)
- Chats: categories, models (the catalogue, deployments inline), providers, chat sessions, usage
  records (``chats``)
- Reports: the pages registered with ``register_report`` (the Usage page)
- Access, last: every other registered model, the libraries' (groups, linked Google
  accounts, refresh tokens), for administrators; the support role
  (``accounts.roles``) has no permission on any of them.

Each section shows only what the user may see, as Django's index does; a
section with nothing in it is left out.
"""

from dataclasses import dataclass

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.urls import reverse

# Each support section: its app, and its models in the order support meets them. A model not
# named here comes after these, alphabetically; an app not named here goes under Access.
SECTIONS = {
    "accounts": ("user", "apikey"),
    "wallets": ("wallet", "ledgerentry", "hold", "codebatch", "redemptioncode"),
    "chats": ("category", "cataloguemodel", "provider", "chatsession", "usagerecord"),
}
REPORTS = "Reports"
ACCESS = "Access"


@dataclass(frozen=True)
class Report:
    name: str
    url_name: str
    permission: str


class ParleyAdminSite(admin.AdminSite):
    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self._reports: list[Report] = []

    def register_report(self, name: str, *, url_name: str, permission: str) -> None:
        """List the admin page ``url_name`` under Reports, for staff with ``permission``."""
        self._reports.append(Report(name=name, url_name=url_name, permission=permission))

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        """The sections; with ``app_label`` (an app's own page), the section holding that app."""
        apps = self._build_app_dict(request)
        sections = []
        for label, order in SECTIONS.items():
            if (app := apps.pop(label, None)) is not None:
                rank = {model_name: index for index, model_name in enumerate(order)}
                app["models"].sort(
                    key=lambda model: (rank.get(model["object_name"].lower(), len(order)), model["name"])
                )
                sections.append({**app, "app_labels": [label]})
        if (reports := self._reports_section(request)) is not None:
            sections.append(reports)
        if apps:
            sections.append(_access_section(apps))
        if app_label is None:
            return sections
        return [section for section in sections if app_label in section["app_labels"]]

    def _reports_section(self, request: HttpRequest) -> dict | None:
        pages = [
            {
                "name": report.name,
                "object_name": report.name.replace(" ", ""),
                "admin_url": reverse(report.url_name, current_app=self.name),
                "add_url": None,
                "view_only": True,
                "perms": {"view": True},
            }
            for report in self._reports
            if request.user.has_perm(report.permission)
        ]
        if not pages:
            return None
        return {
            "name": REPORTS,
            "app_label": "reports",
            "app_labels": [],  # no app: the caption opens the first report
            "app_url": pages[0]["admin_url"],
            "has_module_perms": True,
            "models": pages,
        }


def _access_section(apps: dict[str, dict]) -> dict:
    """The libraries' apps as one section: by app, then by model, as Django orders them."""
    ordered = sorted(apps.values(), key=lambda app: app["name"].lower())
    return {
        "name": ACCESS,
        "app_label": "access",
        "app_labels": [app["app_label"] for app in ordered],  # each app's page shows the whole section
        "app_url": ordered[0]["app_url"],
        "has_module_perms": True,
        "models": [model for app in ordered for model in sorted(app["models"], key=lambda m: m["name"])],
    }


class ParleyAdminConfig(AdminConfig):
    """``django.contrib.admin`` with ``ParleyAdminSite`` as ``admin.site``."""

    default_site = "core.admin_site.ParleyAdminSite"
