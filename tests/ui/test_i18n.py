"""The UI in English, Simplified Chinese and Korean: every text the app puts on a widget has both translations, a
message raised in the service reaches the user in the page's language, the language is the page's (its cookie,
else Accept-Language), and in a real browser with the zh-CN or ko-KR locale the tabs and the header are translated."""

from __future__ import annotations

import ast
import contextlib
import re
import shutil
import string
import time
from pathlib import Path

import pytest

from controlnet_demo.errors import Message, UserInputError, message, quoted
from controlnet_demo.service import ControlNetService
from controlnet_demo.settings import Settings
from controlnet_demo.ui import build
from controlnet_demo.ui.i18n import (
    LOCALES,
    catalog,
    fill,
    locale_of,
    registered,
    translate,
    translated_error,
    translations,
)
from tests.apiclient import HOLD_S


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


def _range(name, value) -> Message:
    return message("{name} must be between {lo} and {hi}; got {value}.", name=name, lo="0", hi="2", value=value)


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        ("제어 강도", "제어 강도는 / 제어 강도를 / 제어 강도가 / 제어 강도로"),  # a vowel
        ("해상도 맵", "해상도 맵은 / 해상도 맵을 / 해상도 맵이 / 해상도 맵으로"),  # a final consonant
        ("'모델'", "'모델'은 / '모델'을 / '모델'이 / '모델'로"),  # ㄹ, inside quotes
        ("(3, 4)", "(3, 4)는 / (3, 4)를 / (3, 4)가 / (3, 4)로"),  # read 사
        ("7", "7은 / 7을 / 7이 / 7로"),  # read 칠
        ("midas", "midas은(는) / midas을(를) / midas이(가) / midas(으)로"),  # Latin: both forms, as written
    ],
)
def test_a_korean_particle_takes_the_form_that_fits_the_value_before_it(before, expected):
    template = "{x}은(는) / {x}을(를) / {x}이(가) / {x}(으)로"
    assert fill(template, {"x": before}) == expected
    assert fill("{x}.", {"x": "은(는)"}) == "은(는)."  # a value is put in as it is: only the template is read


@pytest.mark.parametrize(
    "text, locale, expected",
    [
        (
            message("{name} must be between {lo} and {hi}; got {value}.", name="Steps", lo="1", hi="3000", value="0"),
            "zh-CN",
            "步数必须在 1 到 3000 之间；收到的是 0。",
        ),
        (
            message("No {what} was given: upload one (or draw one) first.", what=message("image")),
            "ko",
            "이미지 없음: 먼저 업로드하거나 그려 주세요.",
        ),
        (
            message("No {what} was given: upload one (or draw one) first.", what="canny edges image"),
            "zh-CN",
            "没有提供Canny 边缘图像：请先上传（或画出）一个。",
        ),
        (message("Something the catalog has never seen: {x}.", x="Steps"), "ko", "Something the catalog has never seen: 스텝 수."),
        ("Something the catalog has never seen.", "ko", "Something the catalog has never seen."),
        ("Stopped.", "zh-CN", catalog("zh-CN")["Stopped."]),  # a text with no values: looked up whole
        # a value that is a message of its own is translated too
        (
            message("{name} must be between {lo} and {hi}; got {value}.", name=message("Condition {k}: start", k=2),
                    lo="0", hi="1", value="5"),
            "zh-CN",
            "条件 2：开始必须在 0 到 1 之间；收到的是 5。",
        ),
        (
            _range(message("Condition {k}: control strength", k=2), "5"),
            "ko",
            "조건 2: 제어 강도는 0에서 2 사이여야 합니다. 받은 값: 5.",
        ),
        # a client's value is put back as it is, even when it reads like a text of the catalog or a template
        (_range("Steps", quoted("Steps")), "ko", "스텝 수는 0에서 2 사이여야 합니다. 받은 값: 'Steps'."),
        (_range("Steps", "{value} {0}"), "ko", "스텝 수는 0에서 2 사이여야 합니다. 받은 값: {value} {0}."),
        # English as it was written; a finished English sentence is never read back into a template
        (_range("Steps", "5"), "en", "Steps must be between 0 and 2; got 5."),
        ("Steps must be between 1 and 3000; got 0.", "ko", "Steps must be between 1 and 3000; got 0."),
    ],
)  # fmt: skip
def test_a_message_is_translated_with_its_values_or_left_in_english(text, locale, expected):
    assert translate(text, locale) == expected


def test_an_error_raised_with_its_values_is_translated_by_its_message_where_it_is_shown():
    from controlnet_demo.ui.panels import user_error

    error = UserInputError("Condition {k}: start ({start}) must be before end ({end}).", k=2, start="0.5", end="0.2")
    assert str(error) == "Condition 2: start (0.5) must be before end (0.2)."  # the CLI's and the log's English
    shown = user_error(error, "test")
    assert shown.message == str(error) and shown.message_id == error.message
    assert translated_error(shown, _Request("ko-KR")).message == "조건 2: 시작(0.5)은 끝(0.2)보다 앞서야 합니다."
    assert translated_error(shown, _Request("en-US")) is shown
    unexpected = translated_error(user_error(KeyError("x"), "test"), _Request("zh-CN")).message
    assert unexpected.startswith("生成意外失败（KeyError）")
    import gradio as gr

    plain = gr.Error("Stopped.", print_exception=False)  # an error that keeps no message: its text looked up whole
    assert translated_error(plain, _Request("zh-CN")).message == catalog("zh-CN")["Stopped."]


def test_a_crafted_value_a_client_sent_is_never_matched_against_the_templates():
    """Matching the finished English against the templates with patterns took minutes on a crafted value of under
    1,000 characters (#security): a message keeps its values apart, and showing it is dictionary lookups, however
    long or crafted a value is; a client's value in a message is shortened; nothing is matched at all."""
    from controlnet_demo.ui import i18n
    from controlnet_demo.ui.widgets import _refuse_number, slider

    assert not hasattr(i18n, "_templates") and not hasattr(i18n, "MAX_MATCHED")
    crafted = "Steps must be between 1 and 3000; got '" + " must be between 1 and 2; got " * 35_000 + "'."
    assert len(crafted) > 1_000_000
    for locale in LOCALES[1:]:
        started = time.perf_counter()
        whole = translate(_range("Steps", crafted), locale)  # even a value not shortened
        plain = translate(crafted, locale)  # and a plain text: looked up whole, left as it is
        assert time.perf_counter() - started < HOLD_S
        assert crafted in whole and not whole.startswith("Steps") and plain == crafted
    refused = _refuse_number(slider(1, 50, label="Steps"), "9" * 1_000_000)
    assert isinstance(refused.message, Message) and len(str(refused.message)) < 120
    started = time.perf_counter()
    assert translate(refused.message, "ko").startswith("스텝 수는 1에서 50 사이의 숫자여야")
    assert time.perf_counter() - started < HOLD_S


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


_CALLS = {"UserInputError", "EmptyDrawingError", "ModelUnavailableError", "ModelMismatchError", "Error", "Info",
          "Warning", "GenerationCancelled", "GenerationTimeout", "WorkerLost", "Refused", "message", "Message"}  # fmt: skip
_WRAPPERS = {"message", "Message", "say", "translate"}  # a call whose first argument is the message itself


def _scan() -> dict[str, tuple[str, bool]]:
    """Every message the app can show a user, as its first argument's text (an f-string's values: NUL) -> (where
    it is made, whether it is a template with its values passed apart): the first argument of each call to an
    error, a notice or `message` in the package's service, models and UI (the CLI and the offline training speak
    English to a developer; the Train tab's own messages are read)."""

    def fixed(node) -> tuple[str, bool] | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value, True
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "\0" for v in node.values), False
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = fixed(node.left), fixed(node.right)
            return None if left is None or right is None else (left[0] + right[0], False)
        if isinstance(node, ast.Call) and _name(node) in _WRAPPERS and node.args:
            return fixed(node.args[0])
        return None  # a message made elsewhere: `_made_messages`

    package = Path(__file__).parents[2] / "controlnet_demo"
    found = {}
    for path in package.rglob("*.py"):
        part = path.relative_to(package).parts[0]
        if part == "cli" or (part == "lab" and path.name != "job.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _name(node) in _CALLS and node.args and (text := fixed(node.args[0])):
                found[text[0]] = (f"{path.relative_to(package)}:{node.lineno}", text[1])
    return found


def _name(call: ast.Call) -> str | None:
    return getattr(call.func, "id", None) or getattr(call.func, "attr", None)


def _messages() -> dict[str, str]:
    """Every message's template found in the source -> where it is made."""
    return {text: where for text, (where, _) in _scan().items()}


def _sample(template: str) -> Message:
    """A template with made-up values."""
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    return message(template, **dict.fromkeys(names, "7"))


def _made_messages() -> list[Message | str]:
    """Messages made at run time, not in one call: as a user gets them."""
    import numpy as np

    from controlnet_demo.conditions import CONDITIONS
    from controlnet_demo.conditions.check import _cause
    from controlnet_demo.conditions.detectors import Detectors
    from controlnet_demo.models.curves import quality_line
    from controlnet_demo.models.loading import _LOAD_ADVICE, resolve_preset
    from controlnet_demo.service.messages import user_message_of
    from controlnet_demo.serving.ray_serve import _LOST
    from controlnet_demo.ui.compare import caption
    from controlnet_demo.ui.how_tab import stage_clauses
    from controlnet_demo.ui.widgets import _refuse_number, slider

    missing = Detectors("models/annotators", online=False)._missing("openpose", "body_pose_model.pth", "no folder")
    scores = {"n": 7, "prompt_main": 0.5, "conditions": {"canny": {"ratio": 3.0}, "depth": {"ratio": 5.0}}}
    stages = [[1, 0.5, None], [2, 0.5, "b"], [3, 0.0, None], [4, 0.5, "b"], [5, 0.0, "b"]]
    black, white = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    CANNY, DEPTH = CONDITIONS["canny"].check, CONDITIONS["depth"].check
    noisy = np.random.default_rng(0).integers(0, 255, (8, 8, 3), np.uint8)
    causes = [_cause(CANNY, black, 0, 0, 1), _cause(CANNY, black, 1, 0, 0.2), _cause(CANNY, white, 1, 0, 1),
              _cause(CANNY, black, 1, 0, 1), _cause(DEPTH, black, 1, 0, 1), _cause(DEPTH, noisy, 0.2, 0, 1),
              _cause(DEPTH, noisy, 1, 0, 1)]  # fmt: skip
    return [
        _LOAD_ADVICE,
        _LOST,
        missing.message,
        user_message_of(MemoryError("out of memory")),
        user_message_of(KeyError("x")),
        quality_line(scores),
        resolve_preset(Settings(preset="tiny")).reason,
        caption(None),
        caption(0.0),
        caption(1.5),
        _refuse_number(slider(1, 50, label="Steps"), "x").message,
        *stage_clauses(stages),
        *causes,
    ]


def test_every_message_is_made_from_its_template_and_its_values():
    """An f-string message is English fixed at once: it could only be translated by reading its values back."""
    made_at_once = {text: where for text, (where, template) in _scan().items() if not template}
    assert not made_at_once, made_at_once


@pytest.mark.parametrize("locale", LOCALES[1:])
def test_every_message_the_app_can_show_has_its_translation(locale):
    """A message's template is the catalog's key: found by a lookup, as it is shown."""
    messages = _messages()
    assert len(messages) > 50  # the scan finds them
    missing = {text: where for text, where in messages.items() if "\0" not in text and text not in catalog(locale)}
    assert not missing, missing


@pytest.mark.parametrize("locale", LOCALES[1:])
def test_every_message_the_app_can_show_is_translated_whole(locale):
    """Each message, with made-up values, comes back translated with no English sentence left in it."""
    samples = [_sample(text) for text in _messages() if "\0" not in text] + _made_messages()
    assert len(samples) > 70
    for sample in samples:
        translated = translate(sample, locale)
        assert translated != str(sample) and not re.search(r"[a-z]{3,} [a-z]{3,} [a-z]{3,}", translated), (
            str(sample),
            translated,
        )


def test_a_slider_refused_by_gradio_reaches_a_korean_user_in_korean(launched_app, files):
    from gradio_client import Client

    from tests.apiclient import request

    korean = Client(launched_app[0], verbose=False, headers={"Accept-Language": "ko-KR,ko;q=0.9"})
    with pytest.raises(Exception, match=r"스텝 수는 1에서 .* 사이의 숫자여야 합니다") as raised:
        korean.predict(api_name="/canny", **request("/canny", files, steps=0))
    assert "must be" not in str(raised.value)


def test_a_message_raised_in_the_service_reaches_a_korean_user_in_korean(launched_app, files):
    from gradio_client import Client

    from tests.apiclient import request

    korean = Client(launched_app[0], verbose=False, headers={"Accept-Language": "ko-KR,ko;q=0.9"})
    with pytest.raises(Exception, match="Canny 엣지 이미지 없음: 먼저 업로드하거나 그려 주세요") as raised:
        korean.predict(api_name="/canny", **request("/canny", files, image=None))
    assert "No " not in str(raised.value)


@contextlib.contextmanager
def _page(browser, url: str, locale: str):
    """The app in a browser tab whose language is `locale` (skipped where there is no chromium)."""
    if shutil.which("chromium") is None:
        pytest.skip("no chromium")
    from tools.browser import UI_TIMEOUT_MS, VIEWPORT

    context = browser.new_context(viewport=VIEWPORT, locale=locale)
    try:
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        page.goto(url)
        yield page
    finally:
        context.close()


KOREAN_TABS = ["엣지와 선", "사람 포즈", "깊이와 노멀", "스크리블", "사진에서 사진으로", "조합"]
KOREAN_TABS += ["ControlNet의 작동 원리", "직접 학습해 보기"]  # the top level's, in a Korean page


@pytest.mark.browser
@pytest.mark.parametrize(
    "locale, tabs, header, pad, pose",
    [
        (
            "zh-CN",
            ["边缘与线条", "人体姿态", "深度与法线", "涂鸦", "以图生图", "组合", "ControlNet 的原理", "亲手训练一个"],
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
            KOREAN_TABS,
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
            ["Edges and lines", "Human pose", "Depth and normals", "Scribble"],
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
    from playwright.sync_api import expect

    with _page(browser, launched_app[0], locale) as page:
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


@pytest.mark.browser
def test_switching_the_language_in_gradios_settings_renames_every_tab_and_rewrites_the_servers_texts(
    browser, launched_app
):
    """gradio itself renames only the tabs it has shown and knows nothing of what the server wrote: the page's
    script renames the others, and asks the server to write its texts again in the new language."""
    from playwright.sync_api import expect

    with _page(browser, launched_app[0], "en-US") as page:
        expect(page.locator("#header")).to_contain_text("Model:")
        page.get_by_role("button", name="Settings").click()
        language = page.get_by_label("Language")
        language.click()
        language.fill("한국어")
        language.press("Enter")
        expect(page.locator("html")).to_have_attribute("lang", "ko")
        page.locator("[role=dialog] button").first.click()  # closed
        expect(page.locator("#header")).to_contain_text("모델:")  # written by the server again
        expect(page.get_by_role("tab", name="직접 학습해 보기")).to_be_visible()
        tabs = page.get_by_role("tab").all_inner_texts()  # the top level, then the open group's own tabs
        assert tabs[: len(KOREAN_TABS)] == KOREAN_TABS and "Canny 엣지" in tabs[len(KOREAN_TABS) :]


@pytest.mark.browser
def test_the_live_and_map_editor_notes_reach_a_korean_page_in_korean(browser, launched_app):
    """What the server writes beside a widget at run time: the map editor's note (Detect with no picture) and the
    note Live shows while a condition has no picture yet."""
    from playwright.sync_api import expect

    from controlnet_demo.ui.live import WAITING

    with _page(browser, launched_app[0], "ko-KR") as page:
        page.get_by_text(translate("Edit the map the ControlNet reads", "ko")).first.click()
        page.get_by_role("button", name=translate("Detect the map to edit it", "ko")).first.click()
        expect(page.locator("#canny-map-note")).to_contain_text("편집할 맵이 없습니다")
        page.get_by_role("tab", name=translate("Scribble", "ko")).click()
        page.locator("#live-switch input[type=checkbox]").check()
        waiting = translate(WAITING, "ko").split("**")[1]  # the bold word, as the page shows it
        assert waiting != "Live"
        expect(page.locator("#control-check").filter(visible=True)).to_contain_text(waiting)


def test_the_control_check_and_the_compare_captions_read_in_the_pages_language():
    from controlnet_demo.conditions.check import ControlCheck
    from controlnet_demo.ui.compare import caption
    from controlnet_demo.ui.panels import check_text

    warning = message("The control strength is low ({strength}); raise it towards 1.", strength="0.2")
    low = ControlCheck("canny", "edge F1, 2 px", 0.1, 0.3, warning)
    text = check_text([low], "ko")
    assert text.startswith("**제어 확인**") and "**1. canny: 맵을 따르지 않음** (엣지 F1, 2 px 0.10 < 0.3)" in text
    assert "제어 강도가 낮습니다(0.2)" in text
    assert check_text([low]) == (
        "**Control check** (the condition detected again on the result)\n- ⚠️ **1. canny: does not follow its map** "
        "(edge F1, 2 px 0.10 < 0.3). The control strength is low (0.2); raise it towards 1."
    )  # English as before
    assert low.as_dict()["warning"] == "The control strength is low (0.2); raise it towards 1."  # metadata: English
    unchecked = ControlCheck("pose", "skeleton overlap", None, 0.3, message("not checked: no {detector} weights here",
                                                                             detector="OpenPose"))  # fmt: skip
    assert check_text([unchecked], "zh-CN").endswith("- 1. pose：未检查：这里没有 OpenPose 权重")
    assert [translate(caption(s), "zh-CN") for s in (None, 0.0, 1.5)] == ["你的设置", "关闭 ControlNet", "强度 1.5"]
