"""Take the README's screenshots of the live pages, with the same headless Chromium as the tests.

Start the site first (``make run``), then:

    .venv/bin/python docs/screenshots.py [http://127.0.0.1:8000]

It places a few orders through the pages themselves (one declined, one for more mugs than are
left), waits for them to finish, and writes docs/screenshots/*.png at 1280 px and at 390 px.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

OUT = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
# A full-page screenshot would paint the sticky top bar in the middle of a long page.
STILL_HEADER = ".topbar { position: static; } .lane-head { position: static; }"


def _shoot(page: Page, name: str, *, full_page: bool = True) -> None:
    page.add_style_tag(content=STILL_HEADER)
    page.wait_for_timeout(300)
    page.screenshot(path=OUT / name, full_page=full_page)


def _buy(page: Page, *, product: str, quantity: int, token: str) -> int:
    page.locator("#product-select").select_option(product)
    page.locator('input[name="quantity"]').fill(str(quantity))
    page.locator("label.token", has_text=token).click()
    page.locator("#buy-button").click()
    expect(page.locator("#buy-result")).to_contain_text("202 Accepted")
    found = re.search(r"Order #(\d+)", page.locator("#buy-result").inner_text())
    assert found, "no order id in the answer"
    order_id = int(found.group(1))
    badge = page.locator(f'#orders [data-order="{order_id}"] .badge')
    expect(badge).to_have_text(re.compile("SHIPPED|CANCELLED"), timeout=30_000)
    return order_id


def main(base: str) -> None:
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        wide = browser.new_page(viewport={"width": 1280, "height": 900}, base_url=base)
        wide.goto("/")
        expect(wide.locator("#conn")).to_have_attribute("data-state", "live")
        # The first order after start-up pays for connections being opened; warm up first.
        _buy(wide, product="459", quantity=1, token="tok_visa4242")
        shipped = _buy(wide, product="456", quantity=1, token="tok_abc123")
        declined = _buy(wide, product="458", quantity=1, token="tok_declined")
        _buy(wide, product="459", quantity=2, token="tok_visa4242")
        _buy(wide, product="457", quantity=10, token="tok_abc123")
        _shoot(wide, "shop.png")

        wide.goto(f"/orders/{shipped}")
        expect(wide.locator("#order-status")).to_have_text("SHIPPED")
        wide.locator('#rows [data-type="InventoryUpdated"] .row-label').click()
        _shoot(wide, "order-swimlane.png")

        wide.goto(f"/orders/{declined}")
        expect(wide.locator("#order-status")).to_have_text("CANCELLED")
        wide.locator('#rows [data-type="PaymentFailed"] .row-label').click()
        _shoot(wide, "order-compensation.png")

        wide.goto("/compare")
        wide.locator("#run").click()
        expect(wide.locator("#runs tr")).to_have_count(1, timeout=60_000)
        _shoot(wide, "compare.png")

        phone = browser.new_page(
            viewport={"width": 390, "height": 844}, device_scale_factor=2, base_url=base
        )
        phone.goto("/")
        expect(phone.locator("#conn")).to_have_attribute("data-state", "live")
        _shoot(phone, "shop-phone.png", full_page=False)
        phone.goto(f"/orders/{shipped}")
        expect(phone.locator("#order-status")).to_have_text("SHIPPED")
        phone.locator("#swimlane").scroll_into_view_if_needed()
        phone.evaluate("document.getElementById('lanes-h').scrollIntoView({block: 'start'})")
        _shoot(phone, "order-swimlane-phone.png", full_page=False)
        browser.close()
    for shot in sorted(OUT.glob("*.png")):
        print(shot.relative_to(OUT.parent.parent))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
