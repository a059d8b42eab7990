"""Shared helpers of the inspector tests.

``fake_run``: a run directory written by the trainer's own code paths without Ray or engines
(rollouts with word-level token offsets go through segment -> arith critic -> vote -> credit
-> advantages; RunLogger writes metrics.jsonl and samples.jsonl as a training run does).
``browser``: headless Chromium driven by Selenium (Debian ``chromium`` + ``chromium-driver``,
installed by ``make browser``, which ``make test`` runs; the explicit driver path keeps
Selenium from trying to download one). ``check_step_page``: what every step page must show.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest

from capo_ray.critics.arith import ArithCritic
from capo_ray.driver import credit_stage as cs
from capo_ray.driver.logger import RunLogger
from capo_ray.driver.metrics import credit_metrics, critic_metrics, rollout_metrics
from capo_ray.driver.samples import pick_samples
from capo_ray.records import Problem, Rollout
from capo_ray.rewards.verdict import Verdict

PROBLEM = Problem(uid="p", question="Compute 3 + 4 * 5.", answer="23")
RESPONSES = (
    "4 * 5 = 21\n3 + 21 = 24\nThe answer is \\boxed{24}.",  # step 1 wrong
    "4 * 5 = 20\n3 + 20 = 23\nThe answer is \\boxed{23}.",  # all right
    "4 * 5 = 20\n3 + 20 = 25\nThe answer is \\boxed{25}.",  # step 2 wrong
    "I think it is \\boxed{23} <b>bold</b>",  # one step, nothing to check; HTML must be escaped
)


def make_rollout(text: str, group: int) -> Rollout:
    offsets, pos = [], 0
    for piece in text.split(" "):
        end = pos + len(piece)
        offsets.append((pos, min(end + 1, len(text))))
        pos = end + 1
    n = len(offsets)
    return Rollout(PROBLEM, group, [100, 101], list(range(n)), text, offsets, [-0.5] * n, 0, "stop")


def write_run(run_dir: Path, steps: int = 2, flip_noise: float = 0.0) -> list[dict]:
    """Returns the logged samples (with their step)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"algo": {"name": "capo"}, "critic": {"backend": "arith"}}))
    logger = RunLogger(run_dir, "disabled", "p", {})
    critic = ArithCritic(k=3, flip_noise=flip_noise, seed=0)
    logged = []
    for step in range(steps):
        rollouts = [make_rollout(t, group=i // 2) for i, t in enumerate(RESPONSES)]
        outcomes = [Verdict("\\boxed{23}" in t, "ok", "23" if "\\boxed{23}" in t else "x") for t in RESPONSES]
        segs = cs.segment(rollouts)
        judgements = cs.judge(critic.critique(None, [s.texts for s in segs]), segs, "majority")
        credits = cs.assign_credit(rollouts, outcomes, segs, judgements, 2.0, 1.0, "outcome")
        batch = cs.build_batch(rollouts, credits, "capo", True, 1e-6, 0)
        metrics = {"weight_version": step + 1, "learner/kl": 0.01 * step, "learner/grad_norm": 1.0,
                   "time/step": 2.0, "time/rollout": 1.0, "time/learner": 0.5}
        metrics.update(rollout_metrics(rollouts, outcomes))
        metrics.update(critic_metrics(segs, judgements, metrics["rollout/policy_tokens"]))
        metrics.update(credit_metrics(credits))
        logger.log_step(step, metrics)
        samples = pick_samples(rollouts, outcomes, segs, judgements, credits, len(rollouts), batch.advantages)
        logger.log_samples(step, samples)
        logged += [{"step": step, **s} for s in samples]
    logger.close()
    return logged


@pytest.fixture
def fake_run(tmp_path):
    run_dir = tmp_path / "run"
    return run_dir, write_run(run_dir)


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
        pytest.skip("chromium + chromium-driver not installed (`make browser` installs them; `make test` runs it)")
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
