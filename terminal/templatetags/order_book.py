"""``{% order_rows rows %}``: the order book's rows (``orders.selectors.order_book``), each rendered by
the one row renderer, ``templates/orders/order_row.html``, which live updates render too.

Each process renders a row once per content and reuses its HTML: rendering 200 rows through the
template engine was a third of the dashboard's time, and a day's book mostly repeats itself from one
page to the next. The cache key is the row's every value, so a row whose order changed is a new key,
never a stale one. The one thing a row holds that is not its values is the page's CSRF token, in a
working row's Modify and Cancel forms: the row is rendered with a marker in its place, and the page's
token replaces the marker. The marker holds NUL characters, which no stored text can (PostgreSQL
refuses them, the terminal's parsers reject them), so it cannot come from a value. With DEBUG on (a
developer editing the template) nothing is reused.
"""

from __future__ import annotations

from functools import lru_cache

from django import template
from django.conf import settings
from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()
ROW_TEMPLATE = "orders/order_row.html"
ROWS_CACHED = 8192  # rows per process: a few busy books (a row is under 1 kB)
TOKEN_MARKER = "\x00csrf-token\x00"  # noqa: S105  # nosec B105 - a placeholder, not a secret
_TOKEN_INPUT = f'<input type="hidden" name="csrfmiddlewaretoken" value="{TOKEN_MARKER}">'


@register.simple_tag(takes_context=True)
def order_rows(context, rows) -> SafeString:
    token = context.get("csrf_token")
    token = str(token) if token else ""
    render = _render if settings.DEBUG else row_html
    parts = []
    for row in rows:
        html = render(tuple(row.items()))
        if row["working"]:
            html = html.replace(TOKEN_MARKER, token) if token else html.replace(_TOKEN_INPUT, "")
        parts.append(html)
    # Rendered by the template engine, which escaped every value; the token is letters and digits.
    return mark_safe("".join(parts))  # noqa: S308  # nosec B308 B703


def _render(items: tuple) -> str:
    return get_template(ROW_TEMPLATE).render({"row": dict(items), "oob": False, "csrf_token": TOKEN_MARKER})


@lru_cache(maxsize=ROWS_CACHED)
def row_html(items: tuple) -> str:
    """The HTML of a row given as its ``(name, value)`` pairs, the CSRF token as ``TOKEN_MARKER``."""
    return _render(items)
