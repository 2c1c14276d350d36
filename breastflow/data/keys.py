"""Keys of the item dicts every breastflow torch dataset yields (one vocabulary for all GAN families).

Shapes are per item (a loader adds the batch dimension ``B`` in front):

* ``IMAGE``: ``(C, H, W)`` float32 in ``[-1, 1]``, the generator's input
  (pre-contrast; a vendor-A slice; a patch; a mammogram at the current resolution).
* ``TARGET``: ``(C', H, W)`` float32 in ``[-1, 1]``, the paired target (post-contrast
  phase(s)); absent for unpaired/unconditional families.
* ``MASK``: ``(1, H, W)`` uint8 lesion mask (0 where there is no annotation).
* ``LABEL``: ``int64`` class label (lesion class, vendor domain ...).
* ``TARGET_LABEL``: ``int64`` class label of ``TARGET`` where it differs from
  ``IMAGE``'s (``vendor_domains``: the target's domain).
* ``KEY``: PHI-free string naming the sample (``<study>/<series>/z<k>``; an item
  spanning several series of a study, e.g. ``paired_phases``: ``<study>/z<k>``).
"""

from __future__ import annotations

from typing import Final

IMAGE: Final = "image"
TARGET: Final = "target"
MASK: Final = "mask"
LABEL: Final = "label"
TARGET_LABEL: Final = "target_label"
KEY: Final = "key"
