"""The inspector's pages from a run the trainer's code paths wrote: what each shows, that user
text is escaped, that the plots are embedded, and how the CLI fails on a wrong directory."""

import json
import re
import subprocess
import sys

import pytest

from capo_ray.inspect.cli import main
from capo_ray.inspect.page import render_run
from capo_ray.inspect.plots import write_plots
from capo_ray.driver.logger import read_metrics


def test_pages_hold_every_logged_response_with_its_credit(fake_run):
    run_dir, samples = fake_run
    pages = render_run(run_dir, run_dir / "inspect")
    assert [p.name for p in pages] == ["index.html", "step_000000.html", "step_000001.html"]
    html = pages[1].read_text()
    step0 = [s for s in samples if s["step"] == 0]
    assert html.count('<section class="response') == len(step0) == 4
    assert html.count('data-flagged="true"') == sum(s["flagged"] for s in step0) == 2
    # the vote colours the steps: two wrong steps in all (response 1 step 1, response 3 step 2)
    assert html.count('data-vote="wrong"') == 2
    assert "critique 1: wrong steps: 1" in html and "critique 1: wrong steps: 2" in html
    assert "no wrong step" in html
    # one span per policy token in each heat map, each with its value in the tooltip
    n_tokens = sum(len(s["tokens"]) for s in step0)
    assert html.count('<span class="tok') == 2 * n_tokens
    first = step0[0]
    assert f'title="step 1: {first["token_rewards"][0]:+.4f}"' in html
    # the response text is escaped, never injected
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html


def test_samples_log_what_the_page_needs(fake_run):
    _, samples = fake_run
    for s in samples:
        n = len(s["tokens"])
        assert "".join(s["tokens"]) == s["response"]
        assert len(s["token_rewards"]) == len(s["token_advantages"]) == len(s["token_step"]) == n
    wrong_first = samples[0]
    assert wrong_first["step_penalty"][0] > 0
    lo, hi = wrong_first["step_token_spans"][0]
    # the penalized step's tokens carry the process penalty: incorrect, so 0 - 1 = -1
    assert wrong_first["token_rewards"][lo:hi] == [-1.0] * (hi - lo)
    assert wrong_first["token_rewards"][hi:] == [0.0] * (len(wrong_first["tokens"]) - hi)


def test_metrics_page_embeds_the_plots(fake_run):
    run_dir, _ = fake_run
    index = render_run(run_dir, run_dir / "inspect", steps=[1])[0].read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', index)
    titles = [t for _, t in images]
    assert "Outcome accuracy" in titles and "Flagged rate by step position" in titles and "Time per stage" in titles
    assert all(len(data) > 2000 for data, _ in images)
    assert 'href="step_000001.html"' in index and 'href="step_000000.html"' not in index


def test_plot_files(fake_run, tmp_path):
    run_dir, _ = fake_run
    written = write_plots(read_metrics(run_dir), tmp_path / "plots")
    names = sorted(p.name for _, p in written)
    assert {"accuracy.png", "token_reward.png", "flagged.png", "flagged_by_position.png", "critic_rates.png",
            "judge_cost.png", "kl.png", "time_per_stage.png"} == set(names)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for _, p in written)


def test_cli_names_a_wrong_directory_and_a_step_without_samples(fake_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main([str(tmp_path / "nope")])
    assert err.value.code == 2 and "not a capo-ray run directory" in capsys.readouterr().err
    run_dir, _ = fake_run
    with pytest.raises(SystemExit):
        main([str(run_dir), "--step", "7"])
    assert "no samples logged for step(s) [7]; logged steps: [0, 1]" in capsys.readouterr().err


def test_module_entry_point(fake_run, tmp_path):
    run_dir, _ = fake_run
    out = subprocess.run([sys.executable, "-m", "capo_ray.inspect", str(run_dir), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, check=True)
    assert "metrics page:" in out.stdout and (tmp_path / "o" / "step_000000.html").is_file()
    json.loads((run_dir / "config.json").read_text())
