"""Fixtures shared across test folders.

``browser``: headless Chromium driven by Selenium (Debian ``chromium`` + ``chromium-driver``,
installed by ``make test-deps``, which ``make test`` runs; the explicit driver path keeps
Selenium from trying to download one). ``check_step_page``: what every page of the credit
inspector must show for the responses it was made from. ``not_blank``: a screenshot check.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import pytest

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1200,900",
)


def _binaries() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture
def browser():
    """A headless Chromium session with a fresh profile; skips where Chromium is absent."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = _binaries()
    if found is None:
        pytest.skip("chromium + chromium-driver not installed (`make test-deps` installs them; `make test` runs it)")
    binary, driver_path = found
    profile = tempfile.mkdtemp(prefix="capo-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()  # stops the chromedriver and the browser it started
        shutil.rmtree(profile, ignore_errors=True)


def assert_not_blank(png: bytes) -> None:
    """A rendered page: many colours and a good share of non-white pixels."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB").resize((300, 225))
    colours = img.getcolors(maxcolors=300 * 225)  # [(count, (r, g, b))]
    coloured = sum(n for n, rgb in colours if min(rgb) < 235) / (300 * 225)
    assert len(colours) > 50 and coloured > 0.05, f"screenshot looks blank: {len(colours)} colours, {coloured:.1%} non-white"


@pytest.fixture
def check_step_page():
    return step_page_checks


@pytest.fixture
def not_blank():
    return assert_not_blank


def step_page_checks(driver, page: Path, samples: list[dict]) -> None:
    """Every logged response is on the page, flagged ones marked, every verdict shown."""
    from selenium.webdriver.common.by import By

    driver.get(page.as_uri())
    sections = driver.find_elements(By.CSS_SELECTOR, "section.response")
    assert len(sections) == len(samples), f"{page.name}: {len(sections)} responses shown, {len(samples)} logged"
    for section, sample in zip(sections, samples):
        text = section.text
        assert sample["problem"] in text and sample["reference"] in text
        flagged = any(p > 0 for p in sample["step_penalty"] or [])
        assert section.get_attribute("data-flagged") == ("true" if flagged else "false")
        votes = [d.get_attribute("data-vote") for d in section.find_elements(By.CSS_SELECTOR, ".step[data-vote]")]
        expected = ["unjudged" if sample["step_penalty"] is None else ("wrong" if p > 0 else "right")
                    for p in (sample["step_penalty"] or [None] * len(sample["steps"]))]
        assert votes == expected
        wrong = section.find_elements(By.CSS_SELECTOR, ".step.wrong")
        assert len(wrong) == sum(p > 0 for p in sample["step_penalty"] or [])
        for w in wrong:  # marked visibly, not only by a class name
            assert w.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
        verdicts = [c.find_element(By.CSS_SELECTOR, ".verdict").text for c in section.find_elements(By.CSS_SELECTOR, ".critique")]
        assert len(verdicts) == len(sample["critiques"] or [])
        for shown, parsed in zip(verdicts, sample["verdicts"]):
            if parsed is None:
                assert "abstained" in shown
            elif parsed:
                assert "wrong steps: " + ", ".join(map(str, parsed)) in shown
            else:
                assert "no wrong step" in shown
        tokens = section.find_elements(By.CSS_SELECTOR, ".heat.rewards .tok")
        assert len(tokens) == len(sample["tokens"])
    assert_not_blank(driver.get_screenshot_as_png())
