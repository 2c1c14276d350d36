"""Keys of the flat loss dicts ``GanModel.train_step`` returns (STYLE habit 7).

Families use these where the meaning is the same, so the engine, Ray's
dashboard and the run's CSV show one vocabulary.
"""

from __future__ import annotations

from typing import Final

G_ADV: Final = "g_adv"  # generator adversarial term (summed over discriminators)
G_FM: Final = "g_feature_matching"  # discriminator feature matching (pix2pixHD eq. 4)
G_PERCEPTUAL: Final = "g_perceptual"  # VGG perceptual term
G_L1: Final = "g_l1"  # pixel L1 (a loss term in some families; a monitor in pix2pixHD)
G_CYCLE: Final = "g_cycle"  # cycle consistency (CycleGAN)
G_IDENTITY: Final = "g_identity"  # identity term (CycleGAN)
G_TOTAL: Final = "g_total"  # what the generator optimiser minimised
D_REAL: Final = "d_real"  # discriminator term on real samples
D_FAKE: Final = "d_fake"  # discriminator term on generated samples
D_GP: Final = "d_gradient_penalty"  # WGAN-GP penalty
D_TOTAL: Final = "d_total"  # what the discriminator optimiser minimised
LR: Final = "lr"  # generator learning rate at this step
