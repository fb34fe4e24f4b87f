"""The "Train one yourself" tab through the launched app (its endpoint `/train`, undocumented: not an MCP tool): a
short run streams to its end, a run whose page went away stops, and the tab says so where training is off."""

from __future__ import annotations

from tests.apiclient import wait_for


def _status(outputs) -> str:
    return outputs[0]


def test_a_short_run_streams_its_progress_to_the_end(client):
    job = client.submit("canny", 3, 2, 2, api_name="/train")
    job.result(timeout=600)
    updates = job.outputs()
    assert "Loading the base model and making the ControlNet" in _status(updates[0])
    status, norms, loss, probes, samples = updates[-1]
    assert "<b>Done</b> · step 3 of 3" in status
    assert "largest weight norm 0 before the first step" in status
    assert len(samples) == 4 * 2  # the last probe's four scenes (the default): map and picture each


def test_a_run_whose_page_went_away_stops_and_frees_the_trainer(client):
    job = client.submit("canny", 3000, 64, 1000, api_name="/train")  # hours on a CPU, minutes on a GPU
    assert wait_for(lambda: any("<b>Training</b>" in _status(o) for o in job.outputs()), 300)
    job.cancel()

    def a_new_run_starts() -> bool:
        try:
            client.predict("canny", 1, 1, 1, api_name="/train")
            return True
        except Exception as exc:  # refused in words while the old one still trains
            assert "one runs at a time" in str(exc)
            return False

    assert wait_for(a_new_run_starts, 300)


def test_the_train_endpoint_is_no_mcp_tool_or_documented_endpoint(api):
    assert "/train" not in api["named_endpoints"] and "/train_stop" not in api["named_endpoints"]


def test_training_is_on_locally_off_on_public_hosting_and_the_tab_then_says_how_to_turn_it_on(tmp_path):
    from controlnet_demo.service import ControlNetService
    from controlnet_demo.settings import Settings
    from controlnet_demo.ui import build
    from controlnet_demo.ui.i18n import english

    assert Settings.from_env({}).training and not Settings.from_env({"CONTROLNET_DEMO_TRAINING": "0"}).training
    public = Settings.from_env({"SPACE_ID": "someone/space"})
    assert public.public and not public.training
    blocks = build(ControlNetService(Settings(preset="tiny"), output_dir=str(tmp_path)), trainer=None)
    off = [b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "training-off"]
    assert len(off) == 1 and "CONTROLNET_DEMO_TRAINING=1" in english(off[0].value)
    assert "train" not in {d.api_name for d in blocks.fns.values()}
