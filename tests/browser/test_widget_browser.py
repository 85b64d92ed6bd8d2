"""The drop-in widget on a site of another origin, in real headless Chromium: a sample news site (its own HTTP server
and port) embeds ``<div data-related-articles>`` and ``<script src=API/widget.js async>``; the API runs on another
port with CORS for the site. ``WIDGET_SCREENSHOT=docs/widget.png`` also saves the screenshot used in the README."""

from __future__ import annotations

import base64
import html
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from recommender.build import build_index
from recommender.settings import Settings
from service import create_app
from tests.support.browser import Page, goto
from tests.support.paths import DEMO_CORPUS
from tests.support.server import free_port, wait_until

COLOURS = ["#c8553d", "#2d6a4f", "#3d5a80", "#9c6644", "#6d597a", "#588157", "#bc4749", "#1d3557"]


def _svg(article_id: str, section: str) -> bytes:
    colour = COLOURS[sum(map(ord, section)) % len(COLOURS)]
    label = html.escape(section.upper())
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 180"><rect width="320" height="180" fill="{colour}"/>'
        f'<circle cx="{60 + sum(map(ord, article_id)) % 200}" cy="90" r="60" fill="#ffffff" opacity="0.18"/>'
        f'<text x="20" y="160" font-family="sans-serif" font-size="20" fill="#fff">{label}</text></svg>'
    ).encode()


class _Site(BaseHTTPRequestHandler):
    """A news site: /story/<id> pages with the widget, /images/<id>.svg, /long (the box far down the page)."""

    api = ""
    sections: dict[str, str] = {}

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _page(self, body: str) -> bytes:
        return (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Sample site</title>"
            "<style>body{font-family:Georgia,serif;max-width:980px;margin:2rem auto;padding:0 1rem}"
            "[data-related-articles]{--ra-accent:#0b5394}</style></head>"
            f"<body>{body}<script src='{self.api}/widget.js' async></script></body></html>"
        ).encode()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?")[0]
        if path.startswith("/images/"):
            article_id = path[len("/images/") : -len(".svg")]
            self._send(200, "image/svg+xml", _svg(article_id, self.sections.get(article_id, "news")))
            return
        far = "<div style='height:5000px' id='spacer'>Long story...</div>" if path == "/long" else ""
        attributes = {"/empty": "data-section='no-such-section'", "/filled": "data-fill='section_recent'"}.get(path, "")
        if path.startswith("/unknown") or path in ("/long", "/empty", "/filled"):
            url = "data-url='https://nowhere.test/x'" if path.startswith("/unknown") else "data-article-id='demo-006'"
        else:
            url = ""  # the widget's default: this page's own address
        body = f"<h1 id='headline'>{html.escape(path)}</h1>{far}<div data-related-articles {url} {attributes} id='box'></div>"
        self._send(200, "text/html; charset=utf-8", self._page(body))

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def site_and_api(tmp_path_factory, embedder):
    import uvicorn

    site_port, api_port = free_port(), free_port()
    site, api = f"http://127.0.0.1:{site_port}", f"http://127.0.0.1:{api_port}"
    records = [json.loads(line) for line in DEMO_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in records:  # the site's own addresses, and an image for most articles (some have none)
        r["url"] = f"{site}/story/{r['id']}"
        if int(r["id"].split("-")[1]) % 5:
            r["image_url"], r["image_alt"] = f"{site}/images/{r['id']}.svg", f"Illustration: {r['section']}"
    export = tmp_path_factory.mktemp("site") / "export.jsonl"
    export.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    index = tmp_path_factory.mktemp("site-index")
    build_index([export], Settings(index_dir=index), embedder=embedder, progress=False)
    _Site.api, _Site.sections = api, {r["id"]: r["section"] for r in records}
    http = ThreadingHTTPServer(("127.0.0.1", site_port), _Site)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    settings = Settings(index_dir=index, poll_interval=0, cors_origins=[site], host="127.0.0.1", port=api_port)
    app = create_app(settings, embedder=embedder)
    requests: list[str] = []

    async def logged(scope, receive, send):  # the API's request log, to see when the widget asks
        if scope["type"] == "http":
            requests.append(scope["path"] + "?" + scope["query_string"].decode())
        await app(scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(logged, host="127.0.0.1", port=api_port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    wait_until(lambda: server.started, 30, 0.05, "uvicorn")
    assert app.state.live.wait_loaded(60)
    yield site, api, requests
    server.should_exit = True
    http.shutdown()


def _box(browser: Page) -> Any:
    return browser.js("document.getElementById('box').getAttribute('data-ra-state')")


def test_the_widget_renders_the_box_on_another_origin(browser: Page, site_and_api) -> None:
    site, api, _ = site_and_api
    goto(browser, f"{site}/story/demo-006?utm_source=newsletter")
    browser.wait_for("document.getElementById('box').getAttribute('data-ra-state') === 'shown'")
    expected = httpx.get(f"{api}/v1/articles/demo-006/related", params={"k": 6}, timeout=10).json()["items"]
    shown = browser.js(
        "[...document.querySelectorAll('#box .ra-item')].map(li => ({id: li.dataset.id,"
        " title: li.querySelector('.ra-headline').textContent, href: li.querySelector('a.ra-link').href,"
        " section: (li.querySelector('.ra-section') || {}).textContent, date: !!li.querySelector('time[datetime]'),"
        " img: li.querySelector('img') && {lazy: li.querySelector('img').loading, alt: li.querySelector('img').alt}}))"
    )
    assert [s["id"] for s in shown] == [i["id"] for i in expected]
    assert [s["title"] for s in shown] == [i["title"] for i in expected]
    assert [s["href"] for s in shown] == [i["url"] for i in expected] and all(s["date"] for s in shown)
    assert all(
        s["img"] is None or (s["img"]["lazy"] == "lazy" and s["img"]["alt"].startswith("Illustration")) for s in shown
    )
    # a list of links with real text, under a heading that labels it
    assert browser.js(
        "document.querySelector('#box section').getAttribute('aria-labelledby') === document.querySelector('#box h2').id"
    )
    # the box is as long as what clears the relevance floor (demo-006: its story's follow-ups), never filled up
    assert browser.js("document.querySelectorAll('#box ul.ra-list > li > a.ra-link').length") == len(expected) >= 3
    # no layout shift: every image box has its height before (and after) the image arrives
    heights = browser.js(
        "[...document.querySelectorAll('#box .ra-media')].map(m => Math.round(m.getBoundingClientRect().height))"
    )
    assert min(heights) > 50 and len(set(heights)) == 1
    # themable: the host's custom property reached the box
    assert (
        browser.js("getComputedStyle(document.getElementById('box')).getPropertyValue('--ra-accent').trim()")
        == "#0b5394"
    )
    if os.environ.get("WIDGET_SCREENSHOT"):
        browser.call("Emulation.setDeviceMetricsOverride", width=1000, height=760, deviceScaleFactor=1, mobile=False)
        browser.wait_for("[...document.querySelectorAll('#box img')].every(i => i.complete && i.naturalWidth > 0)")
        shot = browser.call("Page.captureScreenshot", format="png")
        browser.call("Emulation.clearDeviceMetricsOverride")
        Path(os.environ["WIDGET_SCREENSHOT"]).write_bytes(base64.b64decode(shot["data"]))
    # a click goes to the article on the site, whose page shows its own box
    first = shown[0]
    browser.click("#box a.ra-link")
    browser.wait_for(f"location.href === {json.dumps(first['href'])}")
    browser.wait_for("document.getElementById('box').getAttribute('data-ra-state') === 'shown'")
    assert first["id"] not in browser.js("[...document.querySelectorAll('#box .ra-item')].map(li => li.dataset.id)")


def test_fallback_items_are_titled_apart(browser: Page, site_and_api) -> None:
    """A box the floor left short, filled on request (data-fill): the related items under the box's title, the
    fill under "More news", never mixed; positions run on across both groups."""
    site, api, _ = site_and_api
    goto(browser, site + "/filled")
    browser.wait_for("document.getElementById('box').getAttribute('data-ra-state') === 'shown'")
    expected = httpx.get(f"{api}/v1/articles/demo-006/related", params={"k": 6, "fill": "section_recent"}).json()[
        "items"
    ]
    related = [i["id"] for i in expected if not i["fallback"]]
    fill = [i["id"] for i in expected if i["fallback"]]
    assert related and fill and len(expected) == 6
    groups = browser.js(
        "[...document.querySelectorAll('#box .ra-group')].map(g => ({title: g.querySelector('.ra-heading').textContent,"
        " ids: [...g.querySelectorAll('.ra-item')].map(li => li.dataset.id)}))"
    )
    assert groups == [{"title": "Related articles", "ids": related}, {"title": "More news", "ids": fill}]


def test_nothing_is_rendered_for_an_unknown_url_or_an_empty_box(browser: Page, site_and_api) -> None:
    site, _, _ = site_and_api
    for path in ("/unknown/page", "/empty"):
        goto(browser, site + path)
        browser.wait_for("document.getElementById('box').getAttribute('data-ra-state') === 'empty'")
        assert browser.js("document.getElementById('box').childElementCount") == 0
        assert browser.js("document.getElementById('box').getBoundingClientRect().height") == 0


def test_no_request_before_the_box_nears_the_viewport(browser: Page, site_and_api) -> None:
    site, _, requests = site_and_api
    requests.clear()
    goto(browser, site + "/long")
    browser.wait_for("document.getElementById('box').getAttribute('data-ra-state') === 'waiting'")
    time.sleep(1.0)
    before = [r for r in requests if "/related" in r]
    requests.clear()
    assert before == [] and _box(browser) == "waiting"
    browser.js("window.scrollTo(0, document.body.scrollHeight)")
    browser.wait_for("document.getElementById('box').getAttribute('data-ra-state') === 'shown'")
    assert [r for r in requests if r.startswith("/v1/articles/demo-006/related")], requests


def test_the_widget_is_served_cached_and_versioned(site_and_api) -> None:
    _, api, _ = site_and_api
    current = httpx.get(api + "/widget.js", timeout=10)
    assert current.status_code == 200 and current.headers["content-type"].startswith("text/javascript")
    assert (
        current.headers["cache-control"] == "public, max-age=300"
        and current.headers["x-content-type-options"] == "nosniff"
    )
    assert "frame-ancestors 'none'" in current.headers["content-security-policy"]
    etag = current.headers["etag"]
    assert httpx.get(api + "/widget.js", headers={"If-None-Match": etag}, timeout=10).status_code == 304
    version = etag.strip('"')
    pinned = httpx.get(f"{api}/widget/{version}/widget.js", timeout=10)
    assert pinned.status_code == 200 and pinned.content == current.content
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert httpx.get(f"{api}/widget/{version}/widget.css", timeout=10).headers["content-type"].startswith("text/css")
    assert httpx.get(f"{api}/widget/0000/widget.js", timeout=10).status_code == 404
