"""The embed page's snippet, pasted into a customer's page as a developer would, runs there:
the widget shows the button text exactly as typed, whatever its quotes, and nothing in it can
end the script element (the seed wrote `greeting: 'Let's talk'`, a syntax error that broke the
customer's page). Both snippets are tried: the one the server renders and the one the page
rebuilds as you type. Screenshots go to test-artifacts/embed/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.customer_site import Site

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "embed"
GREETINGS = [
    "Let's talk",
    'Let\'s talk </script><script>window.pwned = true</script> "now" \\ <!-- <b>',
]
CUSTOMER_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Acme shop</title><link rel="icon" href="data:,"></head><body>
<h1>Acme shop</h1>
{snippet}
<p id="after">The rest of the customer's page.</p>
<script>window.pageScriptsRan = true;</script>
</body></html>
"""


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path)
    yield site
    site.close()


def logged_in_context(browser, product, **options):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    page = context.new_page()
    page.goto(f"{product.base_url}/dashboard/login/")
    page.fill("input[name=username]", product.credentials["admin_user"])
    page.fill("input[name=password]", product.credentials["admin_password"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{product.base_url}/dashboard/")
    return context, page


def run_on_customer_page(browser, site, name: str, snippet: str, greeting: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    try:
        page.goto(site.page(f"{name}.html", CUSTOMER_PAGE.format(snippet=snippet)))
        launcher = page.locator("[data-thinnest-widget] .launcher")
        launcher.wait_for(timeout=10000)
        assert launcher.inner_text() == greeting
        assert page.evaluate("window.pageScriptsRan === true && window.pwned === undefined")
        assert page.inner_text("#after") == "The rest of the customer's page."
        assert errors == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    finally:
        context.close()


@pytest.mark.parametrize("case", range(len(GREETINGS)))
def test_the_live_snippet_runs_on_a_customer_page(product_separate, browser, site, case):
    greeting = GREETINGS[case]
    context, page = logged_in_context(browser, product_separate)
    try:
        page.goto(f"{product_separate.base_url}/dashboard/embed/")
        page.fill("#optGreeting", greeting)
        snippet = page.inner_text("#snippetScript")
        assert "greeting: " in snippet
        # The page's own preview takes the same text.
        assert page.locator("[data-thinnest-widget] .launcher").inner_text() == greeting
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"embed-page-{case}.png"), full_page=True)
    finally:
        context.close()
    run_on_customer_page(browser, site, f"live-{case}", snippet, greeting)


@pytest.mark.parametrize("case", range(len(GREETINGS)))
def test_the_server_rendered_snippet_runs_on_a_customer_page(product_separate, browser, site, case):
    greeting = GREETINGS[case]
    # Without JavaScript the page shows the server's own snippet (the options are a GET form).
    context, page = logged_in_context(browser, product_separate, java_script_enabled=False)
    try:
        page.goto(f"{product_separate.base_url}/dashboard/embed/")
        page.fill("#optGreeting", greeting)
        page.click("noscript button, form#embedForm button[type=submit]")
        snippet = page.inner_text("#snippetScript")
        assert page.input_value("#optGreeting") == greeting.strip()
    finally:
        context.close()
    run_on_customer_page(browser, site, f"server-{case}", snippet, greeting)
