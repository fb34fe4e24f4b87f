"""The UI in English, Simplified Chinese and Korean.

Widgets carry `t("English text")`: gradio's `I18n` translates them in the browser, by its language or the one picked
in gradio's Settings (the app's footer), at once. What the server writes at run time (the service's messages, a
training run's status) is translated here, for the language the page shows (a cookie the page keeps, else the
browser's Accept-Language). The catalogs (`locales/<locale>.json`) map each English text to its translation;
messages with values are templates, `{name}` where a value goes. The core stays in English: only the UI translates.

A message with values reaches the UI as a `Message` (`errors.py`): its English template, the catalog's key, and its
values, kept apart from where it is raised to where it is shown. Translating one is a dictionary lookup of its
template and of each value that is a text of its own; nothing the server shows is ever matched against the
templates, so no value a client sent can make showing a message slow.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from functools import cache
from pathlib import Path

import gradio as gr
from gradio.i18n import I18nData

from ..errors import Message

LOCALES = ("en", "zh-CN", "ko")
CATALOG_DIR = Path(__file__).parent / "locales"
COOKIE = "controlnet_demo_lang"
# The page keeps the language it shows (gradio sets <html lang>, also when Settings changes it) in a cookie, which
# every request then carries: what the server writes follows the page. The app's own HTML widgets (the drawing pad,
# the pose editor) mark their texts (`marked`); this script puts them in the page's language, and again whenever it
# changes or such a widget appears.
_SCRIPT = """<script>
(() => {
  const TABLE = %s;
  const ENGLISH = {};  // a marked text, English or in any language -> its English
  for (const table of Object.values(TABLE)) {
    for (const [english, text] of Object.entries(table)) ENGLISH[english] = ENGLISH[text] = english;
  }
  // inside another site's frame (a Space's page) only a SameSite=None cookie comes back, and that needs https
  const site = location.protocol === "https:" ? "; SameSite=None; Secure" : "; SameSite=Lax";
  const ATTRS = ["title", "aria-label"];
  let queued = false, shown = null;
  // the widgets' own scripts (the pose editor) write their texts through this, and redraw on the event below
  window.controlnetDemoText = (text) => (TABLE[document.documentElement.lang] || {})[text] || text;
  const apply = () => {
    queued = false;
    const lang = document.documentElement.lang;
    document.cookie = "%s=" + lang + "; path=/" + site;
    const table = TABLE[lang] || {};
    if (shown !== null && shown !== lang) {  // the widgets' scripts redraw, the server writes its texts again
      document.dispatchEvent(new Event("controlnet-demo-language"));
      document.getElementById("relocalize")?.click();
    }
    shown = lang;
    // a tab's name (gradio's Settings renames only the tabs it has shown), a table's header or a leaf in its cells
    // (gr.Examples) whose whole text is a marked text
    const loose = "[role=tab]:not([data-t]), th:not([data-t]), [role=gridcell] div:not([data-t])";
    for (const el of document.querySelectorAll(loose)) {
      const english = el.childElementCount === 0 && ENGLISH[el.textContent.trim()];
      if (english) el.dataset.t = english;
    }
    for (const el of document.querySelectorAll("[data-t]")) {
      const text = table[el.dataset.t] || el.dataset.t;
      if (el.textContent !== text) el.textContent = text;
    }
    for (const attr of ATTRS) {
      for (const el of document.querySelectorAll(`[data-t-${attr}]`)) {
        const key = el.getAttribute(`data-t-${attr}`);
        el.setAttribute(attr, table[key] || key);
      }
    }
  };
  const soon = () => { if (!queued) { queued = true; requestAnimationFrame(apply); } };
  new MutationObserver(soon).observe(document.documentElement, {attributes: true, attributeFilter: ["lang"]});
  const watch = () => new MutationObserver(soon).observe(document.body, {childList: true, subtree: true});
  document.body ? watch() : addEventListener("DOMContentLoaded", watch);
  soon();
})();
</script>"""
_MARKS = re.compile(r'data-t(?:-title|-aria-label)?="([^"]+)"')
_SCRIPTED = re.compile(r'\b(?:tr|T)\("((?:[^"\\]|\\.)*)"')  # a widget script's texts: tr("...") or T("...")

_texts: dict[str, str] = {}  # key -> English, every text the UI has put on a widget
_marked: set[str] = set()  # the English texts marked in the app's own HTML widgets
_documents: dict[str, dict[str, str]] = {}  # key -> locale -> a whole document's translation (its own file)


class Text(I18nData):
    """A translatable widget text that also knows its English (for the server's own use of a label)."""

    def __init__(self, english: str):
        super().__init__(key_of(english))
        self.__dict__["english"] = english  # I18nData answers unknown attributes itself


def key_of(english: str) -> str:
    # svelte-i18n reads dots in a key as nesting: a digest is a flat key
    return "t" + hashlib.sha1(english.encode()).hexdigest()[:12]


def t(english: str) -> Text:
    """`english` as a widget text translated in the browser."""
    _texts[key_of(english)] = english
    return Text(english)


def t_document(path: Path) -> Text:
    """A Markdown document as a widget text; its translations are the files beside it, `name.<locale>.md`."""
    text = t(path.read_text(encoding="utf-8"))
    _documents[text.key] = {
        locale: translated.read_text(encoding="utf-8")
        for locale in LOCALES[1:]
        if (translated := path.with_name(f"{path.stem}.{locale}{path.suffix}")).is_file()
    }
    return text


def marked(html: str) -> str:
    """An HTML widget's markup whose texts the page translates: an element with `data-t="English"` shows its
    translation as its text, `data-t-title` / `data-t-aria-label` set those attributes. The texts are registered
    like every widget text (the catalogs must have them)."""
    mark(*_MARKS.findall(html))
    return html


def mark(*texts: str) -> list[str]:
    """Texts the page's script translates where they stand: in an element marked with them (`marked`), in a
    widget's script (`scripted`), or as the whole text of a table's header or cell (a gr.Examples' headers and
    choices)."""
    for text in texts:
        t(text)
        _marked.add(text)
    return list(texts)


def t_marked(english: str) -> Text:
    """`t`, and also translated by the page's script, for a text gradio's page leaves in the old language after a
    switch (a tab's name: gradio renames only the tabs it has shown)."""
    mark(english)
    return t(english)


def scripted(source: str) -> str:
    """A widget's script whose texts (`tr("English", values)`, `T("English")`) the page translates; registered
    like `marked` texts."""
    mark(*_SCRIPTED.findall(source))
    return source


def head() -> str:
    """What the page's <head> gets: the script above, with the marked texts' translations."""
    table = {
        locale: {text: catalog(locale)[text] for text in _marked if text in catalog(locale)} for locale in LOCALES[1:]
    }
    return _SCRIPT % (json.dumps(table, ensure_ascii=False).replace("</", "<\\/"), COOKIE)


def english(text) -> str:
    """A widget text as the server writes it (English); also a text a component keeps in gradio's string form."""
    if isinstance(text, Text):
        return text.english
    text = str(text)
    if text.startswith("__i18n__"):
        return _texts.get(json.loads(text[len("__i18n__") :]).get("key"), text)
    return text


def in_words(api_info: dict) -> dict:
    """gradio's API description (the API page, gradio_client's view_api, the MCP tools) with every parameter's and
    output's label in English words: gradio writes a translated label there as its key."""

    def label(value):
        if isinstance(value, I18nData):
            return _texts.get(value.key, value.key)
        return english(value) if isinstance(value, str) else value

    for endpoints in (api_info.get("named_endpoints", {}), api_info.get("unnamed_endpoints", {})):
        for endpoint in endpoints.values():
            for item in (*endpoint.get("parameters", ()), *endpoint.get("returns", ())):
                if "label" in item:
                    item["label"] = label(item["label"])
    return api_info


@cache
def catalog(locale: str) -> dict[str, str]:
    """English text -> translation, for a locale other than English."""
    path = CATALOG_DIR / f"{locale}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def i18n() -> gr.I18n:
    """Every text the built UI registered, per locale (a missing translation falls back to the English)."""
    return gr.I18n(**{locale: translations(locale) for locale in LOCALES})


def translations(locale: str) -> dict[str, str]:
    """key -> text in `locale`, for every registered text that has one (all of them in English)."""
    if locale == "en":
        return dict(_texts)
    found = {key: catalog(locale)[text] for key, text in _texts.items() if text in catalog(locale)}
    found.update({key: docs[locale] for key, docs in _documents.items() if locale in docs})
    return found


def registered() -> dict[str, str]:
    """key -> English of every text the UI has put on a widget so far."""
    return dict(_texts)


def locale_of(request: gr.Request | None) -> str:
    """The language of the page that sent `request`: its cookie, else the best of its Accept-Language."""
    if request is None:
        return "en"
    cookies = getattr(request, "cookies", None) or {}
    kept = _match(cookies.get(COOKIE, ""))
    if kept:
        return kept
    headers = getattr(request, "headers", None) or {}
    ranked = []
    for part in (headers.get("accept-language") or "").split(","):
        tag, *params = (piece.strip() for piece in part.split(";"))
        q = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            if float(q) > 0:  # q=0: "not this one"
                ranked.append((float(q), tag))
        except ValueError:
            continue
    for _, tag in sorted(ranked, key=lambda r: -r[0]):
        if found := _match(tag):
            return found
    return "en"


def _match(tag: str) -> str | None:
    tag = tag.strip()
    if not tag:
        return None
    subtags = tag.lower().replace("_", "-").split("-")
    if subtags[0] == "zh":  # Simplified Chinese for zh, zh-CN, zh-Hans, zh-SG; not the traditional script
        return None if {"hant", "tw", "hk", "mo"} & set(subtags[1:]) else "zh-CN"
    return subtags[0] if subtags[0] in LOCALES else None


def say(template: str, locale: str, **values) -> str:
    """A text the UI writes at run time, from its English `template` (the catalog's key) and its values."""
    return fill(catalog(locale).get(template, template) if locale != "en" else template, values)


# Korean particles take one form after a final consonant and another after a vowel ("강도는", "맵은"): a catalog
# writes both ("{name}은(는)"), and the form that fits the value that comes before it is kept
PARTICLES = {"은(는)": ("은", "는"), "이(가)": ("이", "가"), "을(를)": ("을", "를"), "과(와)": ("과", "와")}
TO = "(으)로"  # "으로" after a final consonant other than ㄹ, "로" after a vowel or ㄹ
_CLOSING = "'\"’”)]*`» "  # what may stand between a word and its particle: quotes, brackets, bold


def _final(before: str):
    """The final consonant of the last sound in `before`: "ㄹ", True (another), False (none) or None (not known:
    a Latin letter is read in English, or Korean, or letter by letter)."""
    for ch in reversed(before):
        if ch in _CLOSING:
            continue
        if "가" <= ch <= "힣":
            final = (ord(ch) - 0xAC00) % 28
            return "ㄹ" if final == 8 else final != 0
        if "0" <= ch <= "9":  # 일 이 삼 사 오 육 칠 팔 구 영
            return "ㄹ" if ch in "178" else ch in "036"
        return None
    return None


def _particle(marker: str, before: str) -> str:
    final = _final(before)
    if final is None:
        return marker  # both forms, as the catalog wrote them
    if marker == TO:
        return "으로" if final is True else "로"
    return PARTICLES[marker][0 if final else 1]


def fill(template: str, values: dict) -> str:
    """`template.format(**values)`, each Korean particle the template writes in both forms put in the one that fits
    what comes before it. Only the template (a catalog's text) is searched for them; a value is put in as it is."""
    out: list[str] = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        while literal:
            found = [(at, m) for m in (*PARTICLES, TO) if (at := literal.find(m)) >= 0]
            if not found:
                out.append(literal)
                break
            at, marker = min(found)
            out.append(literal[:at])
            out.append(_particle(marker, "".join(out[-2:])))  # the value or text just before it
            literal = literal[at + len(marker) :]
        if field is not None:
            value = values[field]
            value = repr(value) if conversion == "r" else str(value) if conversion == "s" else value
            out.append(format(value, spec or ""))
    return "".join(out)


def translate(text: Message | str, locale: str) -> str:
    """`text` in `locale`. A `Message`: the catalog's translation of its template (the English one when it has
    none) with its values put back, each translated the same way (a `Message` of its own: "Condition 2: start"; a
    text the catalog has whole: "prompt"; anything else, a client's value, as it is). A plain text: the catalog's
    translation of it whole, else the English as it is. Only dictionary lookups: never a match against the
    templates."""
    if isinstance(text, Message):
        template = text.template
        if isinstance(template, Message):  # a message wrapped once more (`message(a_message)`): the inner one
            return translate(template, locale)
        if locale != "en":
            template = catalog(locale).get(template, template)
        if not text.values:
            return template
        values = {name: _value(value, locale) for name, value in text.values.items()}
        try:
            return fill(template, values)
        except (KeyError, IndexError, ValueError):  # a translation that lost a value: the English, not a crash
            return text.template.format(**values)
    if locale == "en" or not isinstance(text, str) or not text:
        return text
    return catalog(locale).get(text, text)


def _value(value, locale: str):
    """A message's value in `locale`: a message or a text translated (looked up whole), a number as it is."""
    return translate(value, locale) if isinstance(value, (Message, str)) else value


ERROR_MESSAGE = "message_id"  # the attribute of a gr.Error that keeps its `Message` (panels.user_error sets it)


def message_error(text: Message | str, **kwargs) -> gr.Error:
    """A gr.Error for the user in English, that keeps its `Message` for `translated_error`."""
    err = gr.Error(str(text), print_exception=False, **kwargs)
    setattr(err, ERROR_MESSAGE, text)
    return err


def translated_error(error: gr.Error, request: gr.Request | None) -> gr.Error:
    """A gr.Error for the user, in the page's language: by the `Message` it keeps (`message_error`),
    else its text looked up whole."""
    locale = locale_of(request)
    if locale == "en":
        return error
    text = getattr(error, ERROR_MESSAGE, None)
    text = text if isinstance(text, (Message, str)) else str(error.message)
    return gr.Error(translate(text, locale), duration=error.duration, print_exception=False)
