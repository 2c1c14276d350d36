"""The read side of the store: everything that reads images, boxes and masks back for training or evaluation.

Modules:

* :mod:`~breastflow.data.selection`: the selection syntax
  (``store:///path?series=&split=&slices=&scale=``) and :class:`StoreSelection`;
  :mod:`~breastflow.data.selection_loading` reads a selection (or a folder) as an
  :class:`~breastflow.data.image_sets.ImageSet` (:mod:`~breastflow.data.image_sets`).
* :mod:`~breastflow.data.slice_choice`: which axial slices are read
  (:class:`SliceChoice`: ``all``, ``lesion`` plus a margin, ``every`` k-th), one
  rule for selections and datasets.
* :mod:`~breastflow.data.slices`: batched slice and mask reads (boxes come from
  :mod:`breastflow.store.annotation_commit`);
  :mod:`~breastflow.data.intensity`: the per-study intensity unit and normalisation;
  :mod:`~breastflow.data.datasets`: torch datasets over the store and their registry;
  :mod:`~breastflow.data.version`: ``dataset_version``; :mod:`~breastflow.data.split_guard`:
  no test patient in training; :mod:`~breastflow.data.augment`, :mod:`~breastflow.data.keys`.

Enums shared with the rest of breastflow (laterality, view position, lesion
class, curve type) live in :mod:`breastflow.vocabulary`.

Box convention: lesion boxes are **inclusive and 0-based** on the grid of the
series they index (:class:`breastflow.store.annotation_commit.LesionBox`), as
the store writes them, and every module here keeps them so. Code that wants
half-open boxes (``[start, stop)``, e.g. :class:`breastflow.metrics.kinetics.BoundingBox`
or numpy slicing) converts at its edge: ``stop = end + 1``.
"""
