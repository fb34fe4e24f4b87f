"""The "How ControlNet works" text: the method in plain words, next to the controls that expose it."""

HOW_IT_WORKS = r"""
### One block of the network, locked and copied

Stable Diffusion's U-Net is made of blocks $y = \mathcal{F}(x;\Theta)$. ControlNet **locks** each encoder block
(its weights $\Theta$ never change) and trains a **copy** $\Theta_c$ of it that also sees the condition $c$
(edges, pose, depth, a scribble). Two **zero convolutions** $\mathcal{Z}$ (1×1 convolutions whose weight and bias
start at exactly 0) join the copy to the locked model:

$$y_c = \mathcal{F}(x;\Theta) + \mathcal{Z}\big(\mathcal{F}(x + \mathcal{Z}(c;\Theta_{z1});\Theta_c);\Theta_{z2}\big)$$

At the first training step both $\mathcal{Z}$ output 0, so $y_c = y$: the model starts as the untouched
pretrained model and can't be damaged by the new branch. The zero convolution's gradient with respect to its
*own* weight is its input (not zero), so after one optimiser step the weights leave zero and the control
starts to flow in. Training then often shows **sudden convergence**: for thousands of steps nothing seems to
happen, then the model abruptly follows the condition.

### In Stable Diffusion 1.5

The trainable copy covers the **12 encoder blocks and the middle block**. Its **13 outputs** pass through zero
convolutions and are **added** to the U-Net's 12 skip connections and its middle block (at latent sizes 64, 32,
16 and 8 for a 512×512 image). A tiny 4-layer convolutional encoder turns the 512×512 condition image into the
64×64 feature map the copy reads.

### The controls in this app

- **Control strength** multiplies all 13 residuals of a condition. 0 turns it off; above 1 exaggerates it.
- **Start / end** (fractions of the denoising steps): outside this window the ControlNet is not run at all.
  Ending early (e.g. 0.6) fixes the layout in the first steps and leaves the details to the prompt.
- **Control mode**
  - *Balanced*: the residuals go to both classifier-free-guidance branches, as trained.
  - *My prompt is more important*: the residual of connection *i* is scaled by strength·0.825^(12−i) (deep
    connections full, shallow ones weaker), on both branches.
  - *ControlNet is more important*: the same scales, on the **conditional branch only** (the official
    "guess mode"): guidance then pushes *towards* the control, so it works even with an empty prompt.
  - *CFG resolution weighting* (the paper): conditional branch only, connection *i* scaled by 64/h_i, where
    h_i is its latent size: the coarse 8×8 connections ×8, the 64×64 ones ×1.
- **Compose**: several ControlNets each compute their residuals from their own condition; the residuals are
  simply **added** (optionally each multiplied by a region mask). No extra weighting is needed.

Classifier-free guidance itself: $\epsilon = \epsilon_{uc} + \beta(\epsilon_c - \epsilon_{uc})$, with β the
guidance scale.
"""
