"""The UI in English, Simplified Chinese and Korean: every text the app puts on a widget has both translations, a
message raised in the service reaches the user in the page's language, the language is the page's (its cookie,
else Accept-Language), and in a real browser with the zh-CN or ko-KR locale the tabs and the header are translated."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

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
        if not hidden:  # texts shown whether or not the label is: a caption, a plot's axis titles
            for key in ("caption", "info", "placeholder"):
                if isinstance(p.get(key), str) and p[key] and not p[key].startswith("__i18n__"):
                    found.append(f"{component['type']} {key}: {p[key]}")
            for key in ("x", "y", "color"):  # a plot's columns: the server titles them (panels.plot_titles)
                if isinstance(p.get(key), str) and not all(p[key] in catalog(locale) for locale in LOCALES[1:]):
                    found.append(f"{component['type']} {key}: {p[key]}")
        if not hidden and p.get("show_label", True):
            if isinstance(p.get("label"), str) and p["label"] and not p["label"].startswith("__i18n__"):
                found.append(f"{component['type']}: {p['label']}")
            # a table's header and choice cells (gr.Examples): English the page's script translates
            shown = [
                *(p.get("headers") or []),
                *(c[0] for q in p.get("component_props") or [] for c in q.get("choices") or []),
            ]
            for text in shown:
                if not all(text in catalog(locale) for locale in LOCALES[1:]):
                    found.append(f"{component['type']} cell: {text}")
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


@pytest.mark.parametrize("locale", LOCALES[1:])
def test_bold_text_in_a_translation_ends_where_markdown_ends_it(locale):
    """CommonMark ends **bold** only at a closing ** that is not punctuation followed by a letter, and Chinese has
    no spaces: "**看什么：**比值" would show its asterisks (found in the How tab)."""
    import unicodedata

    docs = Path(__file__).parents[2] / "docs"
    texts = [*catalog(locale).values(), *(p.read_text(encoding="utf-8") for p in docs.glob(f"*.{locale}.md"))]
    for text in texts:
        for bold in re.finditer(r"\*\*(.+?)\*\*(.?)", text, re.S):
            inner, after = bold.group(1), bold.group(2)
            closes = not (
                unicodedata.category(inner[-1]).startswith("P")
                and after
                and not after.isspace()
                and not unicodedata.category(after).startswith("P")
            )
            assert closes, bold.group(0)


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
        # a value that is itself a template's text is translated too
        ("Condition 2: start must be between 0 and 1; got 5.", "zh-CN", "条件 2：开始必须在 0 到 1 之间；收到的是 5。"),
        (
            "Condition 2: control strength must be between 0 and 2; got 5.",
            "ko",
            "조건 2: 제어 강도은(는) 0에서 2 사이여야 합니다. 받은 값: 5.",
        ),
        ("Steps must be between 1 and 3000; got 0.", "en", "Steps must be between 1 and 3000; got 0."),
    ],
)
def test_a_message_is_translated_with_its_values_or_left_in_english(message, locale, expected):
    assert translate(message, locale) == expected


def test_a_long_value_a_client_sent_is_not_matched_against_the_templates():
    """Matching a crafted value against the templates could backtrack for long; such a text stays as it is, and a
    slider's refusal quotes the value shortened."""
    from controlnet_demo.ui.widgets import _refuse_number, slider

    text = "Steps must be between 1 and 3000; got '" + " must be between 1 and 2; got " * 200 + "'."
    assert translate(text, "ko") == text
    refused = _refuse_number(slider(1, 50, label="Steps"), "9" * 5000)
    assert len(refused.message) < 120 and translate(refused.message, "ko").startswith(
        "스텝 수은(는) 1에서 50 사이의 숫자여야"
    )


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


def _messages() -> dict[str, str]:
    """Every message the app can show a user, as its fixed text (a value: NUL) -> where it is made: the first
    argument of each call to an error or notice of the package's service, models and UI (the CLI and the offline
    training speak English to a developer; the Train tab's own messages are read)."""
    calls = {"UserInputError", "EmptyDrawingError", "ModelUnavailableError", "ModelMismatchError", "Error", "Info",
             "Warning", "GenerationCancelled", "GenerationTimeout", "WorkerLost", "Refused"}  # fmt: skip

    def fixed(node) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "\0" for v in node.values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = fixed(node.left), fixed(node.right)
            return None if left is None or right is None else left + right
        return None  # a message made elsewhere: below

    package = Path(__file__).parents[2] / "controlnet_demo"
    found = {}
    for path in package.rglob("*.py"):
        part = path.relative_to(package).parts[0]
        if part == "cli" or (part == "lab" and path.name != "job.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in calls and node.args and (text := fixed(node.args[0])):
                found[text] = f"{path.relative_to(package)}:{node.lineno}"
    return found


def _made_messages() -> list[str]:
    """Messages made at run time, not in one call: as a user gets them."""
    from controlnet_demo.conditions.detectors import Detectors
    from controlnet_demo.models.loading import _LOAD_ADVICE
    from controlnet_demo.service.service import user_message
    from controlnet_demo.serving.ray_serve import _LOST

    missing = Detectors("models/annotators", online=False)._missing("openpose", "body_pose_model.pth", "no folder")
    return [_LOAD_ADVICE, _LOST, user_message(MemoryError("out of memory")), user_message(KeyError("x")), missing]


@pytest.mark.parametrize("locale", LOCALES[1:])
def test_every_message_the_app_can_show_has_its_translation(locale):
    """A message's catalog entry is found by its fixed text (what translate's templates match on)."""
    keys = {re.sub(r"\{\w+\}", "\0", source) for source in catalog(locale)}
    messages = _messages()
    assert len(messages) > 50  # the scan finds them
    missing = {text: where for text, where in messages.items() if re.sub(r"\{\w+\}", "\0", text) not in keys}
    assert not missing, missing


@pytest.mark.parametrize("locale", LOCALES[1:])
def test_every_message_the_app_can_show_is_translated_whole(locale):
    """Each message, with made-up values, comes back translated with no English sentence left in it."""
    for sample in [text.replace("\0", "7") for text in _messages()] + _made_messages():
        translated = translate(sample, locale)
        assert translated != sample and not re.search(r"[a-z]{3,} [a-z]{3,} [a-z]{3,}", translated), (
            sample,
            translated,
        )


def test_a_slider_refused_by_gradio_reaches_a_korean_user_in_korean(launched_app, files):
    from gradio_client import Client

    from tests.apiclient import request

    korean = Client(launched_app[0], verbose=False, headers={"Accept-Language": "ko-KR,ko;q=0.9"})
    with pytest.raises(Exception, match=r"스텝 수은\(는\) 1에서 .* 사이의 숫자여야 합니다") as raised:
        korean.predict(api_name="/canny", **request("/canny", files, steps=0))
    assert "must be" not in str(raised.value)


def test_a_message_raised_in_the_service_reaches_a_korean_user_in_korean(launched_app, files):
    from gradio_client import Client

    from tests.apiclient import request

    korean = Client(launched_app[0], verbose=False, headers={"Accept-Language": "ko-KR,ko;q=0.9"})
    with pytest.raises(Exception, match="Canny 엣지 이미지 없음: 먼저 업로드하거나 그려 주세요") as raised:
        korean.predict(api_name="/canny", **request("/canny", files, image=None))
    assert "No " not in str(raised.value)


@pytest.mark.browser
@pytest.mark.parametrize(
    "locale, tabs, header, pad, pose",
    [
        (
            "zh-CN",
            ["Canny 边缘", "人体姿态", "深度", "涂鸦", "组合", "ControlNet 的原理", "亲手训练一个"],
            "模型：",
            "画笔",
            (
                "从图像的姿态开始",
                "编辑器从一个站立的人形开始",
                "生成读取的是这个姿态（1 个人）",
                "提示词",
                "Canny（controlnet-aux）",
            ),
        ),
        (
            "ko-KR",
            ["Canny 엣지", "사람 포즈", "깊이", "스크리블", "조합", "ControlNet의 작동 원리", "직접 학습해 보기"],
            "모델:",
            "펜",
            (
                "이미지의 포즈에서 시작",
                "서 있는 사람 모양에서 시작합니다",
                "이 포즈(1명)를 읽습니다",
                "프롬프트",
                "Canny (controlnet-aux)",
            ),
        ),
        (
            "en-US",
            ["Canny edges", "Human pose", "Depth", "Scribble"],
            "Model:",
            "Pen",
            (
                "Start from the image's pose",
                "starts from a standing figure",
                "Generate reads this pose (1 person)",
                "Prompt",
                "Canny (controlnet-aux)",
            ),
        ),
    ],
)
def test_the_browsers_language_shows_the_tabs_header_and_drawing_pad_in_it(
    browser, launched_app, locale, tabs, header, pad, pose
):
    """Also what the server says at run time (a notice) and what the pose editor's script writes."""
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
        examples = page.locator("th").filter(visible=True)  # the examples' column headers, by the page's script
        expect(examples.nth(1)).to_have_text(pose[3])
        expect(page.locator("[role=gridcell]").filter(visible=True).nth(2)).to_have_text(pose[4])  # a choice
        page.get_by_role("tab", name=tabs[3]).click()
        pen = page.locator("#scribble-pad button[data-action=pen]")
        expect(pen).to_have_text(pad)  # the pad's own markup, by the page's script
        assert pen.get_attribute("title") != "Pen (B)" or locale == "en-US"
        page.get_by_role("tab", name=tabs[1]).click()
        page.get_by_role("button", name=pose[0]).click()  # no image: a notice, and a standing figure
        expect(page.get_by_text(pose[1])).to_be_visible()
        expect(page.locator("#pose-editor .pose-status")).to_contain_text(pose[2])
    finally:
        context.close()


@pytest.mark.browser
def test_switching_the_language_in_gradios_settings_renames_every_tab_and_rewrites_the_servers_texts(
    browser, launched_app
):
    """gradio itself renames only the tabs it has shown and knows nothing of what the server wrote: the page's
    script renames the others, and asks the server to write its texts again in the new language."""
    if shutil.which("chromium") is None:
        pytest.skip("no chromium")
    from playwright.sync_api import expect

    from tools.browser import UI_TIMEOUT_MS, VIEWPORT

    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    try:
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        page.goto(launched_app[0])
        expect(page.locator("#header")).to_contain_text("Model:")
        page.get_by_role("button", name="Settings").click()
        language = page.get_by_label("Language")
        language.click()
        language.fill("한국어")
        language.press("Enter")
        expect(page.locator("html")).to_have_attribute("lang", "ko")
        page.locator("[role=dialog] button").first.click()  # closed
        expect(page.locator("#header")).to_contain_text("모델:")  # written by the server again
        expect(page.get_by_role("tab").last).to_have_text("직접 학습해 보기")
        assert page.get_by_role("tab").all_inner_texts() == [
            "Canny 엣지",
            "사람 포즈",
            "깊이",
            "스크리블",
            "조합",
            "ControlNet의 작동 원리",
            "직접 학습해 보기",
        ]
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
