"""The served app through its public API (gradio_client), on the random tiny model ("tiny" preset).

Every endpoint answers with PNGs that carry their own parameters; a fixed seed reproduces pixels; and bad input
of every kind is answered quickly, in words, without a traceback, by gradio or (mostly) by the service, after
which the app goes on serving.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from controlnet_demo.service import read_parameters
from tests.apiclient import (
    ENDPOINTS,
    EXAMPLES,
    NAN,
    PROMPT,
    QUICK,
    Drawing,
    Pad,
    RawSession,
    Upload,
    counting_steps,
    generate,
    pixels,
    raw_data,
    request,
    wait_for,
)
from tests.builders import serve

# -- fixtures and helpers ------------------------------------------------------------------------------------


def _raw_error(url: str, api: dict, endpoint: str, values: dict) -> str:
    """POST the request as raw JSON (gradio_client refuses to encode NaN) and return the error event's message."""
    with httpx.Client(base_url=f"{url}/gradio_api", timeout=30) as http:
        body = json.dumps({"data": raw_data(http, api, endpoint, values)})  # NaN goes as NaN, which the server reads
        event = http.post(f"/call{endpoint}", content=body, headers={"content-type": "application/json"})
        stream = http.get(f"/call{endpoint}/{event.raise_for_status().json()['event_id']}").text
    assert stream.startswith("event: error"), stream[:300]
    return json.loads(stream.split("data:", 1)[1])["error"]


# -- 1. every endpoint works ---------------------------------------------------------------------------------

# endpoint: (conditions, output (width, height)) at the request's resolution, where the examples' pictures make it
# other than one condition at 64 x 64 (`expected`)
EXPECTED = {
    "/canny": (["canny"], (64, 64)),
    "/pose": (["pose"], (64, 64)),
    "/depth": (["depth"], (128, 64)),  # 741x500 at 128: the aspect kept, sides rounded to multiples of 64
    "/scribble": (["scribble"], (64, 64)),
    "/compose": (["canny", "scribble"], (64, 64)),
}


@pytest.mark.parametrize(  # the fast subset: one tab and the composition
    "endpoint", [e if e in ("/canny", "/compose") else pytest.param(e, marks=pytest.mark.slow) for e in ENDPOINTS]
)
def test_every_endpoint_returns_images_maps_and_parameters(client, files, endpoint):
    conditions, size = EXPECTED.get(endpoint, ([endpoint.strip("/")], (64, 64)))
    resolution = max(size)
    out = generate(client, endpoint, files, num_images=2, seed=21, resolution=resolution)

    assert out.seed == out.params["seed"] == 21
    assert out.params["seeds"] == [21, 22]
    assert (out.params["width"], out.params["height"]) == size
    assert out.params["prompt"] == PROMPT and out.params["num_images"] == 2
    assert [u["condition"] for u in out.params["units"]] == conditions
    if endpoint == "/compose":
        assert [u["mask"] for u in out.params["units"]] == [True, False]
        assert [u["preprocessor"] for u in out.params["units"]] == ["canny", "sketch"]

    assert len(out.images) == 2
    for k, path in enumerate(out.images):
        with Image.open(path) as im:
            assert (im.format, im.size) == ("PNG", size)
        stored = read_parameters(path)  # each PNG carries its own seed and the request
        assert stored["seed"] == 21 + k and stored["num_images"] == 1 and stored["batch_seed"] == 21
        assert stored["prompt"] == PROMPT
        assert [u["condition"] for u in stored["units"]] == conditions
    assert not np.array_equal(pixels(out.images[0]), pixels(out.images[1]))  # two seeds, two pictures

    # the "what each ControlNet added" plot: every connection of every condition (7 in the tiny U-Net, 13 in
    # SD1.5), all non-zero (the nets ran)
    rows = out.residuals["data"]
    assert len(rows) == 7 * len(conditions) and [r[0] for r in rows[:7]] == [f"{i:02d} skip" for i in range(6)] + [
        "06 middle"
    ]
    assert all(row[1] > 0 for row in rows)

    assert len(out.maps) == len(conditions)
    for path in out.maps:
        with Image.open(path) as im:
            assert im.size == size
        assert pixels(path).std() > 0  # a real map, not a blank


def test_a_16_bit_depth_map_keeps_its_range(client, files):
    """The upload reaches the service untouched: gradio's RGB conversion would clip it to white."""
    out = generate(client, "/depth", files, image=Upload("depth16.png"))
    row = pixels(out.maps[0])[32, :, 0].astype(int)
    assert row[0] < 16 and row[-1] > 239, row
    assert np.all(np.diff(row) >= 0) and len(set(row)) > 32, row


# -- 2. reproducibility ----------------------------------------------------------------------------------------


def test_a_fixed_seed_gives_the_same_pixels(client, files):
    first, second = (generate(client, "/canny", files, seed=7, randomize_seed=False) for _ in range(2))
    assert first.seed == second.seed == 7
    assert np.array_equal(pixels(first.images[0]), pixels(second.images[0]))


@pytest.mark.slow
def test_a_random_seed_differs_and_is_reported(client, files):
    first, second = (generate(client, "/canny", files, seed=7, randomize_seed=True) for _ in range(2))
    assert first.seed != second.seed
    for out in (first, second):
        assert out.seed == out.params["seed"] == read_parameters(out.images[0])["seed"]


# -- 3. bad input ----------------------------------------------------------------------------------------------

# (id, endpoint, overrides, words the message must contain). The comment says who refuses it: "service" is
# service/specs.py: prepare / load_rgb / the preprocessors; "gradio" is the component's own check (Dropdown or Radio choices).
# The sliders' range checks are gradio's too, but re-worded by ui._refuse_number to name the slider.
POSE_SHORT = '{"people": [{"pose_keypoints_2d": [1, 2, 1]}], "canvas_width": 512, "canvas_height": 512}'
POSE_NAN = '{"people": [{"pose_keypoints_2d": [NaN' + ", 0" * 53 + ']}], "canvas_width": 512, "canvas_height": 512}'
POSE_FAR = (
    '{"people": [{"pose_keypoints_2d": [1e9, 5, 1' + ", 0" * 51 + ']}], "canvas_width": 512, "canvas_height": 512}'
)
BAD = [
    ("no-image", "/canny", {"image": None}, ["no canny edges image", "upload"]),  # service
    ("no-drawing", "/scribble", {"image": None}, ["no scribble image", "draw"]),  # service
    ("untouched-sketchpad", "/scribble", {"image": Drawing("blank")}, ["scribble is empty", "draw"]),  # service
    ("blank-pad", "/scribble", {"image": None, "pad": Pad("canvas.png")}, ["scribble is empty", "draw"]),  # service
    ("pad-not-base64", "/scribble", {"image": None, "pad": "data:image/png;base64,@@"}, ["not valid base64"]),
    ("pad-not-image", "/scribble", {"image": None, "pad": "data:text/plain;base64,aGk="}, ["data:image/png;base64"]),
    ("pad-text-as-png", "/scribble", {"image": None, "pad": "data:image/png;base64,aGk="}, ["not an image", "png"]),
    ("pose-json-short", "/pose", {"image": None, "pose_json": POSE_SHORT}, ["person 1", "18 keypoints"]),  # service
    ("pose-json-nan", "/pose", {"image": None, "pose_json": POSE_NAN}, ["finite", "nan"]),  # service
    ("pose-json-far", "/pose", {"image": None, "pose_json": POSE_FAR}, ["far outside", "512x512"]),  # service
    ("pose-json-broken", "/pose", {"image": None, "pose_json": "{people"}, ["not valid json"]),  # service
    ("image-1x1", "/canny", {"image": Upload("one.png")}, ["1x1", "64"]),  # service
    ("image-4000x10", "/canny", {"image": Upload("wide.png")}, ["4000x10", "64"]),  # service
    ("text-named-png", "/canny", {"image": Upload("text.png")}, ["not an image", "png"]),  # service
    ("text-in-sketchpad", "/scribble", {"image": Drawing("text")}, ["not an image", "png"]),  # service
    ("truncated-jpeg", "/canny", {"image": Upload("truncated.jpg")}, ["truncated"]),  # service
    (
        "decompression-bomb",
        "/canny",
        {"image": Upload("bomb.png")},
        ["decompression bomb", "16.8 megapixels"],
    ),  # service
    ("svg", "/canny", {"image": Upload("drawing.svg")}, ["svg", "export it as png"]),  # service
    ("prompt-100k", "/canny", {"prompt": "x" * 100_000}, ["prompt", "100,000", "1,000"]),  # service
    ("steps-0", "/canny", {"steps": 0}, ["steps", "between 1 and 100", "0"]),  # gradio slider
    ("steps-1000", "/canny", {"steps": 1000}, ["steps", "between 1 and 100", "1000"]),  # gradio slider
    ("steps-nan", "/canny", {"steps": NAN}, ["steps", "1 and 100", "nan"]),  # service (NaN passes the slider)
    ("steps-text", "/canny", {"steps": "abc"}, ["steps", "number", "'abc'"]),  # gradio slider
    ("guidance-nan", "/canny", {"guidance_scale": NAN}, ["guidance scale", "0 and 30", "nan"]),  # service
    ("guidance-negative", "/canny", {"guidance_scale": -1}, ["guidance scale", "0 and 30", "-1"]),  # gradio slider
    ("strength-5", "/canny", {"strength": 5}, ["control strength", "0 and 2", "5"]),  # gradio slider
    ("resolution-100", "/canny", {"resolution": 100}, ["resolution", "multiple of 64", "100"]),  # service
    ("resolution-10000", "/canny", {"resolution": 10000}, ["resolution", "64 and 256", "10000"]),  # gradio slider
    ("seed-negative", "/canny", {"seed": -5}, ["seed", "0 and 2147483647", "-5"]),  # gradio slider
    ("seed-2**40", "/canny", {"seed": 2**40}, ["seed", "0 and 2147483647", str(2**40)]),  # gradio slider
    ("images-0", "/canny", {"num_images": 0}, ["images", "1 and 4", "0"]),  # gradio slider
    ("images-9", "/canny", {"num_images": 9}, ["images", "1 and 4", "9"]),  # gradio slider
    ("start-after-end", "/canny", {"start": 0.6, "end": 0.4}, ["start", "before end"]),  # service
    ("start-equals-end", "/canny", {"start": 0.5, "end": 0.5}, ["start", "before end"]),  # service
    ("canny-low-above-high", "/canny", {"low_threshold": 250, "high_threshold": 50}, ["low threshold", "high"]),
    ("unknown-preprocessor", "/canny", {"preprocessor": "bogus"}, ["bogus", "choices", "canny", "none"]),  # gradio
    (
        "compose-unknown-preprocessor",
        "/compose",
        {"preprocessor_2": "bogus"},
        ["unknown preprocessor", "bogus", "sketch"],
    ),  # service (the compose dropdowns take any name)
    (
        "compose-unknown-condition",
        "/compose",
        {"condition_2": "bogus"},
        ["bogus", "choices", "canny", "pose", "depth", "scribble"],
    ),  # gradio
    ("unknown-scheduler", "/canny", {"scheduler": "bogus"}, ["bogus", "choices", "UniPC"]),  # gradio
    ("unknown-mode", "/canny", {"mode": "bogus"}, ["bogus", "choices", "balanced"]),  # gradio
    (
        "compose-aspect-mismatch",
        "/compose",
        {"condition_2": "depth", "image_2": Upload("motorcycle_depth.png"), "preprocessor_2": "none"},
        ["same aspect ratio", "741x500", "condition 1"],
    ),  # service
    ("compose-no-condition", "/compose", {"enabled_1": False, "enabled_2": False}, ["at least one condition"]),
    ("unknown-speed", "/canny", {"speed": "turbo"}, ["turbo", "choices", "full", "fast"]),  # gradio radio
    ("live-no-image", "/live", {"drawing": None}, ["no scribble image", "draw"]),  # service
    ("live-unknown-condition", "/live", {"condition": "bogus"}, ["bogus", "canny", "scribble"]),  # service
    ("live-strength-5", "/live", {"strength": 5}, ["strength", "0 and 2", "5"]),  # gradio slider
    ("live-blank-drawing", "/live", {"drawing": Drawing("blank")}, ["scribble is empty", "draw"]),  # service
    ("live-text-image", "/live", {"drawing": None, "image": Upload("text.png")}, ["not an image", "png"]),
]


def refusal(client: Client, launched_app, api: dict, files: Path, endpoint: str, overrides: dict) -> str:
    """The message of a request that must fail; NaN goes as raw JSON, which gradio_client cannot send."""
    values = request(endpoint, files, **overrides)
    if any(isinstance(v, float) and not math.isfinite(v) for v in values.values()):
        return _raw_error(launched_app[0], api, endpoint, values)
    with pytest.raises(AppError) as info:
        client.predict(api_name=endpoint, **values)
    return str(info.value)


@pytest.mark.parametrize(("endpoint", "overrides", "words"), [pytest.param(*case[1:], id=case[0]) for case in BAD])
def test_bad_input_is_refused_in_words(client, launched_app, api, files, endpoint, overrides, words):
    with counting_steps(launched_app[1]) as steps:
        message = refusal(client, launched_app, api, files, endpoint, overrides)
    for word in words:
        assert word.lower() in message.lower(), message
    for internal in ("Traceback", 'File "', "Could not preprocess", "Generation failed unexpectedly"):
        assert internal not in message, message
    assert not steps, message  # a refusal costs no generation


def test_nan_is_refused_by_gradio_client_itself(client, files):
    """What a Python caller sees for NaN: the client cannot encode it (the server's answer is tested above)."""
    with pytest.raises(ValueError, match="JSON compliant"):
        client.predict(api_name="/canny", **request("/canny", files, steps=NAN))


def test_a_pad_over_the_inline_limit_is_refused_in_words_and_the_app_serves_on(client, launched_app, api, files):
    """A drawing sent inline that is bigger than Limits.max_inline_bytes (20 MB of image data): refused before any
    decoding, in words (no time bound: sending 28 MB takes what the machine takes)."""
    limit = launched_app[1].settings.limits.max_inline_bytes
    huge = "data:image/png;base64," + "A" * (limit * 4 // 3 + 1024)
    message = refusal(client, launched_app, api, files, "/scribble", {"image": None, "pad": huge})
    assert "limit is 20 MB" in message and "upload it as a file" in message.lower(), message
    assert len(generate(client, "/scribble", files).images) == 1


def test_still_serves_after_bad_input(client, launched_app, api, files):
    for endpoint, overrides in [
        ("/canny", {"image": Upload("text.png")}),
        ("/canny", {"steps": NAN}),
        ("/canny", {"image": Upload("truncated.jpg")}),
        ("/scribble", {"steps": "abc"}),
    ]:
        refusal(client, launched_app, api, files, endpoint, overrides)
    out = generate(client, "/canny", files)
    assert len(out.images) == 1 and out.params["seed"] == QUICK["seed"]


def test_a_few_step_speed_is_one_api_parameter_away_and_brings_its_own_sampler(client, files):
    out = generate(client, "/canny", files, speed="fast", scheduler="Euler a")
    assert (out.params["speed"], out.params["steps"], out.params["scheduler"]) == ("fast", 2, "UniPC")
    assert "control check" in out.check.lower() and "canny" in out.check


def test_live_returns_one_few_step_image_from_a_drawing_with_its_parameters(client, files):
    path = client.predict(api_name="/live", **request("/live", files))
    stored = read_parameters(path)
    assert (stored["speed"], stored["steps"], stored["seed"], stored["num_images"]) == ("fast", 4, 3, 1)
    assert [u["condition"] for u in stored["units"]] == ["scribble"]
    assert [c["condition"] for c in stored["control_check"]] == ["scribble"]
    photo = client.predict(
        api_name="/live", **request("/live", files, drawing=None, image=Upload("scribble_house.png"))
    )
    assert read_parameters(photo)["units"][0]["preprocessor"] == "sketch"  # or an image instead of a drawing
    again = client.predict(api_name="/live", **request("/live", files))
    assert np.array_equal(pixels(path), pixels(again))  # a fixed seed: the same stroke, the same frame
    padded = client.predict(api_name="/live", **request("/live", files, drawing=None, pad=Pad("house.png")))
    assert np.array_equal(pixels(path), pixels(padded))  # the pad's PNG inline: the same drawing, the same frame


# -- 4. a detector without its weights ---------------------------------------------------------------------------


def test_a_detector_without_weights_says_what_to_do(client, launched_app, files):
    from huggingface_hub import try_to_load_from_cache

    demo = launched_app[1]
    if isinstance(try_to_load_from_cache(demo.settings.annotators, "dpt_hybrid-midas-501f0c75.pt"), str):
        pytest.skip("the MiDaS weights are cached here")
    with counting_steps(demo) as steps, pytest.raises(AppError) as info:
        client.predict(
            api_name="/depth", **request("/depth", files, image=Upload("astronaut.jpg"), preprocessor="midas")
        )
    message = str(info.value)
    assert not steps, message
    for words in ("midas", "upload", "'none'", "internet"):
        assert words in message.lower(), message
    assert "Traceback" not in message


# -- 5. the API page -------------------------------------------------------------------------------------------------


def test_the_api_lists_exactly_the_tabs_endpoints_live_detect_and_compare(api):
    assert sorted(api["named_endpoints"]) == sorted([*ENDPOINTS, "/live", "/detect", "/compare"])
    assert not api["unnamed_endpoints"]  # Stop buttons and the compose condition change stay private
    canny = [p["parameter_name"] for p in api["named_endpoints"]["/canny"]["parameters"]]
    assert canny[:3] == ["image", "prompt", "negative_prompt"] and "low_threshold" in canny
    compose = {p["parameter_name"]: p for p in api["named_endpoints"]["/compose"]["parameters"]}
    # an optional unit's image and every mask may be left out
    assert all(compose[f"{name}_{k}"]["parameter_has_default"] for name in ("image", "mask", "pad") for k in (1, 2, 3))
    added_last = [f"{name}_{k}" for name in ("pad", "pose_json", "edited_map", "use_edited_map") for k in (1, 2, 3)]
    assert list(compose)[-13:] == [*added_last, "residual_maps"]  # older positional calls still work
    scribble = [p["parameter_name"] for p in api["named_endpoints"]["/scribble"]["parameters"]]
    assert scribble[0] == "image" and scribble[-5:] == [
        "upload",
        "pad",
        "edited_map",
        "use_edited_map",
        "residual_maps",
    ]
    assert canny[-3:] == ["edited_map", "use_edited_map", "residual_maps"]  # added last: older calls still work
    assert [p["parameter_name"] for p in api["named_endpoints"]["/pose"]["parameters"]][-2:] == [
        "pose_json",
        "residual_maps",
    ]
    assert not any(p["parameter_has_default"] is False for p in api["named_endpoints"]["/canny"]["parameters"][-3:])
    # every input and output named in words (gradio would give a translated label as its key, and an unlabelled
    # output as value_<id>)
    for endpoint in api["named_endpoints"].values():
        for item in (*endpoint["parameters"], *endpoint["returns"]):
            label = item["label"]
            assert isinstance(label, str) and "i18n" not in label and not label.startswith(("value_", "parameter_"))
    assert [r["label"] for r in api["named_endpoints"]["/canny"]["returns"]][:6] == [
        "Results",
        "Control map(s) used",
        "Parameters (also stored in each PNG)",
        "Seed",
        "What each ControlNet added",
        "Control check",
    ]


# -- 6. Stop ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_stop_ends_the_denoising_loop_within_a_few_steps(client, launched_app, files):
    """Cancelling a job (the Stop button) closes the handler, which stops the engine at its next step: the
    engine is free again long before the 100 requested steps could have finished."""
    _, demo = launched_app
    with counting_steps(demo) as steps_seen:
        job = client.submit(api_name="/canny", **request("/canny", files, steps=100, resolution=128, num_images=1))
        assert wait_for(lambda: len(steps_seen) >= 2), "the job never started denoising"
        job.cancel()
        at_cancel = len(steps_seen)
        assert wait_for(lambda: not demo.engine._lock.locked(), 10)
        assert len(steps_seen) - at_cancel <= 3, f"ran {len(steps_seen) - at_cancel} more steps after Stop"
    assert generate(client, "/canny", files).images  # and the next request works


@pytest.mark.slow
def test_live_previews_stream_into_the_results_then_the_final_images_replace_them(client, files):
    """Every 5 steps (the default) the results gallery shows the model's current estimate of the image, captioned
    with its step; the last update is the finished PNGs."""
    job = client.submit(api_name="/canny", **request("/canny", files, steps=10, num_images=2))
    final = job.result(timeout=60)
    galleries = [update[0] for update in job.outputs() if isinstance(update[0], list)]  # not gr.skip()
    previews = [g for g in galleries if any(item.get("caption") for item in g)]
    assert [[item["caption"] for item in g] for g in previews] == [["preview: step 5 of 10"] * 2]
    assert all(pixels(item["image"]).shape == (64, 64, 3) for item in previews[0])
    assert final[0] == galleries[-1] and not any(item.get("caption") for item in final[0])
    assert read_parameters(final[0][0]["image"])["steps"] == 10


# -- 7. rate limit (public hosting option) ---------------------------------------------------------------------


def test_rate_limiter_counts_per_client_within_a_minute():
    from controlnet_demo.errors import UserInputError
    from controlnet_demo.service.guards import RateLimiter

    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    limiter.check("a"), limiter.check("a"), limiter.check("b")  # b has its own budget
    with pytest.raises(UserInputError, match="2 a minute.*Try again in 60 s"):
        limiter.check("a")
    now[0] = 60.5  # the window has moved on
    limiter.check("a")
    RateLimiter(0).check("a")  # 0: off


@pytest.mark.slow
def test_a_rate_limited_server_refuses_the_extra_request_in_words(files):
    from controlnet_demo.settings import Settings

    url, _, blocks = serve(Settings(preset="tiny", rate_limit_per_minute=1))
    try:
        client = Client(url, verbose=False)
        assert generate(client, "/canny", files).images
        with pytest.raises(Exception, match="Too many requests"):
            generate(client, "/canny", files)
        params = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/canny"]["parameters"]
        assert "request" not in [p["parameter_name"] for p in params]  # filled in by gradio, not an API input
    finally:
        blocks.close()


def test_each_handler_sees_its_caller_and_the_page_gets_the_denoising_progress(launched_app, api, files, monkeypatch):
    """gradio fills in the gr.Request and the progress tracker only where they are positional parameters: every
    handler sees its own caller (the rate limit is per host and the live lane per session, not one "unknown" for
    all), and the page gets a progress bar while the engine denoises."""
    url, demo = launched_app
    clients = []
    real_check, real_live = demo.limiter.check, demo.live
    # the rate limit is counted in the handler (the server's own process: on ZeroGPU the generation runs in a fork)
    monkeypatch.setattr(
        demo.limiter, "check", lambda client, cost=1: (clients.append(client), real_check(client, cost))[1]
    )
    monkeypatch.setattr(
        demo, "live", lambda spec, client, **kw: (clients.append(client), real_live(spec, client, **kw))[1]
    )

    with counting_steps(demo, pause_s=0.05):  # long enough for gradio's progress updates to go out
        tab = RawSession(url, api, "/canny", request("/canny", files, steps=8))
        tab.stroke()
        tab.read(lambda: True)
    assert not tab.errors and tab.completed == 1, tab.errors
    progress = [m for m in tab.messages if m.get("msg") == "progress"]
    assert progress and "Denoising" in json.dumps(progress), [m.get("msg") for m in tab.messages]

    live = [RawSession(url, api, "/live", request("/live", files, seed=k)) for k in range(2)]
    for session in live:
        session.stroke()
        session.read(lambda: True)
    assert all(s.completed == 1 and not s.errors for s in live), [s.errors for s in live]
    host = "127.0.0.1"
    assert clients == [host, *(f"{host}/{s.session}" for s in live)], clients


def test_a_drawing_sent_as_the_pads_png_is_the_same_as_the_drawing_uploaded_or_sent_as_a_sketchpad(client, files):
    """/scribble's `pad`: the page's drawing pad sends its PNG inline (a data: URL); it is used where no upload is
    given, and gives the images and map of the same drawing as a sketchpad value (`image`) or an upload."""
    padded = generate(client, "/scribble", files, image=None, pad=Pad("house.png"))
    sketched = generate(client, "/scribble", files)  # image=Drawing("house")
    uploaded = generate(client, "/scribble", files, image=None, upload=Upload("house.png"), pad=Pad("canvas.png"))
    for other in (sketched, uploaded):  # (an upload goes before the pad)
        assert np.array_equal(pixels(padded.images[0]), pixels(other.images[0]))
        assert np.array_equal(pixels(padded.maps[0]), pixels(other.maps[0]))


def test_a_pose_given_as_openpose_json_is_the_same_as_its_skeleton_uploaded(client, files):
    """/pose's `pose_json` (the A1111 OpenPose editor's layout): drawn with controlnet-aux's OpenPose colours, it
    gives the map and images of the same skeleton uploaded as a picture (assets/examples/pose_waving.png)."""
    from controlnet_demo.conditions.openpose_json import pose_json
    from controlnet_demo.service import read_maps
    from tests.conditions.test_openpose_json import PIXELS

    text = pose_json([PIXELS], 512, 512)
    given = generate(client, "/pose", files, image=None, pose_json=text, preprocessor="openpose")  # used as is
    uploaded = generate(client, "/pose", files)  # pose_waving.png, preprocessor none
    assert given.params["units"][0]["preprocessor"] == "none"
    assert given.params["units"][0]["edited_map"] in read_maps(given.images[0])  # kept: --from-png needs no image
    assert np.array_equal(pixels(given.maps[0]), pixels(uploaded.maps[0]))
    assert np.array_equal(pixels(given.images[0]), pixels(uploaded.images[0]))


def test_an_edited_map_is_read_instead_of_detecting_and_kept_in_the_result_png(client, files):
    """/canny's `edited_map` (the map editor's PNG as a data: URL): the map used, not the photo's edges, and the
    result PNG keeps it; with `use_edited_map` false (its default) the photo's edges are detected."""
    from controlnet_demo.service import read_maps

    edited = generate(client, "/canny", files, edited_map=Pad("house.png"), use_edited_map=True, preprocessor="canny")
    unit = edited.params["units"][0]
    assert unit["preprocessor"] == "none" and len(unit["edited_map"]) == 16
    house = pixels(str(files / "house.png"))
    assert np.array_equal(
        pixels(edited.maps[0]),
        pixels(generate(client, "/canny", files, image=Upload("house.png"), preprocessor="none").maps[0]),
    )
    kept = read_maps(edited.images[0])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(kept[unit["edited_map"]])).convert("RGB")), house)
    off = generate(client, "/canny", files, edited_map=Pad("house.png"))
    assert off.params["units"][0]["preprocessor"] == "canny" and "edited_map" not in off.params["units"][0]
    assert read_maps(off.images[0]) == {}


def test_a_compose_pose_unit_takes_openpose_json_as_the_tab_does(client, files):
    """/compose's `pose_json_k`: a pose condition's map drawn from the JSON (kept in the PNG), the same map as
    /pose gives for it; a canny unit ignores it; a malformed one is refused in words."""
    from controlnet_demo.conditions.openpose_json import pose_json
    from controlnet_demo.service import read_maps
    from tests.conditions.test_openpose_json import PIXELS

    text = pose_json([PIXELS], 512, 512)
    composed = generate(client, "/compose", files, condition_2="pose", image_2=None, pose_json_2=text)
    unit = composed.params["units"][1]
    assert (unit["condition"], unit["preprocessor"]) == ("pose", "none")
    assert unit["edited_map"] in read_maps(composed.images[0])
    alone = generate(client, "/pose", files, image=None, pose_json=text)
    assert np.array_equal(pixels(composed.maps[1]), pixels(alone.maps[0]))
    ignored = generate(client, "/compose", files, pose_json_1=text)  # unit 1 is canny: its photo is read
    assert ignored.params["units"][0]["preprocessor"] == "canny"
    with pytest.raises(AppError) as info:
        client.predict(api_name="/compose", **request("/compose", files, condition_2="pose", pose_json_2="{people"))
    assert "not valid json" in str(info.value).lower()


def test_a_compose_unit_reads_its_edited_map_only_while_it_is_in_use(client, files):
    """/compose's `edited_map_k` + `use_edited_map_k`: the unit's ControlNet reads the edited map, not its photo's
    edges, and the PNG keeps it; another unit and a pose unit are untouched; not in use, the photo is read."""
    from controlnet_demo.service import read_maps

    edited = generate(client, "/compose", files, edited_map_1=Pad("house.png"), use_edited_map_1=True)
    unit, other = edited.params["units"]
    assert (unit["condition"], unit["preprocessor"]) == ("canny", "none") and unit["edited_map"] in read_maps(
        edited.images[0]
    )
    assert "edited_map" not in other
    uploaded = generate(client, "/compose", files, image_1=Upload("house.png"), preprocessor_1="none")
    assert np.array_equal(pixels(edited.maps[0]), pixels(uploaded.maps[0]))
    assert np.array_equal(pixels(edited.images[0]), pixels(uploaded.images[0]))
    off = generate(client, "/compose", files, edited_map_1=Pad("house.png"))  # not ticked: the photo's edges
    assert off.params["units"][0]["preprocessor"] == "canny" and read_maps(off.images[0]) == {}
    posed = generate(  # a pose unit reads keypoints, never a painted map
        client,
        "/compose",
        files,
        condition_1="pose",
        image_1=Upload("house.png"),
        preprocessor_1="none",
        edited_map_1=Pad("canvas.png"),
        use_edited_map_1=True,
    )
    assert np.array_equal(pixels(posed.maps[0]), pixels(uploaded.maps[0]))


def test_a_compose_condition_drawn_on_its_pad_is_the_same_as_the_drawing_uploaded(client, files):
    """/compose's `pad_k`: a condition drawn instead of uploaded (the pad's PNG as a data: URL) is used where
    `image_k` is left out, and gives the same picture as the drawing uploaded as the image."""
    drawn = generate(client, "/compose", files, image_2=None, pad_2=Pad("house.png"))
    uploaded = generate(client, "/compose", files, image_2=Upload("house.png"))
    assert [u["condition"] for u in drawn.params["units"]] == ["canny", "scribble"]
    assert np.array_equal(pixels(drawn.images[0]), pixels(uploaded.images[0]))
    assert np.array_equal(pixels(drawn.maps[1]), pixels(uploaded.maps[1]))
    ignored = generate(client, "/compose", files, pad_2=Pad("canvas.png"))  # an upload goes first
    assert np.array_equal(pixels(ignored.images[0]), pixels(generate(client, "/compose", files).images[0]))


def test_detect_returns_the_map_the_generation_used_and_refuses_bad_input_in_words(client, files):
    """/detect's map is the detector's, at the preprocessor's resolution: the one a generation at that size uses."""
    out = generate(client, "/canny", files, resolution=128)  # the tiny preset's preprocessor resolution
    detected = client.predict(api_name="/detect", image=handle_file(str(EXAMPLES / "astronaut.jpg")), condition="canny")
    assert np.array_equal(pixels(detected), pixels(out.maps[0]))
    with pytest.raises(AppError, match="bogus.*canny"):
        client.predict(api_name="/detect", image=handle_file(str(EXAMPLES / "astronaut.jpg")), condition="bogus")


def test_residual_maps_come_back_as_a_grid_and_as_numbers_only_when_asked_for(client, files):
    """`residual_maps` (last, optional): the grid of heatmaps for the last step, the step slider's value and the
    maps as an .npz (condition -> steps x connections x h x w); left out, none of them."""
    *_, picture, step, saved = client.predict(api_name="/canny", **request("/canny", files, residual_maps=True))
    with np.load(saved) as maps:
        [label] = maps.files
        steps = maps[label].shape[0]
        assert label == "1. canny" and maps[label].ndim == 4 and maps[label].max() > 0
    assert steps == QUICK["steps"] and step["value"] == steps  # (the slider's update: its range is the steps)
    assert pixels(picture).shape[1] > pixels(picture).shape[0]
    *_, picture, _, saved = client.predict(api_name="/canny", **request("/canny", files))
    assert picture is None and saved is None
