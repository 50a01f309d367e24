"""End to end in Debian's headless Chromium against `make run` (replay market): a new user signs up, opens a second
paper account, adds a watch and runs it now with the rules source, reads the signal, runs a small backtest and sees
its charts, creates and revokes an API key, stops trading and resumes it. Every page is checked with axe-core
(vendored; no serious or critical violation), must not scroll sideways at 390 px, logs no error (a CSP refusal is
one) and is saved as a screenshot at 1280 and 390 px wide (build/screenshots/, or $STEADYHAND_SCREENSHOT_DIR)."""

import re
import uuid

from tests.e2e.served import CHROMIUM, CHROMIUM_ARGS, screenshot_dir

WIDTHS = {1280: 900, 390: 844}
# Chart containers settle as drawn or failed (static/js/charts.js); a page is measured after they have.
CHARTS_SETTLED = """() => [...document.querySelectorAll('[data-chart-url]')]
    .every(element => ['drawn', 'failed'].includes(element.dataset.chartState))"""
AXE_RUN = """async () => {
    const result = await axe.run(document, {resultTypes: ['violations']});
    return result.violations
        .filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`);
}"""
BACKTEST_WAIT_MS = 180_000


class Audit:
    """Checks and photographs the page the browser is on; collects what went wrong for one assertion per page."""

    def __init__(self, page, base_url: str) -> None:
        self.page, self.base_url = page, base_url
        self.console_errors: list[str] = []
        self.seen: list[str] = []
        self.folder = screenshot_dir()
        page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        page.on(
            "response",
            lambda response: (
                response.status >= 400 and self.console_errors.append(f"{response.status} from {response.url}")
            ),
        )

    def __call__(self, name: str, status: int = 200) -> None:
        """`status` is what the page is meant to answer (400 for a form sent back with its errors, 404 for a missing
        page): Chromium logs any status >= 400 as a console error, which is expected for this page only."""
        page = self.page
        problems: list[str] = []
        if status >= 400:
            self.console_errors = [text for text in self.console_errors if f"{status}" not in text]
        for width, height in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_function(CHARTS_SETTLED)
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 0:
                problems.append(f"scrolls sideways by {overflow} px at {width} px wide")
            page.screenshot(path=str(self.folder / f"{name}-{width}.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})
        if not page.evaluate("() => typeof axe !== 'undefined'"):
            page.add_script_tag(url=self.base_url + "/static/vendor/axe-core/axe.min.js")  # same origin: CSP allows
        problems += page.evaluate(AXE_RUN)
        problems += [f"console: {text}" for text in self.console_errors]
        self.console_errors.clear()
        self.seen.append(name)
        assert problems == [], f"{name} ({page.url}): " + "; ".join(problems)


def test_a_new_user_trades_on_paper_from_sign_up_to_kill_switch(served_app):
    from playwright.sync_api import expect, sync_playwright

    base_url, _ = served_app
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
    password = "correct horse battery"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.on("dialog", lambda dialog: dialog.accept())  # delete, revoke and stop ask first
            audit = Audit(page, base_url)

            page.goto(base_url + "/login")
            audit("sign-in")
            page.get_by_role("link", name="Create an account").click()
            audit("sign-up")
            page.get_by_label("Your name").fill("Erin")
            page.get_by_label("Email").fill(email)
            page.get_by_label("Password", exact=True).fill("short")
            page.get_by_label("Repeat the password").fill("short")
            page.get_by_label("Paper account balance (USDT)").fill("250")
            page.get_by_role("button", name="Create account").click()
            expect(page.locator("#password-error")).to_have_text("A password needs 10 to 256 characters.")
            expect(page.get_by_label("Paper account balance (USDT)")).to_have_value("250")
            audit("sign-up-refused", status=400)
            page.get_by_label("Password", exact=True).fill(password)
            page.get_by_label("Repeat the password").fill(password)
            page.get_by_role("button", name="Create account").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Erin")
            account = page.locator("article.account").filter(has_text="Paper account")
            expect(account.get_by_test_id("equity")).to_have_text("250.00 USDT")
            audit("dashboard-new")

            # A second paper account, from the settings page.
            page.get_by_role("link", name="Settings", exact=True).click()
            form = page.locator("form").filter(has=page.get_by_role("button", name="Add paper account"))
            form.get_by_label("Account name").fill("Small paper")
            form.get_by_label("Starting balance (USDT)").fill("120")
            form.get_by_role("button", name="Add paper account").click()
            expect(page.get_by_role("status").first).to_contain_text("Small paper")
            audit("settings")

            # A watch on the first account, run now with the rules source; its signal opens.
            page.get_by_role("link", name="Watches", exact=True).click()
            audit("watches-empty")
            page.get_by_role("link", name="Add a watch").first.click()
            page.get_by_label("Symbol").fill("BTC/USDT")
            page.get_by_label("Signal source").select_option("rules:ema_rsi_volume")
            first_account = page.locator("#account_id option").filter(has_text=re.compile(r"^Paper account"))
            page.get_by_label("Account").select_option(first_account.get_attribute("value"))
            page.get_by_label("Place orders on approved signals (auto-execute)").check()
            audit("watch-form")
            page.get_by_role("button", name="Add watch").click()
            expect(page.get_by_role("status").first).to_contain_text("BTC/USDT")
            audit("watches")
            page.get_by_role("button", name="Run now").first.click()
            expect(page.get_by_role("heading", level=1)).to_contain_text(re.compile(r"^Signal #\d+: BTC/USDT 1h"))
            ran = re.compile(r"Run of bar 2024-\d\d-\d\d \d\d:00 UTC")
            expect(page.get_by_role("status").first).to_contain_text(ran)
            expect(page.get_by_role("heading", name="Risk decision")).to_be_visible()
            audit("signal")
            page.get_by_role("link", name="Signals", exact=True).click()
            audit("signals")

            # A small backtest: the cost estimate first, then the run, its progress and its charts.
            page.get_by_role("link", name="Backtests", exact=True).click()
            audit("backtests-empty")
            page.get_by_label("Symbol").fill("BTC/USDT")
            page.get_by_label("Window start").fill("2024-02-01")
            page.get_by_label("Window end").fill("2024-02-20")
            page.get_by_label("Signal source and model").select_option("rules:sma_cross")
            page.get_by_role("button", name="Estimate cost").click()
            expect(page.get_by_role("heading", name="Before you run it")).to_be_visible()
            audit("backtest-estimate")
            page.get_by_role("button", name="Run backtest").click()
            expect(page.get_by_role("heading", level=1)).to_contain_text(re.compile(r"^Backtest #\d+ BTC/USDT 1h"))
            # The page follows the run itself (htmx progress, then a reload when it finishes).
            expect(page.get_by_role("heading", name="Charts")).to_be_visible(timeout=BACKTEST_WAIT_MS)
            expect(page.locator('[data-chart-state="drawn"] canvas').first).to_be_visible()
            audit("backtest")
            page.get_by_role("link", name="Backtests", exact=True).click()
            audit("backtests")

            # An API key, shown once, then revoked.
            page.get_by_role("link", name="API keys", exact=True).click()
            audit("api-keys-empty")
            page.get_by_label("Name").fill("notebook")
            expect(page.get_by_label(re.compile(r"^Read: "))).to_be_checked()  # the least a key can do, by default
            page.get_by_label(re.compile(r"^Analyze: ")).check()
            page.get_by_role("button", name="Create key").click()
            expect(page.locator("body")).to_contain_text(re.compile(r"sh_[A-Za-z0-9]{20,}"))
            audit("api-key-created")
            page.get_by_role("link", name="API keys", exact=True).click()
            expect(page.locator("body")).not_to_contain_text(re.compile(r"sh_[A-Za-z0-9]{20,}"))
            page.get_by_role("button", name="Revoke").click()
            expect(page.get_by_role("status").first).to_contain_text("revoked")
            audit("api-keys")

            # The kill switch on the dashboard, and the way back.
            page.get_by_role("link", name="Dashboard", exact=True).click()
            account = page.locator("article.account").filter(has_text="Small paper")
            account.get_by_role("button", name="Stop trading").click()
            expect(account.get_by_test_id("trading-state")).to_have_text("Stopped")
            expect(account.get_by_test_id("state-reason")).to_contain_text("kill switch")
            audit("dashboard-stopped")
            account.get_by_role("button", name="Resume trading").click()
            expect(account.get_by_test_id("trading-state")).to_have_text("Trading")

            for name, path, status in (
                ("positions", "/positions", 200),
                ("orders", "/orders", 200),
                ("trades", "/trades", 200),
                ("scorecard", "/scorecard", 200),
                ("usage", "/usage", 200),
                ("password", "/password", 200),
                ("not-found", "/no/such/page", 404),
            ):
                page.goto(base_url + path)
                audit(name, status)
            page.goto(base_url + "/")
            audit("dashboard")
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("status").first).to_have_text("Signed out.")
        finally:
            browser.close()
    assert len(audit.seen) >= 20
