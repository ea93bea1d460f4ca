"""The staff "Usage" page of the admin: credits spent per day by category, and the top spenders.

The chart is SVG drawn on the server (a stacked bar per UTC day, one segment
per category); no JavaScript. Each bar and segment carries ``data-day``,
``data-category`` and ``data-credits``, which the tests read. Staff need
``wallets.view_ledgerentry``: without it the page answers 403; the admin's
``admin_view`` sends everyone who is not staff to its login.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django import forms
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from chats.usage import admin_selectors
from chats.usage.periods import LAST_DAY, MAX_RANGE_DAYS, days, default_range, span_days, today

VIEW_PERMISSION = "wallets.view_ledgerentry"


TOP_SPENDERS = 10


# The chart's geometry, in SVG user units.
CHART_WIDTH, CHART_HEIGHT = 960, 260


PLOT_LEFT, PLOT_TOP, PLOT_BOTTOM = 56, 12, 28


PALETTE = ["#417690", "#e5a33d", "#79aec8", "#ba2121", "#5b8c5a", "#8e6bb8", "#d27c9c", "#6d6d6d"]


class UsageRangeForm(forms.Form):
    start = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        end = data.get("end") or today()
        if end > LAST_DAY:
            raise forms.ValidationError(f"“To” must be {LAST_DAY.isoformat()} or earlier.")
        start = data.get("start") or default_range(end=end)[0]
        if start > end:
            raise forms.ValidationError("“From” must not be after “To”.")
        if span_days(start, end) > MAX_RANGE_DAYS:
            raise forms.ValidationError(f"Choose a range of at most {MAX_RANGE_DAYS} days.")
        data["start"], data["end"] = start, end
        return data


@dataclass(frozen=True)
class Segment:
    category: str
    name: str
    color: str
    credits: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    day: dt.date
    credits: int
    x: float
    width: float
    segments: list[Segment]
    label: str  # the day under the bar, on some bars only


def chart(spends: list[admin_selectors.CategorySpend], *, start: dt.date, end: dt.date) -> dict:
    """The stacked bars, legend and scale of the SVG for ``spends`` over ``start``..``end``."""
    categories = list(
        dict.fromkeys(
            spend.category
            for spend in sorted(spends, key=lambda spend: (spend.category.order, spend.category.slug))
        )
    )
    colors = {category.pk: PALETTE[index % len(PALETTE)] for index, category in enumerate(categories)}
    by_day: dict[dt.date, list[admin_selectors.CategorySpend]] = {}
    for spend in spends:
        by_day.setdefault(spend.day, []).append(spend)
    chart_days = days(start, end)
    peak = max((sum(spend.credits for spend in by_day.get(day, [])) for day in chart_days), default=0) or 1
    plot_width = CHART_WIDTH - PLOT_LEFT - 8
    plot_height = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    step = plot_width / len(chart_days)
    label_every = max(1, round(len(chart_days) / 10))
    bars = []
    for index, day in enumerate(chart_days):
        base = PLOT_TOP + plot_height
        segments = []
        for spend in by_day.get(day, []):
            height = spend.credits / peak * plot_height
            base -= height
            segments.append(
                Segment(
                    category=spend.category.slug,
                    name=spend.category.name,
                    color=colors[spend.category.pk],
                    credits=spend.credits,
                    y=round(base, 2),
                    height=round(height, 2),
                )
            )
        bars.append(
            Bar(
                day=day,
                credits=sum(segment.credits for segment in segments),
                x=round(PLOT_LEFT + index * step + step * 0.1, 2),
                width=round(step * 0.8, 2),
                segments=segments,
                label=day.strftime("%b %d") if index % label_every == 0 else "",
            )
        )
    return {
        "bars": bars,
        "legend": [{"slug": c.slug, "name": c.name, "color": colors[c.pk]} for c in categories],
        "peak": peak if spends else 0,
        "total": sum(spend.credits for spend in spends),
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "plot_left": PLOT_LEFT,
        "plot_top": PLOT_TOP,
        "plot_right": CHART_WIDTH - 8,
        "baseline": PLOT_TOP + plot_height,
        "label_y": CHART_HEIGHT - 10,
        "half_step": round(step / 2, 2),
    }


def usage_view(request: HttpRequest, *, admin_site: AdminSite) -> HttpResponse:
    """GET ``start``/``end`` (ISO dates, inclusive, UTC); bad ones: a message and the default range."""
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    form = UsageRangeForm(request.GET or None)
    start, end = (
        (form.cleaned_data["start"], form.cleaned_data["end"]) if form.is_valid() else default_range()
    )
    spends = admin_selectors.spend_by_day_and_category(start=start, end=end)
    context = {
        **admin_site.each_context(request),
        "title": "Usage",
        "form": form,
        "start": start,
        "end": end,
        "chart": chart(spends, start=start, end=end),
        "spenders": admin_selectors.top_spenders(start=start, end=end, limit=TOP_SPENDERS),
    }
    return TemplateResponse(request, "admin/chats/usage.html", context)
