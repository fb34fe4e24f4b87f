"""Live drawing's figures: engine time per live frame against the 20-step path (side by side, one process), where a
request's time outside the engine goes, and stroke to image on screen in a real browser.

    python -m benchmarks.live                # the served preset (offline model here), CPU or GPU
    python -m benchmarks.live --browser      # also stroke to screen in Debian chromium (playwright)

Prints one JSON object; docs/performance.md has the figures and the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


def _median(xs) -> float:
    return round(statistics.median(xs), 4)


def engine_side_by_side(service, unit, reps: int) -> dict:
    """The engine's own seconds, the full path and the live speed alternating (same map, prompt and seed)."""
    from controlnet_demo.service import GenerateSpec

    preset = service.preset
    specs = {
        "full": GenerateSpec("a purple square and a red triangle", [unit], seed=1),
        "live": GenerateSpec("a purple square and a red triangle", [unit], seed=1, speed=preset.live_speed),
    }
    prepared = {k: service.prepare(s) for k, s in specs.items()}
    for p in prepared.values():  # warm-up: models, LoRA and first-call costs
        service.engine.generate(p.request)
    times = {k: [] for k in specs}
    for _ in range(reps):
        for k, p in prepared.items():
            times[k].append(service.engine.generate(p.request).seconds)
    full, live = _median(times["full"]), _median(times["live"])
    return dict(
        full_s=full,
        live_s=live,
        live_over_full=round(live / full, 3),
        full=dict(steps=prepared["full"].request.steps, guidance=prepared["full"].request.guidance_scale),
        live=dict(
            speed=preset.live_speed,
            steps=prepared["live"].request.steps,
            guidance=prepared["live"].request.guidance_scale,
            scheduler=prepared["live"].request.scheduler,
        ),
    )


def service_breakdown(service, unit, reps: int) -> dict:
    """Where one request's time goes inside the server process: validation and the map, the engine, the live
    previews (the engine's time with them less without), the control check, the PNG with its parameters; for the
    full path and for a live frame (which has no previews)."""
    from controlnet_demo.service import GenerateSpec

    out = {}
    for name, speed in (("full", "full"), ("live", service.preset.live_speed)):
        parts = {k: [] for k in ("prepare", "engine", "previews", "check", "png")}
        for k in range(reps + 1):
            spec = GenerateSpec("a purple square and a red triangle", [unit], seed=k, speed=speed)
            t0 = time.perf_counter()
            prepared = service.prepare(spec)
            t1 = time.perf_counter()
            result = service.engine.generate(prepared.request)
            t2 = time.perf_counter()
            checks = service.check(prepared, result)
            t3 = time.perf_counter()
            service.files.save_pngs(result, {**prepared.params, "control_check": [c.as_dict() for c in checks]})
            t4 = time.perf_counter()
            with_previews = service.engine.generate(
                prepared.request, on_preview=lambda *_: None, preview_every=service.settings.preview_every
            ).seconds
            if k == 0:
                continue  # warm-up
            parts["prepare"].append(t1 - t0)
            parts["engine"].append(result.seconds)
            parts["previews"].append(max(0.0, with_previews - result.seconds) if name == "full" else 0.0)
            parts["check"].append(t3 - t2)
            parts["png"].append(t4 - t3)
        out[name] = {k: _median(v) for k, v in parts.items()}
    return out


def frame_with_and_without_the_check(service, unit, reps: int) -> dict:
    """A live frame as its caller gets it (`service.live`: map, engine, PNG), with the control check in it (as
    before, and still for /live) and without (the page's frames: checked when the drawing pauses), alternating."""
    from controlnet_demo.service import GenerateSpec

    times = {"checked": [], "unchecked": []}
    for k in range(reps + 1):
        spec = GenerateSpec("a purple square and a red triangle", [unit], seed=k, speed=service.preset.live_speed)
        for name in times:
            started = time.perf_counter()
            service.live(spec, "benchmark", check=name == "checked")
            if k:  # the first round: warm-up
                times[name].append(time.perf_counter() - started)
    checked, unchecked = _median(times["checked"]), _median(times["unchecked"])
    return dict(checked_s=checked, unchecked_s=unchecked, saved_s=round(checked - unchecked, 4))


def api_round_trip(url: str, files: dict, reps: int) -> dict:
    """Through the API (gradio_client: uploads, queue, the event stream): total against the engine's seconds."""
    from gradio_client import Client, handle_file

    from controlnet_demo.service import read_parameters

    client = Client(url, verbose=False)
    calls = {
        "scribble (full path)": lambda: client.predict(
            api_name="/scribble",
            image=None,
            upload=handle_file(files["drawing"]),
            prompt="a purple square and a red triangle",
            preprocessor="sketch",
            seed=1,
            randomize_seed=False,
        )[0][0]["image"],
        "live": lambda: client.predict(
            api_name="/live",
            image=handle_file(files["drawing"]),
            prompt="a purple square and a red triangle",
            condition="scribble",
            preprocessor="sketch",
            seed=1,
        ),
    }
    out = {}
    for name, call in calls.items():
        call()  # warm-up
        totals, engine = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            path = call()
            totals.append(time.perf_counter() - t0)
            engine.append(read_parameters(path)["seconds"])
        total, inside = _median(totals), _median(engine)
        out[name] = dict(total_s=total, engine_s=inside, outside_s=round(total - inside, 4))
    return out


# Installed before each stroke, resolved in the page itself (no polling from outside, which would take CPU from the
# server on the same cores): from the pointer's release to the Results' first image changed and loaded, with the
# page's own requests in the same clock (Resource Timing): the frame's event sent (queue/join), the file fetched.
FRAME_TIMER = """results => {
  const src = () => { const img = results.querySelector("img"); return img ? img.currentSrc || img.src : null; };
  const old = src();
  performance.clearResourceTimings();
  window.__frame = new Promise(resolve => {
    let released = null;
    document.addEventListener("pointerup", () => { released = performance.now(); }, { once: true, capture: true });
    const done = () => {
      const img = results.querySelector("img");
      if (released === null || !img || !img.complete || !img.naturalWidth || src() === old) return;
      observer.disconnect();
      const shown = performance.now();
      const starts = kind => performance.getEntriesByType("resource")
        .filter(e => e.name.includes(kind) && e.startTime >= released).map(e => e.startTime - released);
      resolve({ screen: shown - released, joins: starts("/queue/join"), files: starts("/file="), src: src() });
    };
    const observer = new MutationObserver(() => {
      const img = results.querySelector("img");
      if (img) img.addEventListener("load", done, { once: true });
      done();
    });
    observer.observe(results, { subtree: true, childList: true, attributes: true });
  });
}"""


def browser_stroke_to_screen(url: str, strokes: int) -> dict:
    """In chromium: Live on, then strokes; each timed in the page from the pointer's release to the new result on
    screen, and split by the page's own requests: the page's work until it sends the frame's event (queue/join),
    the server (join until the page asks for the result file) less the engine, and the result's download and
    display."""
    import io
    import shutil

    from PIL import Image
    from playwright.sync_api import sync_playwright

    from tools.browser import CHROMIUM_ARGS, VIEWPORT, block, open_tab, pad_canvas, stroke

    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(600_000)
        page.goto(url)
        panel = open_tab(page, "Scribble")
        panel.get_by_label("Prompt", exact=True).fill("a purple square and a red triangle")
        panel.locator("#live-switch input").check()
        box = pad_canvas(panel, "scribble-pad").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        results = block(panel, "Results").element_handle()
        for k in range(strokes + 1):
            page.evaluate(FRAME_TIMER, results)
            y = cy - 100 + 12 * k
            stroke(page, [(cx - 100, y), (cx + 100, y + 5)])
            frame = page.evaluate("window.__frame")
            if k:  # the first frame pays first-call costs
                with Image.open(io.BytesIO(page.request.get(frame["src"]).body())) as im:  # its own parameters
                    engine = json.loads(im.text["parameters"])["seconds"]
                screen = frame["screen"] / 1000
                file_at = (frame["files"][-1] / 1000) if frame["files"] else screen
                join_at = (frame["joins"][-1] / 1000) if frame["joins"] else 0.0
                rows.append(
                    dict(
                        screen=screen,
                        engine=engine,
                        page=join_at,
                        server=file_at - join_at - engine,
                        download=screen - file_at,
                    )
                )
        browser.close()
    m = {key: _median([r[key] for r in rows]) for key in rows[0]}
    outside = m["screen"] - m["engine"]
    return dict(
        strokes=strokes,
        stroke_to_screen_s=m["screen"],
        engine_s=m["engine"],
        outside_s=round(outside, 4),
        outside_share=round(outside / m["screen"], 3),
        page_until_event_sent_s=m["page"],  # the pad encoding its PNG and the page sending the event
        server_outside_engine_s=m["server"],  # queue, preprocessing, map, check, PNG, postprocessing, the event
        result_download_and_display_s=m["download"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--browser", action="store_true", help="also stroke to screen in chromium")
    parser.add_argument("--strokes", type=int, default=8)
    args = parser.parse_args()

    from PIL import Image

    from controlnet_demo.paths import EXAMPLES_DIR
    from controlnet_demo.service import ControlNetService, UnitSpec
    from controlnet_demo.settings import Settings

    from .appserver import running_app

    drawing = EXAMPLES_DIR / "scribble_house.png"
    service = ControlNetService(Settings.from_env())
    unit = UnitSpec(
        "scribble", np.asarray(Image.open(drawing).convert("RGB")), "sketch", service.preset.detect_resolution
    )
    report = dict(
        preset=service.preset.name,
        device=str(service.store.device),
        engine=engine_side_by_side(service, unit, args.reps),
        server=service_breakdown(service, unit, args.reps),
        frame=frame_with_and_without_the_check(service, unit, args.reps),
    )
    del service
    with running_app() as (_, url, _):
        report["api"] = api_round_trip(url, {"drawing": str(drawing)}, args.reps)
        if args.browser:
            report["browser"] = browser_stroke_to_screen(url, args.strokes)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
