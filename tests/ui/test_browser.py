"""End to end in a real browser: draw a scribble with the mouse, generate, and read what the page shows.

Runs headless Debian chromium (not playwright's own build) against the real app served on the random tiny
model by the `launched_app` fixture. No test writes the README's pictures: `python -m tools.screenshot` does.
"""

from __future__ import annotations

import io
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from controlnet_demo.paths import REPO_ROOT
from tools.browser import UI_TIMEOUT_MS, VIEWPORT, block, draw_shapes, open_tab, pad_canvas, stroke

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("Debian chromium is not on PATH (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")

ROOT = REPO_ROOT
ARTIFACTS = ROOT / "artifacts"
# waits for a generation's end are for the event itself (the parameters arrive with the finished images); this
# bound only turns a hang into a failure, whatever the machine's speed
GENERATE_TIMEOUT_MS = 300_000
PROMPT = "a cosy cottage with a tree and the sun, watercolor"


def draw_house(page, canvas):
    """A house with a door, a tree and a sun, in page coordinates around the canvas's centre.

    Keeps within +-140 px of the centre: the pad's 512 px canvas is shown at its column's width (about 600 px).
    """
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def at(dx, dy):
        return cx + dx, cy + dy

    stroke(page, [at(-70, 0), at(50, 0), at(50, 100), at(-70, 100), at(-70, 0)])  # walls
    stroke(page, [at(-90, 5), at(-10, -80), at(70, 5)])  # roof
    stroke(page, [at(-25, 100), at(-25, 45), at(5, 45), at(5, 100)])  # door
    stroke(page, [at(100, 100), at(100, 30)])  # tree trunk
    stroke(page, [at(100, 30), at(80, 20), at(85, -5), at(100, -15), at(118, -5), at(120, 20), at(100, 30)])  # crown
    sun = [at(-105 + 15 * np.cos(a), -105 + 15 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 13)]
    stroke(page, sun, steps=1)


def wait_loaded(img, timeout_ms: int = GENERATE_TIMEOUT_MS):
    img.wait_for(state="visible", timeout=timeout_ms)
    img.page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle(), timeout=timeout_ms)


def fetch_image(page, img) -> np.ndarray:
    """Download what an <img> shows through the page's own request context, as uint8 RGB."""
    src = img.evaluate("el => el.currentSrc || el.src")
    response = page.request.get(src)
    assert response.ok, f"GET {src} -> {response.status}"
    return np.asarray(Image.open(io.BytesIO(response.body())).convert("RGB"))


def test_scribble_drawn_with_the_mouse_generates(page):
    sync_api.expect(page.locator("#offline-banner")).to_be_visible()
    panel = open_tab(page, "Scribble")

    canvas = pad_canvas(panel, "scribble-pad")
    sync_api.expect(canvas).to_be_visible()
    draw_house(page, canvas)
    sync_api.expect(panel.locator("#scribble-pad").get_by_role("button", name="Undo")).to_be_enabled()

    panel.get_by_label("Prompt", exact=True).fill(PROMPT)
    panel.get_by_role("button", name="Generate", exact=True).click()

    # the parameters arrive with the finished images (a live preview may come before them)
    sync_api.expect(block(panel, "Parameters (also stored in each PNG)")).to_contain_text(
        PROMPT, timeout=GENERATE_TIMEOUT_MS
    )
    result = block(panel, "Results").locator("img").first
    control_map = block(panel, "Control map(s) used").locator("img").first
    wait_loaded(result)
    wait_loaded(control_map)
    assert result.evaluate("el => el.naturalWidth") > 0

    # the whole map is on screen, not a strip of it cut off by the gallery's height
    shown, frame = control_map.bounding_box(), block(panel, "Control map(s) used").bounding_box()
    assert shown["y"] + shown["height"] <= frame["y"] + frame["height"] + 1, (shown, frame)

    lines = fetch_image(page, control_map).max(axis=2)
    white, black = (lines > 200).mean(), (lines < 50).mean()
    assert white > 0.005, f"the control map has no lines ({white:.2%} white)"
    assert black > 0.5, f"the control map is not white-on-black ({black:.2%} black)"

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_scribble.png"), full_page=True)


def test_canny_example_generates(page):
    panel = open_tab(page, "Canny edges")
    examples = panel.locator(".block", has_text="Examples (click one, then Generate)")
    examples.locator("tbody tr, .gallery-item").first.click()
    upload = block(panel, "Canny edges: photo or control map")
    sync_api.expect(upload.locator("img").first).to_be_visible()  # the example's photo is in the input
    sync_api.expect(panel.get_by_label("Prompt", exact=True)).not_to_have_value("")

    panel.get_by_role("button", name="Generate", exact=True).click()
    wait_loaded(block(panel, "Results").locator("img").first)
    wait_loaded(block(panel, "Control map(s) used").locator("img").first)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_canny.png"), full_page=True)


def test_compose_example_generates_with_both_conditions(page):
    panel = open_tab(page, "Compose")
    panel.get_by_role("button", name="Load an example: a pose and a scribble, composed").click()
    sync_api.expect(panel.get_by_label("Prompt", exact=True)).not_to_have_value("")
    panel.get_by_role("button", name="Generate", exact=True).click()
    results = block(panel, "Results")
    results.scroll_into_view_if_needed()  # the gallery's images load lazily: only once they are on screen
    params = block(panel, "Parameters (also stored in each PNG)")  # filled when the finished images arrive
    sync_api.expect(params).to_contain_text('"preprocessor": "none"', timeout=GENERATE_TIMEOUT_MS)  # not reset
    wait_loaded(results.locator("img").first)
    maps = block(panel, "Control map(s) used").locator("img")
    sync_api.expect(maps).to_have_count(2)  # the pose skeleton and the scribble, both used


# -- the trained offline model, when it is installed -----------------------------------------------------------


def test_compare_shows_the_control_off_and_a_strength_sweep_in_one_grid(page):
    """Canny's example, then Compare: the accordion opens on a grid of 4 captioned images from one seed, the
    ControlNet off first; the images differ (the control changes the picture)."""
    panel = open_tab(page, "Canny edges")
    panel.locator(".block", has_text="Examples (click one, then Generate)").locator(
        "tbody tr, .gallery-item"
    ).first.click()
    sync_api.expect(panel.get_by_label("Prompt", exact=True)).not_to_have_value("")
    panel.get_by_role("button", name="Compare: ControlNet off and a strength sweep").click()
    # (.last: the accordion around them is a block with that label inside too)
    sync_api.expect(block(panel, "What each image used").last).to_contain_text("strength", timeout=GENERATE_TIMEOUT_MS)
    grid = block(panel, "Same seed: only the control differs").last
    sync_api.expect(grid.locator("img")).to_have_count(4, timeout=GENERATE_TIMEOUT_MS)
    captions = grid.locator(".caption-label, figcaption")
    sync_api.expect(captions.first).to_contain_text("ControlNet off")
    images = [grid.locator("img").nth(k) for k in range(4)]
    for img in images:
        wait_loaded(img)
    off, strongest = fetch_image(page, images[0]), fetch_image(page, images[3])
    assert not np.array_equal(off, strongest)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_compare.png"), full_page=True)


def test_where_the_residuals_go_draws_the_heatmaps_of_a_result_and_slides_through_its_steps(page):
    """Ask for the maps, generate: the grid of 13 heatmaps for the last step appears with a step slider; sliding
    to step 1 draws that step's grid (without the GPU: the maps are kept in the session)."""
    panel = open_tab(page, "Canny edges")
    panel.locator(".block", has_text="Examples (click one, then Generate)").locator(
        "tbody tr, .gallery-item"
    ).first.click()
    sync_api.expect(panel.get_by_label("Prompt", exact=True)).not_to_have_value("")
    panel.get_by_text("Where the residuals go", exact=True).click()
    panel.get_by_label("Record where each connection's residual goes (at the next Generate)").check()
    panel.get_by_role("button", name="Generate", exact=True).click()
    picture = block(panel, "What each connection added").last.locator("img").first
    wait_loaded(picture)
    last = fetch_image(page, picture)
    assert last.shape[1] > last.shape[0]  # a row of 13 squares: wider than tall
    slider = panel.get_by_label("number input for Denoising step")
    sync_api.expect(slider).not_to_have_value("1")  # on the last step
    slider.fill("1")
    slider.press("Enter")
    # polled until it changes (the result's own redraw, at the last step, may come in between)
    deadline = time.monotonic() + GENERATE_TIMEOUT_MS / 1000
    while np.array_equal(fetch_image(page, picture), last):
        assert time.monotonic() < deadline, "sliding to step 1 did not draw another grid"
        page.wait_for_timeout(100)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_residual_maps.png"), full_page=True)


@pytest.fixture(scope="module")
def offline_url():
    from controlnet_demo.models.presets import OFFLINE, offline_fallback
    from controlnet_demo.settings import Settings
    from tests.builders import serve

    if offline_fallback() is not OFFLINE:
        pytest.skip("the trained offline model is not installed (assets/offline-model)")
    url, _, blocks = serve(Settings(preset="offline"))
    try:
        yield url
    finally:
        blocks.close()


def test_the_offline_model_draws_from_a_scribble_drawn_in_the_browser(browser, offline_url):
    """The trained offline model end to end from strokes drawn with the mouse (how closely it follows them is
    measured by tools/figures.py and the evaluation, not asserted here), and its How-it-works curve."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page.goto(offline_url)
        sync_api.expect(page.locator("#offline-banner")).to_contain_text("synthetic world")
        panel = open_tab(page, "Scribble")
        draw_shapes(page, pad_canvas(panel, "scribble-pad"))
        sync_api.expect(panel.locator("#scribble-pad").get_by_role("button", name="Undo")).to_be_enabled()
        panel.get_by_label("Prompt", exact=True).fill("a red triangle and a blue square on a yellow background")
        panel.get_by_role("button", name="Generate", exact=True).click()
        # the parameters arrive with the finished images (live previews come before them)
        sync_api.expect(block(panel, "Parameters (also stored in each PNG)")).to_contain_text(
            "a red triangle", timeout=GENERATE_TIMEOUT_MS
        )
        result = block(panel, "Results").locator("img").first
        control_map = block(panel, "Control map(s) used").locator("img").first
        wait_loaded(result)
        wait_loaded(control_map)
        image, lines = fetch_image(page, result), fetch_image(page, control_map).max(axis=2)
        assert image.shape[:2] == (64, 64) and image.std() > 5  # a picture, not a flat frame
        left, right = lines[:, :32] > 128, lines[:, 32:] > 128
        assert left.mean() > 0.01 and right.mean() > 0.01  # both drawn shapes reached the map
        how = open_tab(page, "How ControlNet works")
        plot = how.locator("#convergence")
        sync_api.expect(plot).to_be_visible()
        sync_api.expect(how).to_contain_text("largest jump")
    finally:
        context.close()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN", "ko-KR"])
def test_the_grouped_condition_tabs_open_in_each_language_and_say_what_the_model_lacks(browser, offline_url, locale):
    """The kin conditions under one tab (the table's groups): each opens in the page's language; on the embedded
    model, one it serves (line art) shows its help and examples, one it lacks (soft edges) says so."""
    from controlnet_demo.conditions import CONDITIONS
    from controlnet_demo.ui.app import groups
    from controlnet_demo.ui.condition_tab import NOT_SERVED
    from controlnet_demo.ui.i18n import catalog

    def say(text: str) -> str:  # the catalog of the page's language (English: the text itself)
        return catalog({"zh-CN": "zh-CN", "ko-KR": "ko"}[locale])[text] if locale != "en-US" else text

    group = next(g for g, conds in groups().items() if CONDITIONS["lineart"] in conds)
    context = browser.new_context(viewport=VIEWPORT, locale=locale)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page.goto(offline_url)
        page.get_by_role("tab", name=say(group), exact=True).click()
        for name, served in (("lineart", True), ("softedge", False)):
            page.get_by_role("tab", name=say(CONDITIONS[name].label), exact=True).click()
            panel = page.locator("[role=tabpanel]:visible").last
            sync_api.expect(panel).to_contain_text(say(CONDITIONS[name].help))
            note = panel.get_by_text(say(NOT_SERVED))
            sync_api.expect(note).to_have_count(0 if served else 1)
    finally:
        context.close()


def test_the_how_tabs_plot_titles_its_axes_in_the_pages_language(browser, offline_url):
    """gradio's page does not translate a plot's titles: the server writes them for the page's language."""
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page.goto(offline_url)
        page.get_by_role("tab", name="ControlNet 的原理").click()
        titles = page.locator("#convergence svg text")
        # written when the page's load event comes back through the queue: waited for as long as any UI step
        sync_api.expect(titles.filter(has_text="得分")).to_have_count(1, timeout=UI_TIMEOUT_MS)  # y: score
        sync_api.expect(titles.filter(has_text="步")).not_to_have_count(0)  # x: step
        assert titles.filter(has_text="score").count() == 0
    finally:
        context.close()


def test_live_drawing_shows_a_picture_without_generate_and_changes_it_after_the_next_strokes(page):
    """With Live on, a stroke gives a result with no Generate press (a few-step frame), and more strokes change it."""
    panel = open_tab(page, "Scribble")
    panel.get_by_label("Prompt", exact=True).fill(PROMPT)
    panel.locator("#live-switch input").check()
    box = pad_canvas(panel, "scribble-pad").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    stroke(page, [(cx - 80, cy - 60), (cx + 60, cy - 60), (cx + 60, cy + 60)])

    params = block(panel, "Parameters (also stored in each PNG)")
    sync_api.expect(params).to_contain_text('"speed"', timeout=GENERATE_TIMEOUT_MS)  # a frame, no Generate press
    sync_api.expect(params).to_contain_text('"fast"')
    control_map = block(panel, "Control map(s) used").locator("img").first
    wait_loaded(control_map)
    first_map, first_src = fetch_image(page, control_map), control_map.get_attribute("src")
    sync_api.expect(block(panel, "Results").locator("img").first).to_be_visible()
    sync_api.expect(panel.locator("#control-check")).to_contain_text("Control check")

    stroke(page, [(cx - 90, cy + 80), (cx + 90, cy + 80)])  # the next stroke: a new frame replaces the first
    # the locator is looked up anew at each check: the gallery may render a new <img> for the new frame
    sync_api.expect(control_map).not_to_have_attribute("src", first_src, timeout=GENERATE_TIMEOUT_MS)
    wait_loaded(control_map)
    second_map = fetch_image(page, control_map)
    assert (second_map.max(axis=2) > 128).sum() > (first_map.max(axis=2) > 128).sum()  # the new line is in it


def test_compose_live_follows_the_pen_on_a_drawn_condition_beside_an_uploaded_one(page):
    """Compose with Live on: the example's pose stays uploaded, the scribble's upload is cleared and drawn on its
    pad instead; each stroke makes a frame of both conditions, no Generate press."""
    panel = open_tab(page, "Compose")
    panel.get_by_role("button", name="Load an example: a pose and a scribble, composed").click()
    sync_api.expect(panel.get_by_label("Prompt", exact=True)).not_to_have_value("")
    unit = panel.locator(".gr-accordion").filter(has=page.get_by_role("button", name="Condition 2", exact=False))
    unit = unit.filter(has_not=page.get_by_role("button", name="Condition 1")).first
    second = block(unit, "Photo or control map")
    sync_api.expect(second.locator("img")).to_be_visible()
    second.get_by_role("button", name="Remove Image").click()
    sync_api.expect(second.locator("img")).to_have_count(0)
    unit.get_by_role("button", name="…or draw it (used when no image is uploaded above)").click()
    panel.locator("#compose-live-switch input").check()
    draw_house(page, pad_canvas(unit, "compose-pad-2"))

    params = block(panel, "Parameters (also stored in each PNG)")
    sync_api.expect(params).to_contain_text('"speed"', timeout=GENERATE_TIMEOUT_MS)  # a frame, no Generate press
    sync_api.expect(params).to_contain_text('"fast"')
    gallery = block(panel, "Control map(s) used")
    maps = gallery.locator("img")
    sync_api.expect(maps).to_have_count(2)  # the uploaded pose and the drawn scribble
    gallery.scroll_into_view_if_needed()  # the gallery's images load lazily: only once they are on screen
    drawn = maps.nth(1)
    wait_loaded(drawn)
    assert (fetch_image(page, drawn).max(axis=2) > 128).sum() > 100  # the strokes are the scribble's map


# -- editing what the ControlNet reads ---------------------------------------------------------------------------


def test_pose_editor_drags_the_right_wrist_and_generates_from_the_moved_pose(page):
    """Offline there are no OpenPose weights: the editor starts from its standing figure. Dragging the right
    wrist 40 px changes the map the ControlNet reads around the forearm only, Generate uses it, and the saved
    JSON holds the moved wrist."""
    from controlnet_demo.conditions.openpose_json import STANDING, parse_pose, pose_json, render_pose
    from controlnet_demo.images import resize

    panel = open_tab(page, "Human pose")
    editor = panel.locator("#pose-editor")
    panel.get_by_role("button", name="Start from the image's pose").click()
    sync_api.expect(page.get_by_text("starts from a standing figure")).to_be_visible()
    sync_api.expect(editor.locator(".pose-status")).to_contain_text("Generate reads this pose (1 person)")

    canvas = editor.locator("canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    per_px = box["width"] / 512  # the canvas is 512 px of pose, shown at this many screen px each
    wrist = STANDING[4]
    x, y = box["x"] + wrist[0] * box["width"], box["y"] + wrist[1] * box["height"]
    stroke(page, [(x, y), (x + 40 * per_px, y)], steps=5)
    sync_api.expect(editor.locator(".pose-live")).to_contain_text("right wrist")

    with page.expect_download() as download:
        editor.get_by_role("button", name="Save JSON").click()
    saved = download.value.path().read_text()
    _, _, people = parse_pose(saved)
    moved = people[0][4]
    assert moved == pytest.approx((wrist[0] * 512 + 40, wrist[1] * 512), abs=1.5), moved
    assert people[0][3] == pytest.approx((STANDING[3][0] * 512, STANDING[3][1] * 512), abs=0.01)  # elbow stays

    panel.get_by_label("Prompt", exact=True).fill("a dancer on a stage")
    panel.get_by_role("button", name="Generate", exact=True).click()
    sync_api.expect(block(panel, "Parameters (also stored in each PNG)")).to_contain_text(
        "a dancer on a stage", timeout=GENERATE_TIMEOUT_MS
    )
    wait_loaded(block(panel, "Results").locator("img").first)
    maps = block(panel, "Control map(s) used")
    maps.scroll_into_view_if_needed()  # the gallery's images load lazily: only once they are on screen
    control_map = maps.locator("img").first
    wait_loaded(control_map)
    used = fetch_image(page, control_map)
    size = used.shape[1], used.shape[0]  # drawn on the JSON's canvas, resized to the output as every map is
    before = resize(render_pose(pose_json([[(a * 512, b * 512) for a, b in STANDING]], 512, 512)), size)
    np.testing.assert_array_equal(used, resize(render_pose(saved), size))  # the edited pose
    ys, xs = np.nonzero((used != before).any(axis=2))
    sx, sy = used.shape[1] / 512, used.shape[0] / 512
    elbow = STANDING[3][0] * 512, STANDING[3][1] * 512
    assert len(xs) > 50
    assert (min(elbow[0], wrist[0] * 512) - 8) * sx <= xs.min() and xs.max() <= (moved[0] + 8) * sx
    assert (elbow[1] - 8) * sy <= ys.min() and ys.max() <= (wrist[1] * 512 + 8) * sy


def test_canny_map_edited_in_the_page_is_the_map_used(page):
    """Detect canny edges on the example photo, erase a region of the map with the eraser, generate: the map the
    ControlNet read has no edges in that region, and still has them elsewhere."""
    panel = open_tab(page, "Canny edges")
    panel.locator(".block", has_text="Examples (click one, then Generate)").locator(
        "tbody tr, .gallery-item"
    ).first.click()
    sync_api.expect(block(panel, "Canny edges: photo or control map").locator("img").first).to_be_visible()
    panel.get_by_text("Edit the map the ControlNet reads").click()
    panel.get_by_role("button", name="Detect the map to edit it").click()
    sync_api.expect(panel.locator("#canny-map-note")).to_contain_text("Detected with")
    sync_api.expect(panel.locator("#canny-use-map input")).to_be_checked()

    editor = panel.locator("#canny-map-editor")
    editor.get_by_role("button", name="Eraser").click()
    editor.get_by_label("Brush size").fill("40")
    canvas = pad_canvas(panel, "canny-map-editor")
    sync_api.expect(editor.get_by_role("button", name="Undo")).to_be_disabled()  # the detected map: no history
    box = canvas.bounding_box()
    region = (0.1, 0.1, 0.5, 0.5)  # left, top, right, bottom of what is erased, as fractions of the map
    x0, x1 = box["x"] + region[0] * box["width"], box["x"] + region[2] * box["width"]
    for f in np.linspace(region[1], region[3], 12):
        y = box["y"] + f * box["height"]
        stroke(page, [(x0, y), (x1, y)], steps=6)
    sync_api.expect(editor.get_by_role("button", name="Undo")).to_be_enabled()

    panel.get_by_role("button", name="Generate", exact=True).click()
    params = block(panel, "Parameters (also stored in each PNG)")
    sync_api.expect(params).to_contain_text('"edited_map"', timeout=GENERATE_TIMEOUT_MS)
    sync_api.expect(params).to_contain_text('"preprocessor": "none"')
    maps = block(panel, "Control map(s) used")
    maps.scroll_into_view_if_needed()  # the gallery's images load lazily: only once they are on screen
    control_map = maps.locator("img").first
    wait_loaded(control_map)
    used = fetch_image(page, control_map).max(axis=2)
    h, w = used.shape
    inside = used[int(0.15 * h) : int(0.45 * h), int(0.15 * w) : int(0.45 * w)]  # the erased region, less its rim
    assert inside.max() < 64, f"edges left in the erased region: {(inside > 128).mean():.1%}"
    outside = used[int(0.55 * h) :, :]
    assert (outside > 128).mean() > 0.02, "the rest of the map lost its edges too"


def test_compose_units_edit_their_maps_a_pose_as_keypoints_the_others_painted(page):
    """In Compose each unit edits the map its ControlNet reads: a pose unit with the keypoint editor (offline it
    starts from the standing figure), a scribble unit on the map painter in white and black only (depth's greys
    and fill appear when the unit becomes a depth one, its map detected again). Both edits are what the generation reads."""
    panel = open_tab(page, "Compose")
    panel.get_by_role("button", name="Load an example: a pose and a scribble, composed").click()
    sync_api.expect(panel.get_by_label("Prompt", exact=True)).not_to_have_value("")
    sync_api.expect(panel.locator("#compose-1-map-editor")).to_be_hidden()  # a pose is edited as keypoints

    visible = dict(visible=True)
    edit_pose = panel.get_by_text("Edit the pose: drag its joints, or an OpenPose JSON").filter(**visible)
    sync_api.expect(edit_pose).to_have_count(1)  # the example's second unit (scribble) has hidden its own
    start = panel.get_by_role("button", name="Start from the image's pose").filter(**visible)
    for _ in range(3):  # under load a late update of the unit's boxes can render the accordion closed again
        edit_pose.click()
        try:
            start.wait_for(timeout=UI_TIMEOUT_MS)
            break
        except sync_api.TimeoutError:
            continue
    start.click()
    pose = panel.locator("#compose-1-pose-editor")
    sync_api.expect(pose.locator(".pose-status")).to_contain_text("Generate reads this pose (1 person)")

    panel.get_by_text("Edit the map the ControlNet reads").filter(**visible).click()  # unit 2's: a scribble
    painter = panel.locator("#compose-2-map-editor")
    sync_api.expect(painter.locator('button[data-color="#ffffff"]')).to_be_visible()
    sync_api.expect(painter.locator('button[data-color="#808080"]')).to_have_count(1)  # there, but not shown
    sync_api.expect(painter.locator('button[data-color="#808080"]')).to_be_hidden()
    sync_api.expect(painter.get_by_role("button", name="Fill")).to_be_hidden()
    panel.get_by_role("button", name="Detect the map to edit it").filter(**visible).click()
    sync_api.expect(panel.locator("#compose-2-map-note")).to_contain_text("Detected with")
    sync_api.expect(panel.locator("#compose-2-use-map input")).to_be_checked()
    painter.get_by_role("button", name="Eraser").click()
    painter.get_by_label("Brush size").fill("40")
    canvas = pad_canvas(panel, "compose-2-map-editor")
    box = canvas.bounding_box()
    x0, x1 = box["x"] + 0.1 * box["width"], box["x"] + 0.5 * box["width"]
    for f in np.linspace(0.1, 0.5, 12):  # the top-left quarter of the map, erased
        stroke(page, [(x0, box["y"] + f * box["height"]), (x1, box["y"] + f * box["height"])], steps=6)
    sync_api.expect(painter.get_by_role("button", name="Undo")).to_be_enabled()

    panel.get_by_role("button", name="Generate", exact=True).click()
    params = block(panel, "Parameters (also stored in each PNG)")
    sync_api.expect(params).to_contain_text('"edited_map"', timeout=GENERATE_TIMEOUT_MS)
    assert params.inner_text().count('"edited_map"') == 2, "each unit reads its edited map"
    maps = block(panel, "Control map(s) used")
    maps.scroll_into_view_if_needed()  # the gallery's images load lazily: only once they are on screen
    sync_api.expect(maps.locator("img")).to_have_count(2)
    scribble = maps.locator("img").nth(1)
    scribble.scroll_into_view_if_needed()
    wait_loaded(scribble)
    used = fetch_image(page, scribble).max(axis=2)
    h, w = used.shape
    assert used[int(0.15 * h) : int(0.45 * h), int(0.15 * w) : int(0.45 * w)].max() < 64, "lines left where erased"
    assert (used > 128).mean() > 0.005, "the rest of the map lost its lines too"

    panel.get_by_label("Condition", exact=True).nth(1).click()  # unit 2 becomes a depth condition
    page.get_by_role("option", name="Depth", exact=False).first.click()
    sync_api.expect(painter.locator('button[data-color="#808080"]')).to_be_visible()
    sync_api.expect(painter.get_by_role("button", name="Fill")).to_be_visible()
    # a depth map is detected again for it (a scribble's is no depth map): offline, MiDaS has no weights, said so
    sync_api.expect(panel.locator("#compose-2-map-note")).to_contain_text("No map to edit: The midas detector")
