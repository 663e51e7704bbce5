"""The browsable compendium (`make docs-test`): build the site from the executed notebooks, open every page in
headless Chromium, and check that it loads without errors and that every image on it is present and non-empty.
Opt-in (it executes every notebook, several minutes): runs when BIOVFM_DOCS_TEST=1, as `make docs-test` sets it.
Screenshots of the home page and the figures page are kept in _docs/screenshots/ as test artefacts."""
import functools, http.server, os, shutil, threading
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(os.environ.get('BIOVFM_DOCS_TEST') != '1',
                                reason='builds and browses the docs site (minutes): make docs-test')


def chromium_path() -> str:
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if path := shutil.which(name): return path
    pytest.fail('no Chromium: apt-get install chromium (make docs-test installs it when it can)')


@pytest.fixture(scope='module')
def site():
    import sys
    sys.path.insert(0, str(ROOT/'docs'))
    import build
    html = Path(os.environ['BIOVFM_DOCS_HTML']) if os.environ.get('BIOVFM_DOCS_HTML') else build.build(ROOT/'_docs')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield html, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()


def test_every_page_loads_without_errors_and_every_image_is_present(site):
    from playwright.sync_api import sync_playwright
    html, url = site
    pages = sorted(p.relative_to(html).as_posix() for p in html.glob('*.html'))
    notebooks = {p.stem for p in (ROOT/'nbs').glob('*.ipynb')}
    assert notebooks <= {Path(p).stem for p in pages}, 'a notebook has no page'
    shots = ROOT/'_docs'/'screenshots'
    shots.mkdir(parents=True, exist_ok=True)
    problems, images_seen = [], {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=['--no-sandbox'])
        page = browser.new_page(viewport=dict(width=1280, height=900))
        errors = []
        page.on('pageerror', lambda e: errors.append(f'page error: {e}'))
        page.on('console', lambda m: errors.append(f'console {m.type}: {m.text}') if m.type == 'error' else None)
        page.on('response', lambda r: errors.append(f'HTTP {r.status}: {r.url}') if r.status >= 400 else None)
        for name in pages:
            errors.clear()
            page.goto(f'{url}/{name}', wait_until='networkidle')
            broken = page.eval_on_selector_all('img', 'imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0))'
                                                      '.map(i => i.getAttribute("src"))')
            images_seen[name] = page.eval_on_selector_all('img', 'imgs => imgs.length')
            body = page.inner_text('body')
            problems += [f'{name}: {e}' for e in errors] + [f'{name}: broken image {src}' for src in broken]
            if 'Traceback (most recent call last)' in body: problems.append(f'{name}: a traceback in the page')
            if name in ('index.html', '06_figures.html'):
                page.screenshot(path=str(shots/name.replace('.html', '.png')), full_page=True)
        browser.close()
    assert not problems, '\n'.join(problems)
    assert images_seen['index.html'] >= 2 and images_seen['06_figures.html'] >= 4, images_seen
    for shot in ('index.png', '06_figures.png'): assert (shots/shot).stat().st_size > 10_000
