"""`dvc plots show` / `dvc plots diff` render every declared plot, offline, in a real browser.

The project's .dvc/config sets `plots.html_template` to dvc_plots_template/index.html, which
inlines vega, vega-lite and vega-embed (DVC's own page loads them from a CDN). The pages are
opened in headless Chromium with every host name unresolvable, so nothing can come from the net.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, copy_repo, dvc, edit_params

pytestmark = pytest.mark.dvc

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND"


def declared_plots(repo: Path) -> tuple[list[str], list[str]]:
    """(vega plot ids, image paths) of the `plots:` section of dvc.yaml."""
    vega, images = [], []
    for entry in yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]:
        if isinstance(entry, dict):
            vega.extend(entry)
        else:
            images.append(entry)
    return vega, images


@pytest.fixture(scope="module")
def repo(dvc_trained_repo: Path, tmp_path_factory) -> Path:
    return copy_repo(dvc_trained_repo, tmp_path_factory.mktemp("plots") / "repo")


class Page(HTMLParser):
    """Elements of a rendered page (script bodies are not parsed as markup)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.marks: list[str] = []     # vega's drawing surface: <canvas class="marks"> or <svg ...>
        self.embeds = 0                # containers that vega-embed took over
        self.images: list[str] = []
        self.scripts_src: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag in ("canvas", "svg") and "marks" in classes:
            self.marks.append(tag)
        if "vega-embed" in classes:
            self.embeds += 1
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag == "script" and a.get("src"):
            self.scripts_src.append(a["src"])


def chromium(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium)")
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}", OFFLINE,
            "--virtual-time-budget=10000", *extra, page.resolve().as_uri()]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def render(page: Path, tmp: Path) -> Page:
    return Page(chromium(page, tmp, "--dump-dom").stdout)


def screenshot_is_not_blank(page: Path, tmp: Path) -> None:
    from PIL import Image, ImageStat

    shot = tmp / f"{page.parent.name}.png"
    chromium(page, tmp, f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars")
    img = Image.open(shot).convert("L")
    assert img.size == (1280, 2400)
    lo, hi = img.getextrema()
    assert hi - lo > 100, (lo, hi)
    non_white = sum(img.histogram()[:240]) / (img.size[0] * img.size[1])
    assert non_white > 0.02, f"{non_white:.3%} non-white pixels"
    assert ImageStat.Stat(img).stddev[0] > 10


def test_template_is_offline_and_configured():
    html = (REPO / "dvc_plots_template" / "index.html").read_text()
    assert "{plot_divs}" in html and "{scripts}" not in html  # DVC puts CDN tags at {scripts}
    assert "cdn.jsdelivr" not in html and Page(html).scripts_src == []
    for lib in ("vega@5", "vega-lite@5", "vega-embed@6"):
        assert f"/* {lib}" in html, lib
    assert len(html.encode()) < 2_000_000
    config = (REPO / ".dvc" / "config").read_text()
    assert "html_template = ../dvc_plots_template/index.html" in config, config


def vega_settings(repo: Path) -> dict[str, dict]:
    """{plot id: its settings} for the vega plots of dvc.yaml."""
    entries = yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]
    return {name: cfg for e in entries if isinstance(e, dict) for name, cfg in e.items()}


def quantity(column: str) -> str:
    """The quantity a plot column holds: its moving average is the same quantity, and the
    "Mean Episode Reward" is a mean of episode returns."""
    base = column.removesuffix("Moving Average").strip() or "(the plot's quantity)"
    return {"Mean Episode Reward": "Cumulative Reward"}.get(base, base)


def test_every_vega_plot_has_a_title_axis_labels_and_one_quantity():
    settings = vega_settings(REPO)
    for name, cfg in settings.items():
        for key in ("title", "x_label", "y_label"):
            assert isinstance(cfg.get(key), str) and cfg[key].strip(), f"{name}: no {key}"
        columns = [c for cols in cfg["y"].values() for c in cols]
        named = {quantity(c) for c in columns} - {"(the plot's quantity)"}
        assert len(named) == 1, f"{name} puts {sorted(named)} on one axis"
    assert {"Actor loss", "Critic loss"} <= set(settings)


def axis_titles(spec, axis: str):
    """Every title of an ``axis`` encoding anywhere in a vega-lite spec (layers nest)."""
    if isinstance(spec, dict):
        enc = spec.get("encoding", {}).get(axis)
        if isinstance(enc, dict) and "title" in enc:
            yield enc["title"]
        for key, value in spec.items():
            if key != "data":
                yield from axis_titles(value, axis)
    elif isinstance(spec, list):
        for value in spec:
            yield from axis_titles(value, axis)


def test_plots_show_json_has_every_declared_plot(repo: Path):
    vega, images = declared_plots(repo)
    # 5 training, 4 performance, 3 live series, 1 of the evaluate stage; 11 figure files
    assert len(vega) == 13 and len(images) == 11
    shown = json.loads(dvc(repo, "plots", "show", "--json").stdout)
    assert not shown.get("errors"), shown.get("errors")
    data = shown.get("data", shown)
    assert set(data) == set(vega) | set(images), sorted(data)
    settings = vega_settings(repo)
    for name in vega:
        (plot,) = data[name]
        content = plot["content"]
        assert plot["type"] == "vega" and content["data"]["values"], name
        assert content["title"]["text"] == settings[name]["title"], name
        assert set(axis_titles(content, "x")) == {settings[name]["x_label"]}, name
        y_titles = set(axis_titles(content, "y"))
        assert y_titles == {settings[name]["y_label"]}, (name, y_titles)  # never "y"
    for name in images:
        (plot,) = data[name]
        assert plot["type"] == "image" and Path(plot["url"]).is_file(), name


def test_plots_show_renders_offline_in_chromium(repo: Path, tmp_path: Path):
    vega, images = declared_plots(repo)
    out = dvc(repo, "plots", "show", "-o", str(tmp_path / "show"))
    index = tmp_path / "show" / "index.html"
    assert index.as_uri() in out.stdout, out.stdout
    html = index.read_text()
    assert Page(html).scripts_src == [], "the page must not load scripts from anywhere"
    static = sorted(p.name for p in (tmp_path / "show" / "static").iterdir())
    assert static == sorted(f"workspace_{p.replace('/', '_')}" for p in images)

    page = render(index, tmp_path)
    assert page.embeds >= len(vega), page.__dict__
    assert len(page.marks) >= len(vega), page.marks
    assert sorted(page.images) == sorted(f"static/{n}" for n in static)
    screenshot_is_not_blank(index, tmp_path)


def test_default_cdn_page_does_not_render_offline(repo: Path, tmp_path: Path):
    """Control: DVC's built-in page (vega from cdn.jsdelivr.net) draws nothing here, so the
    check above really depends on the inlined scripts."""
    from dvc_render.html import PAGE_HTML

    default = tmp_path / "default.html"
    default.write_text(PAGE_HTML)
    dvc(repo, "plots", "show", "--html-template", str(default), "-o", str(tmp_path / "cdn"))
    index = tmp_path / "cdn" / "index.html"
    assert any("cdn.jsdelivr.net" in s for s in Page(index.read_text()).scripts_src)
    page = render(index, tmp_path)
    assert page.marks == [] and page.embeds == 0
    assert len(page.images) == len(declared_plots(repo)[1])  # the images need no script


def test_plots_diff_renders_both_revisions(repo: Path, tmp_path: Path):
    vega, images = declared_plots(repo)
    window = yaml.safe_load((repo / "params.yaml").read_text())["summarize"]["window"]
    edit_params(repo, {"summarize": {"window": window - 1}})  # new smoothed series
    dvc(repo, "repro", timeout=600)

    diff = json.loads(dvc(repo, "plots", "diff", "HEAD", "--json").stdout)
    assert not diff.get("errors"), diff.get("errors")
    data = diff.get("data", diff)
    assert set(data) == set(vega) | set(images), sorted(data)
    for name in vega:
        (plot,) = data[name]
        assert sorted(plot["revisions"]) == ["HEAD", "workspace"], name
        revs = {v["rev"] for v in plot["content"]["data"]["values"]}
        assert revs == {"HEAD", "workspace"}, name
    for name in images:  # plots/ is DVC-cached: HEAD's images come from the cache
        assert sorted(p["revisions"][0] for p in data[name]) == ["HEAD", "workspace"], name

    dvc(repo, "plots", "diff", "HEAD", "-o", str(tmp_path / "diff"))
    index = tmp_path / "diff" / "index.html"
    page = render(index, tmp_path)
    assert len(page.marks) >= len(vega), page.marks
    assert len(page.images) == 2 * len(images)
    for src in page.images:
        assert (index.parent / src).is_file(), src
    screenshot_is_not_blank(index, tmp_path)
