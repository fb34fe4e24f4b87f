"""The fast mode compiled ahead of time ("aoti"), for Hugging Face ZeroGPU, where torch.compile is not supported
and ahead-of-time compilation is: the U-Net's and each ControlNet's forward are captured in a real request
(`spaces.aoti_capture`), exported (`torch.export`) and compiled by AOTInductor (`spaces.aoti_compile`), one graph
per module and input shapes (so one per resolution: `CONTROLNET_DEMO_AOT_SIZES` lists them), at start-up.

A call whose shapes have no graph (another resolution, more images, no ControlNet in its window) or that runs a
LoRA takes the exact path, so every request still works. `spaces.aoti_apply` is not used: it empties the module's
weights, and the paper's exact path must stay available. The graphs are plain picklable objects, keyed by names,
so a ZeroGPU worker can compile them and hand them to the process that serves (`install`).
"""

from __future__ import annotations

import torch

from .controlnet import controlnet_forward, unet_forward

UNET = "unet"


class Residuals(torch.nn.Module):
    """`controlnet_forward` as a module of its own: what is captured and exported for a ControlNet."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, t, text, hint):
        return tuple(controlnet_forward(self.net, x, t, text, hint))


def _shapes(*tensors) -> tuple:
    return tuple((tuple(x.shape), str(x.dtype)) for x in tensors)


def _detached(value):
    """A captured argument as a plain tensor (the request ran under inference mode), lists and dicts walked."""
    if torch.is_tensor(value):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_detached(v) for v in value)
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    return value


class AotForwards:
    """The engine's U-Net and ControlNet calls in the "aoti" mode: a compiled graph where one fits, else eager."""

    def __init__(self):
        self.graphs: dict[tuple, object] = {}  # (module name, input shapes) -> compiled callable
        self._names: dict[int, str] = {}  # id(module) -> name, in this process
        self._residuals: dict[int, Residuals] = {}

    def name(self, module, name: str) -> None:
        self._names[id(module)] = name

    def residuals(self, net) -> Residuals:
        if id(net) not in self._residuals:
            self._residuals[id(net)] = Residuals(net)
        return self._residuals[id(net)]

    def unet(self, unet, x, t, text, down, mid):
        graph = self.graphs.get((self._names.get(id(unet)), _shapes(x, text, *(down or ()))))
        if graph is None:
            return unet_forward(unet, x, t, text, down, mid)
        return graph(
            x,
            t,
            encoder_hidden_states=text,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
            return_dict=False,
        )[0]

    def controlnet(self, net, x, t, text, hint):
        graph = self.graphs.get((self._names.get(id(net)), _shapes(x, text, hint)))
        return list((graph or self.residuals(net))(x, t, text, hint))

    def compile(self, engine, requests: list, capture, compile_) -> dict:
        """Graphs for the U-Net and each named ControlNet, captured in `requests` ((condition, a Request with that
        condition's unit over the whole window), one per condition and size: the U-Net in the first of each size);
        `capture`/`compile_` are spaces.aoti_capture and spaces.aoti_compile. Returns them (as `install` takes
        them); nothing is installed here."""
        graphs, sizes = {}, set()
        targets = []
        for condition, request in requests:
            if (request.width, request.height) not in sizes:
                sizes.add((request.width, request.height))
                targets.append((UNET, engine.base.unet, request))
            net = engine.controlnets[condition]
            self.name(net, condition)
            targets.append((condition, self.residuals(net), request))
        self.name(engine.base.unet, UNET)
        for name, module, request in targets:
            with capture(module) as call:
                engine.generate(request)
            args, kwargs = _detached(call.args), _detached(call.kwargs)
            exported = torch.export.export(module, args=args, kwargs=kwargs)
            if name == UNET:
                inputs = (args[0], kwargs["encoder_hidden_states"], *kwargs["down_block_additional_residuals"])
            else:
                inputs = (args[0], args[2], args[3])
            graphs[(name, _shapes(*inputs))] = compile_(exported)
        return graphs

    def install(self, engine, graphs: dict) -> None:
        """Use `graphs` (from `compile`, maybe in another process) for this engine's modules."""
        self.name(engine.base.unet, UNET)
        for name, _ in graphs:
            if name != UNET:
                self.name(engine.controlnets[name], name)
        self.graphs.update(graphs)
