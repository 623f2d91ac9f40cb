"""The watchlist fits its panel with long F&O symbols at the desk widths and on a phone: every row action
is the element under the pointer and works, bid and ask keep apart, and an index offers no trading."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in

pytestmark = pytest.mark.e2e

DESK_WIDTHS = (1280, 1440, 1920)
PHONE = {"width": 390, "height": 844}
REMOVE = "\N{MULTIPLICATION SIGN}"  # the Remove button's label

# For each watchlist row: the panel and table boxes, each action button with whether it is the topmost
# element at its centre, the gap between the bid's and the ask's text, and the symbol's tooltip.
LAYOUT = """() => {
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom};
  };
  const text = (el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    return range.getBoundingClientRect();
  };
  const panel = document.getElementById("watchlist"), table = panel.querySelector("table");
  const rows = Array.from(panel.querySelectorAll("tr[data-instrument]")).map((row) => {
    const actions = Array.from(row.querySelectorAll(".row-actions button")).map((button) => {
      // A long watchlist runs below a phone's screen: look at each button where the trader would.
      button.scrollIntoView({block: "center", inline: "nearest"});
      const r = button.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
      const hit = document.elementFromPoint(x, y);
      return {label: button.getAttribute("aria-label"), text: button.textContent.trim(), box: box(button),
              topmost: hit === button || button.contains(hit),
              hit: hit ? hit.tagName + (hit.id ? "#" + hit.id : "") + "." + hit.className : null};
    });
    const bid = row.querySelector(".bid"), ask = row.querySelector(".ask");
    const gap = bid.textContent.trim() && ask.textContent.trim() ? text(ask).left - text(bid).right : null;
    const symbol = row.querySelector(".sym");
    return {id: row.dataset.instrument, symbol: symbol.textContent.trim(), title: symbol.getAttribute("title"),
            symbolBox: box(symbol), cell: box(symbol.closest("th")), actions: actions, bidAskGap: gap,
            bid: bid.textContent, ask: ask.textContent};
  });
  return {panel: box(panel), table: box(table), rows: rows, viewport: window.innerWidth};
}"""


def _row(page, symbol: str):
    """The watchlist row of ``symbol`` (found by its Remove button, which every row has)."""
    remove = page.get_by_role("button", name=f"Remove {symbol}", exact=True)
    return page.locator("#watchlist tr[data-instrument]").filter(has=remove)


def _add(page, query: str, pattern: str | None = None) -> str:
    """Add the longest search result for ``query`` whose symbol matches ``pattern`` (a regex; default:
    the query itself); return its symbol."""
    page.get_by_label("Search symbols to add").fill(query)
    results = page.locator("#search-results button.result")
    expect(results.first).to_be_visible()
    labels = results.evaluate_all("bs => bs.map(b => b.ariaLabel)")  # "Add SYMBOL (EXCHANGE)"
    found = [re.fullmatch(r"Add (.+) \((\w+)\)", label).groups() for label in labels]
    matching = sorted((f for f in found if re.fullmatch(pattern or re.escape(query), f[0])), key=lambda f: -len(f[0]))
    assert matching, f"no search result for {query} matches {pattern}: {found}"
    symbol, exchange = matching[0]
    row = _row(page, symbol)
    if not row.count():
        page.get_by_role("button", name=f"Add {symbol} ({exchange})", exact=True).click()
        expect(row).to_have_count(1)
    return symbol


def _watchlist_with_long_symbols(page) -> dict[str, str]:
    # The longest call in the search results: e.g. ULTRACEMCO26DEC11300CE.
    option = _add(page, "ULTRACEMCO", r"ULTRACEMCO\d\d[A-Z]{3}\d+CE")
    month = re.search(r"\d\d[A-Z]{3}", option).group(0)  # the sample master's one expiry, e.g. 26DEC
    symbols = {
        "option": option,
        # A future priced above 25,000: eight-figure bid and ask side by side.
        "future": _add(page, f"NIFTY{month}FUT"),
        "index": _add(page, "NIFTY 50"),
    }
    expect(_row(page, symbols["future"]).locator(".ask")).to_have_text(re.compile(r"\d"), timeout=5000)
    return symbols


def _assert_fits(layout: dict, width: int) -> None:
    panel, table = layout["panel"], layout["table"]
    assert panel["right"] <= layout["viewport"], f"{width}px: the watchlist panel overflows the page"
    assert table["left"] >= panel["left"] and table["right"] <= panel["right"] + 0.5, (
        f"{width}px: table {table} is wider than its panel {panel}"
    )
    for row in layout["rows"]:
        assert row["title"] == row["symbol"], f"{row['symbol']}: the tooltip names the symbol in full"
        assert row["symbolBox"]["right"] <= row["cell"]["right"] + 0.5, f"{row['symbol']} runs out of its cell"
        for action in row["actions"]:
            assert action["box"]["right"] <= panel["right"], f"{width}px: {action['label']} is outside the panel"
            assert action["topmost"], f"{width}px: {action['label']} is covered by {action['hit']}"


@pytest.mark.parametrize("role", ["trader", "owner", "admin", "viewer"])
def test_the_watchlist_fits_its_panel_and_every_row_action_is_clickable(terminal_server, page, role):
    user = demo_users(terminal_server["demo_output"])[role]
    sign_in(page, terminal_server["url"], user)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(terminal_server["url"] + "/")
    symbols = _watchlist_with_long_symbols(page)
    can_trade = page.locator("#trading.can-trade").count() == 1
    index_row = _row(page, symbols["index"])
    ticket = page.locator("dialog#ticket")

    for width in DESK_WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        layout = page.evaluate(LAYOUT)
        _assert_fits(layout, width)
        for row in layout["rows"]:
            # Other tests' rows (NIFTY BANK, say) may share this user's watchlist: the rows added here
            # have a known answer, and every row has Remove.
            texts = [action["text"] for action in row["actions"]]
            if row["symbol"] == symbols["index"]:
                assert texts == [REMOVE], f"{row['symbol']}: an index has no depth and no B/S"
            elif not can_trade:
                assert texts in ([REMOVE], ["D", REMOVE]), f"{row['symbol']}: a viewer sees depth (D), no B/S"
            elif row["symbol"] in (symbols["option"], symbols["future"]):
                assert texts == ["D", "B", "S", REMOVE], row
            else:
                assert texts in ([REMOVE], ["D", "B", "S", REMOVE]), row
            if row["bidAskGap"] is not None:
                # Half an em at 14 px: two prices never read as one number.
                assert row["bidAskGap"] >= 7, f"{width}px: bid {row['bid']} and ask {row['ask']} touch"
        if width == 1280:
            page.screenshot_step("watchlist-1280")
        if can_trade:
            # A real click at the button's centre (no forcing): it reaches B and opens the ticket.
            _row(page, symbols["option"]).get_by_role("button", name=f"Buy {symbols['option']}").click(timeout=3000)
            expect(ticket).to_be_visible()
            expect(ticket.locator("#ticket-title")).to_have_text(f"NFO:{symbols['option']}")
            page.keyboard.press("Escape")
            expect(ticket).not_to_be_visible()
    expect(index_row.get_by_role("button", name=re.compile(r"^(Buy|Sell) "))).to_have_count(0)

    page.set_viewport_size(PHONE)
    layout = page.evaluate(LAYOUT)
    _assert_fits(layout, PHONE["width"])
    page.screenshot_step("watchlist-390")
    future = _row(page, symbols["future"])
    if can_trade:
        sell = future.get_by_role("button", name=f"Sell {symbols['future']}")
        sell.scroll_into_view_if_needed()
        assert page.evaluate(LAYOUT)["rows"], "rows are still there after scrolling"
        sell.click(timeout=3000)
        expect(ticket).to_be_visible()
        expect(ticket.locator("#ticket-title")).to_have_text(f"NFO:{symbols['future']}")
        expect(ticket.get_by_role("button", name=re.compile("Place sell order"))).to_be_visible()
        page.screenshot_step("ticket-390")
        page.keyboard.press("Escape")
        expect(ticket).not_to_be_visible()
    # Remove works on the phone too; the row comes back for the next role's run of the desk checks.
    future.get_by_role("button", name=f"Remove {symbols['future']}").click(timeout=3000)
    expect(future).to_have_count(0)


def test_an_index_offers_no_trading_anywhere(terminal_server, page):
    trader = demo_users(terminal_server["demo_output"])["trader"]
    sign_in(page, terminal_server["url"], trader)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(terminal_server["url"] + "/")
    index = _add(page, "NIFTY 50")
    row = _row(page, index)
    expect(row.locator(".row-actions button")).to_have_text([REMOVE])
    # The search result adds it to the watchlist and nothing more.
    page.get_by_label("Search symbols to add").fill(index)
    result = page.locator("#search-results li", has_text=index).first
    expect(result.get_by_role("button")).to_have_count(1)
    expect(result.get_by_role("button", name=f"Add {index} (NSE)", exact=True)).to_be_visible()
    # Charted, its header has no trading actions.
    row.locator("th").click()
    expect(page.locator("#chart-symbol")).to_have_text(index)
    trade_buttons = page.locator("#chart-panel").get_by_role("button", name=re.compile(r"^(Buy|Sell)\b|^[BS]$"))
    expect(trade_buttons).to_have_count(0)
    # The B key on its row explains instead of offering a form.
    row.focus()
    page.keyboard.press("b")
    ticket = page.locator("dialog#ticket")
    expect(ticket).to_be_visible()
    expect(ticket.get_by_role("alert")).to_contain_text("index")
    expect(ticket.locator("form")).to_have_count(0)
    page.screenshot_step("index-ticket")
    page.keyboard.press("Escape")
    # The option chain shows NIFTY 50 as the underlying's spot, with no trading actions.
    page.goto(terminal_server["url"] + "/options/?underlying=NIFTY")
    spot = page.locator("#option-chain .spot")
    expect(spot).to_contain_text(index)
    expect(spot.get_by_role("button")).to_have_count(0)
    expect(spot.locator("[data-ticket-side]")).to_have_count(0)
