"""The UI in English, Simplified Chinese and Korean: every text the app puts on a widget has both translations, a
message raised in the service reaches the user in the page's language, the language is the page's (its cookie,
else Accept-Language), and in a real browser with the zh-CN or ko-KR locale the tabs and the header are translated."""

from __future__ import annotations

import re
import shutil

import pytest

from controlnet_demo.service import ControlNetService
from controlnet_demo.settings import Settings
from controlnet_demo.ui import build
from controlnet_demo.ui.i18n import LOCALES, catalog, locale_of, registered, translate, translations


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> dict[str, str]:
    """Every text of the app as built here: with the Train tab on (the session's app) and off."""
    from app import make_trainer

    for training in (True, False):
        settings = Settings(preset="tiny", training=training)
        service = ControlNetService(settings, output_dir=str(tmp_path_factory.mktemp("out")))
        build(service, make_trainer(settings, service))
    return registered()


@pytest.mark.parametrize("locale", LOCALES[1:])
def test_every_text_on_a_widget_has_its_translation(texts, locale):
    missing = [text for key, text in texts.items() if key not in translations(locale)]
    assert not missing, f"{locale}: {len(missing)} texts untranslated, e.g. {missing[:3]}"
    assert len(translations("en")) == len(texts)


def _untranslated(blocks) -> list[str]:
    """Plain-string labels and choice labels of the widgets a user sees (inside no hidden container); a choice that
    is its own value (a sampler's name) is a name, not a text."""
    config = blocks.get_config_file()
    props = {c["id"]: c for c in config["components"]}
    found = []

    def walk(node, hidden=False):
        component = props.get(node["id"], {})
        p = component.get("props", {})
        hidden = hidden or p.get("visible") is False
        if not hidden and p.get("show_label", True):
            if isinstance(p.get("label"), str) and p["label"] and not p["label"].startswith("__i18n__"):
                found.append(f"{component['type']}: {p['label']}")
            for label, value in p.get("choices") or []:
                if isinstance(label, str) and label != value and not label.startswith("__i18n__"):
                    found.append(f"{component['type']} choice: {label}")
        for child in node.get("children", []):
            walk(child, hidden)

    walk(config["layout"])
    return found


@pytest.mark.parametrize("preset", ["tiny", "offline"])
def test_no_widget_text_a_user_sees_is_left_out_of_the_catalogs(preset, tmp_path):
    from app import make_trainer

    settings = Settings(preset=preset, training=True)
    service = ControlNetService(settings, output_dir=str(tmp_path))
    assert _untranslated(build(service, make_trainer(settings, service))) == []
    for locale in LOCALES[1:]:
        assert set(registered()) <= set(translations(locale)), locale


@pytest.mark.parametrize("locale", LOCALES[1:])
def test_every_template_keeps_its_values(locale):
    for source, target in catalog(locale).items():
        assert sorted(re.findall(r"\{(\w+)\}", source)) == sorted(re.findall(r"\{(\w+)\}", target)), source


@pytest.mark.parametrize(
    "message, locale, expected",
    [
        ("Steps must be between 1 and 3000; got 0.", "zh-CN", "步数必须在 1 到 3000 之间；收到的是 0。"),
        (
            "No image was given: upload one (or draw one) first.",
            "ko",
            "이미지 없음: 먼저 업로드하거나 그려 주세요.",
        ),
        (
            "No canny edges image was given: upload one (or draw one) first.",
            "zh-CN",
            "没有提供Canny 边缘图像：请先上传（或画出）一个。",
        ),
        ("Something the catalog has never seen.", "ko", "Something the catalog has never seen."),
        ("Steps must be between 1 and 3000; got 0.", "en", "Steps must be between 1 and 3000; got 0."),
    ],
)
def test_a_message_is_translated_with_its_values_or_left_in_english(message, locale, expected):
    assert translate(message, locale) == expected


class _Request:
    def __init__(self, accept: str = "", cookie: str | None = None):
        self.headers = {"accept-language": accept}
        self.cookies = {"controlnet_demo_lang": cookie} if cookie else {}


@pytest.mark.parametrize(
    "accept, cookie, locale",
    [
        ("ko-KR,ko;q=0.9,en;q=0.8", None, "ko"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", None, "en"),
        ("fr;q=0.9,zh-CN;q=0.8", None, "zh-CN"),  # French is not offered: the next one the browser takes
        ("zh-TW", None, "en"),  # traditional script: not Simplified Chinese
        ("zh-Hant-HK, zh; q=0.5", None, "zh-CN"),  # the traditional one is skipped, plain zh taken
        ("ko;q=0, zh-CN;q=0.4", None, "zh-CN"),  # q=0: "not Korean"
        ("", None, "en"),
        ("en-US", "ko", "ko"),  # the page's own choice (gradio's Settings) wins
    ],
)
def test_the_language_is_the_pages(accept, cookie, locale):
    assert locale_of(_Request(accept, cookie)) == locale


def test_a_message_raised_in_the_service_reaches_a_korean_user_in_korean(launched_app, files):
    from gradio_client import Client

    from tests.apiclient import request

    korean = Client(launched_app[0], verbose=False, headers={"Accept-Language": "ko-KR,ko;q=0.9"})
    with pytest.raises(Exception, match="Canny 엣지 이미지 없음: 먼저 업로드하거나 그려 주세요") as raised:
        korean.predict(api_name="/canny", **request("/canny", files, image=None))
    assert "No " not in str(raised.value)


@pytest.mark.browser
@pytest.mark.parametrize(
    "locale, tabs, header, pad",
    [
        (
            "zh-CN",
            ["Canny 边缘", "人体姿态", "深度", "涂鸦", "组合", "ControlNet 的原理", "亲手训练一个"],
            "模型：",
            "画笔",
        ),
        (
            "ko-KR",
            ["Canny 엣지", "사람 포즈", "깊이", "스크리블", "조합", "ControlNet의 작동 원리", "직접 학습해 보기"],
            "모델:",
            "펜",
        ),
        ("en-US", ["Canny edges", "Human pose", "Depth", "Scribble"], "Model:", "Pen"),
    ],
)
def test_the_browsers_language_shows_the_tabs_header_and_drawing_pad_in_it(
    browser, launched_app, locale, tabs, header, pad
):
    if shutil.which("chromium") is None:
        pytest.skip("no chromium")
    from playwright.sync_api import expect

    from tools.browser import UI_TIMEOUT_MS, VIEWPORT

    context = browser.new_context(viewport=VIEWPORT, locale=locale)
    try:
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        page.goto(launched_app[0])
        expect(page.get_by_role("tab").first).to_have_text(tabs[0])
        assert page.get_by_role("tab").all_inner_texts()[: len(tabs)] == tabs
        expect(page.locator("#header")).to_contain_text(header)  # written by the server, for this page
        page.get_by_role("tab", name=tabs[3]).click()
        pen = page.locator("#scribble-pad button[data-action=pen]")
        expect(pen).to_have_text(pad)  # the pad's own markup, by the page's script
        assert pen.get_attribute("title") != "Pen (B)" or locale == "en-US"
    finally:
        context.close()


def test_the_control_check_and_the_compare_captions_read_in_the_pages_language():
    from controlnet_demo.conditions.check import ControlCheck
    from controlnet_demo.service.compare import label
    from controlnet_demo.ui.panels import check_text

    low = ControlCheck("canny", "edge F1, 2 px", 0.1, 0.3, "The control strength is low (0.2); raise it towards 1.")
    text = check_text([low], "ko")
    assert text.startswith("**제어 확인**") and "**1. canny: 맵을 따르지 않음** (엣지 F1, 2 px 0.10 < 0.3)" in text
    assert "제어 강도가 낮습니다(0.2)" in text
    assert check_text([low]) == (
        "**Control check** (the condition detected again on the result)\n- ⚠️ **1. canny: does not follow its map** "
        "(edge F1, 2 px 0.10 < 0.3). The control strength is low (0.2); raise it towards 1."
    )  # English as before
    assert [translate(label(s), "zh-CN") for s in (None, 0.0, 1.5)] == ["你的设置", "关闭 ControlNet", "强度 1.5"]
