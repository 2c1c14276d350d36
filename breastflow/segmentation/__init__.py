"""Downstream utility: 3D tumour segmentation in paper 003's four train/test scenarios (sec. 4.3, Table 3).

Modules: :mod:`.cases` (studies with a lesion mask, patient-level split),
:mod:`.volume_ops` and :mod:`.preprocess` (single-breast crop, N4, resampling,
z-score; :func:`~.preprocess.load_case`), :mod:`.plan` (nnU-Net-style DynUNet
plan), :mod:`.scenarios` (Table 3 as data, cross-vendor rows), :mod:`.folds`
(5-fold patient split), :mod:`.experiment` (items per training set and fold),
:mod:`.nnunet_export` (nnU-Net v2 raw layout). Never imports Prefect.
"""
