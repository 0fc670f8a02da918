"""``mlflow ui`` in a real browser: headless Chromium (Debian's ``chromium``, driven by
Playwright) over the MLflow store of the end-to-end run (the ``project`` fixture).

What a user sees without typing a filter: the experiment page lists one row per initializer of
the pipeline's cell (seeds folded under it), the chart view overlays their curves and shows their
test accuracy, and the compare view of those runs holds their metrics. Screenshots go to
``test-artifacts/mlflow-ui/`` (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .conftest import ROOT, mlflow_server

pytestmark = pytest.mark.e2e
LABELS = ("he_normal", "gaussian", "glorot_uniform")
EPOCHS = 2  # the quick profile
SHOTS = ROOT / "test-artifacts" / "mlflow-ui"
CHROMIUM = os.environ.get("INITBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def ui(project, env):
    with mlflow_server(["ui", "--backend-store-uri", f"sqlite:///{project[0] / 'mlflow.db'}"],
                       env) as url:
        yield url


@pytest.fixture(scope="module")
def page(ui):
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM}: apt-get install chromium"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)  # charts render late on a loaded 2-core machine
        yield page
        browser.close()


def experiment_page(page, ui, client) -> None:
    exp = client.get_experiment_by_name("initbench").experiment_id
    # "Model training" is the UI's mode for runs (remembered once a user picks it).
    page.goto(f"{ui}/#/experiments/{exp}?workflowType=machine_learning")
    page.get_by_role("row").filter(has_text="baseline/he_normal").first.wait_for()


def test_the_experiment_page_lists_one_row_per_initializer(page, ui, client):
    from playwright.sync_api import expect

    experiment_page(page, ui, client)
    for label in LABELS:
        expect(page.get_by_role("row").filter(has_text=f"baseline/{label}").first).to_be_visible()
    # The seeds are folded under their initializer, the depth study is elsewhere.
    expect(page.get_by_text("baseline/he_normal/s0")).to_have_count(0)
    expect(page.get_by_text("depth-5-tanh")).to_have_count(0)
    page.screenshot(path=SHOTS / "1-runs.png", full_page=True)


def test_the_chart_view_shows_test_accuracy_and_overlays_the_curves(page, ui, client):
    from playwright.sync_api import expect

    experiment_page(page, ui, client)
    page.locator("label:has(input[value=CHART])").click()
    # (This runs first on the store of one `dvc repro`: one run per initializer.)
    for metric, points in (("test_accuracy", len(LABELS)), ("val_accuracy", len(LABELS) * EPOCHS)):
        page.get_by_placeholder("Search metric charts").fill(metric)
        card = (page.locator("div").filter(has=page.get_by_text(metric, exact=True))
                .filter(has=page.locator(".js-plotly-plot")).last)
        # test_accuracy: one bar per initializer; val_accuracy: each initializer's mean curve.
        expect(card.locator(".js-plotly-plot .point")).to_have_count(points)
        page.screenshot(path=SHOTS / f"2-chart-{metric}.png", full_page=True)


def test_the_compare_view_of_the_initializers(page, ui, client):
    from playwright.sync_api import expect

    experiment_page(page, ui, client)
    for label in LABELS:
        row = page.get_by_role("row").filter(has_text=f"baseline/{label}").first
        row.locator("input.ag-checkbox-input").click(force=True)
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_text("Comparing 3 Runs")).to_be_visible()
    for text in ("test_accuracy", "test_accuracy_sd", *(f"baseline/{label}" for label in LABELS)):
        expect(page.get_by_text(text, exact=True).first).to_be_visible()
    page.screenshot(path=SHOTS / "3-compare.png", full_page=True)
