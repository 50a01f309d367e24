"""End to end: the README's `make run` serves the app; a real headless Chromium signs in as the demo user."""

import re
import urllib.request

from tests.e2e.served import CHROMIUM, CHROMIUM_ARGS, SCHEDULER_PAGE_LOADS, screenshot_dir


def test_make_run_serves_healthz_and_the_demo_login_works_in_chromium(served_app):
    from playwright.sync_api import expect, sync_playwright

    base_url, server = served_app
    screenshots = screenshot_dir()
    with urllib.request.urlopen(f"{base_url}/healthz") as response:
        assert response.read() == b'{"database":"ok","status":"ok"}\n'
    login = re.search(r"Sign in as\s+(\S+)\s+password\s+(\S+)", server.text())
    assert login, server.text()
    email, password = login.groups()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(base_url + "/")
            expect(page).to_have_url(re.compile(r"/login\?next="))
            page.fill("#email", email)
            page.fill("#password", "not the password")
            page.click("button[type=submit]")
            expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")

            page.fill("#password", password)
            page.click("button[type=submit]")
            expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Demo trader")
            # The scheduler trades the demo account on the replay from its first minute: the equity may have moved.
            account = page.locator("article.account").filter(has_text="Demo paper account")
            expect(account.get_by_test_id("equity")).to_have_text(re.compile(r"^\d+\.\d\d USDT$"))
            expect(account).to_contain_text("since the start of 100.00 USDT")
            page.get_by_text("Market data on hand").click()
            hourly = page.get_by_role("row").filter(has_text="39,391")  # 33,411 + 5,980 real 1h bars each
            expect(hourly).to_have_count(2)
            expect(hourly.first).to_contain_text("BTC/USDT")
            page.screenshot(path=str(screenshots / "landing.png"), full_page=True)

            # `make run` also started the scheduler: the demo watches run on the replay's candles (one a 10 s).
            runs = page.locator("table.runs tbody tr")
            for symbol in ("BTC/USDT", "ETH/USDT"):
                row = r"2024-01-16 \d\d:00 UTC\s*#\d+ " + symbol + r" 1h[\s\S]*(BUY|SELL|HOLD)"
                ran = runs.filter(has_text=re.compile(row))
                for _ in range(SCHEDULER_PAGE_LOADS):
                    if ran.count():
                        break
                    page.wait_for_timeout(2_000)  # polling the page for the scheduler's work, not timing anything
                    page.reload()
                expect(ran).not_to_have_count(0)
            # The demo's ETH/USDT watch buys on the replay's 09:00 bar: equity (cash plus the ETH at the replay's
            # price) moves off the 100 USDT start, and the signal that bought it says it was filled.
            change = account.locator(".change span").first
            for _ in range(SCHEDULER_PAGE_LOADS):
                if change.inner_text() != "0.00 USDT":
                    break
                page.wait_for_timeout(2_000)  # polling the page for the scheduler's work, not timing anything
                page.reload()
            expect(change).to_have_text(re.compile(r"^[+-][\d,]+\.\d+ USDT$"))
            bought = page.locator("table.signals tr").filter(has_text="ETH/USDT 1h").filter(has_text="buy filled")
            expect(bought).not_to_have_count(0)
            page.screenshot(path=str(screenshots / "landing-trading.png"), full_page=True)
            assert "scheduler.1 | scheduler " in server.text() and "leading" in server.text(), server.text()

            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("status")).to_have_text("Signed out.")
        finally:
            browser.close()
