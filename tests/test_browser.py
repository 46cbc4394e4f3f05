"""A real browser on the chat page: Playwright driving Debian's Chromium.

Playwright's own browser download cannot work here, so the test uses
/usr/bin/chromium (`apt-get install chromium`). Without it the test skips with
the reason, except under CI=true, where `.ci/run` installs it and a missing
browser is a failure. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from rag.ui import build_app
from tests.test_app import EVIL, serving

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# Texts of the assistant's bubbles, read in the page.
BOT_TEXTS = "() => [...document.querySelectorAll('#chat .bot-row')].map(e => e.innerText)"
# Records every length the last assistant bubble takes, to see the answer stream in.
WATCH_STREAM = """() => {
  window.__lengths = [];
  new MutationObserver(() => {
    const bots = document.querySelectorAll('#chat .bot-row');
    if (bots.length) window.__lengths.push(bots[bots.length - 1].innerText.length);
  }).observe(document.querySelector('#chat'), {subtree: true, childList: true, characterData: true});
}"""


def chromium_path() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    missing = None if found else "no Chromium at /usr/bin/chromium (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "the playwright package is not installed"
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"browser test is mandatory in CI: {missing}")
    if missing:
        pytest.skip(missing)
    return found


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (Playwright's sync API runs one at a time)."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, pipeline, settings):
    with serving(build_app(pipeline, settings), settings) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.dialogs = []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        page.locator("#question textarea").wait_for()
        yield page
        page.close()


def ask(page, question: str, wait_for: str) -> str:
    """Type a question, press Enter, and return the bot's new bubble once it holds `wait_for`."""
    before = len(page.evaluate(BOT_TEXTS))
    page.locator("#question textarea").fill(question)
    page.locator("#question textarea").press("Enter")
    page.wait_for_function(
        f"() => {{ const t = ({BOT_TEXTS})(); return t.length > {before} && t[t.length - 1].includes({wait_for!r}); }}",
        timeout=30_000,
    )
    return page.evaluate(BOT_TEXTS)[-1]


@pytest.mark.slow
def test_why_did_he_leave_streams_an_answer_with_checkable_sources(page, pipeline):
    page.evaluate(WATCH_STREAM)
    text = ask(page, "why did he leave?", "[1]")
    page.locator("#sources mark").first.wait_for()
    expected = pipeline.ask("why did he leave?")
    assert expected.answer.split("[1]")[0][-12:] in text
    lengths = sorted(set(page.evaluate("() => window.__lengths")))
    assert len(lengths) >= 4, f"the answer arrived all at once (bubble lengths seen: {lengths})"
    marks = [" ".join(m.split()) for m in page.locator("#sources mark").all_inner_texts()]
    quotes = [" ".join(c.quote.split()) for c in expected.citations]
    assert marks == quotes
    panel = page.locator("#sources").inner_text()
    assert "[1]" in panel and "¶" in panel and "score" in panel
    # An English answer over the Chinese letter: each card shows the original, highlighted, and its rendering.
    assert expected.lang == "en" and not re.search(r"[\u4e00-\u9fff]", text)
    shown = [" ".join(r.split()) for r in page.locator("#sources .rag-rendering").all_inner_texts()]
    assert shown == [" ".join(c.quote_translation.split()) for c in expected.citations]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-answer.png"))


@pytest.mark.slow
def test_a_chinese_question_gets_the_chinese_quotation_without_renderings(page, pipeline):
    expected = pipeline.ask("他为什么离开?")
    text = ask(page, "他为什么离开?", "[1]")
    assert expected.lang == "zh" and expected.citations[0].quote[:10] in text
    # the panel is replaced once the answer is complete (an earlier answer's cards may still show until then)
    page.wait_for_function(
        "() => document.querySelectorAll('#sources .rag-cite').length > 0"
        " && document.querySelectorAll('#sources .rag-rendering').length === 0",
        timeout=15_000,
    )


@pytest.mark.slow
def test_html_in_a_question_shows_as_text_and_runs_nothing(page):
    ask(page, EVIL, "")
    user_texts = page.locator("#chat .user-row").all_inner_texts()
    assert EVIL in user_texts[-1]
    assert page.locator("#chat img").count() == 0
    page.wait_for_timeout(500)  # an onerror handler would have fired by now
    assert page.dialogs == []
    page.screenshot(path=str(ARTIFACTS / "browser-html-question.png"))


@pytest.mark.slow
def test_empty_question_gets_a_readable_message_and_clear_empties_the_chat(page):
    assert "empty" in ask(page, "", "⚠️")
    page.locator("#clear").click()
    page.wait_for_function(f"() => ({BOT_TEXTS})().length === 0")
    assert "appear here" in page.locator("#sources").inner_text()


@pytest.fixture(scope="module")
def upload_page(browser, pipeline, tmp_path_factory):
    """The page over a private copy of the seeds, with adding documents turned on."""
    from rag.config import REPO
    from rag.pipeline import Pipeline
    from tests.conftest import make_settings

    tmp = tmp_path_factory.mktemp("uploads")
    seeds = tmp / "seeds"
    seeds.mkdir()
    for p in (REPO / "seeds").iterdir():
        shutil.copy(p, seeds)
    settings = make_settings(tmp, seeds_dir=seeds, uploads="1")
    mine = Pipeline(settings, pipeline.embedder, pipeline.index)
    with serving(build_app(mine, settings), settings) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.locator("#question textarea").wait_for()
        yield page, seeds
        page.close()


@pytest.mark.slow
def test_a_pdf_added_in_the_page_is_answered_with_its_name_and_page(upload_page):
    page, seeds = upload_page
    assert "Mrinank Sharma" in page.locator("#about").inner_text()  # the title comes from seeds/chat.toml
    page.get_by_text("Documents 文档").click()
    page.locator("input[type=file]").set_input_files(str(Path(__file__).parent / "fixtures" / "formats" / "report.pdf"))
    page.locator("#indexing").get_by_text("Indexed in").wait_for(timeout=180_000)
    assert (seeds / "report.pdf").is_file() and "2 documents" in page.locator("#indexing").inner_text()
    ask(page, "Who rebuilt the pier?", "[1]")
    page.wait_for_function("() => document.querySelector('#sources').innerText.includes('report.pdf')", timeout=15_000)
    first = page.locator("#sources .rag-cite").first.inner_text()
    assert "report.pdf" in first and "p. 3" in first and "Agnes Varga" in first
    # the letter's questions still get the letter's passages
    ask(page, "why did he leave?", "[1]")
    page.wait_for_function(
        "() => document.querySelector('#sources .rag-cite').innerText.includes('mrinank-sharma-letter')",
        timeout=15_000,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-upload.png"))
