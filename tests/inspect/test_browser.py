"""The inspector's pages in a real headless Chromium: the DOM shows every logged response, the
flagged steps and the verdicts, and a screenshot is not blank."""

from collections import defaultdict

from capo_ray.inspect.page import render_run


def test_step_pages_render_in_chromium(fake_run, browser, check_step_page):
    run_dir, samples = fake_run
    pages = render_run(run_dir, run_dir / "inspect")
    by_step = defaultdict(list)
    for s in samples:
        by_step[s["step"]].append(s)
    for page in pages[1:]:
        check_step_page(browser, page, by_step[int(page.stem.split("_")[1])])


def test_metrics_page_renders_in_chromium(fake_run, browser, not_blank):
    from selenium.webdriver.common.by import By

    run_dir, _ = fake_run
    index = render_run(run_dir, run_dir / "inspect")[0]
    browser.get(index.as_uri())
    images = browser.find_elements(By.CSS_SELECTOR, "figure.plot img")
    assert len(images) >= 6
    # each embedded PNG decoded and laid out at its size (a broken data URI has width 0)
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) == 640 for img in images)
    rows = browser.find_elements(By.CSS_SELECTOR, "#metrics-table tr[data-step]")
    assert [r.get_attribute("data-step") for r in rows] == ["0", "1"]
    not_blank(browser.get_screenshot_as_png())
