"""Stage 3, Generate: run a trained generator over whole volumes and store synthetic series.

* :mod:`.synthetic`: the synthetic set as a nested store (write, verify, commit; read back by selections);
* :mod:`.volume`: one volume through the generator, slice by slice, batched;
* :mod:`.config`: the typed request and result;
* :mod:`.run`: checkpoint -> synthetic set (:func:`~breastflow.generate.run.generate_synthetic`);
* :mod:`.nifti`: optional NIfTI export with the real affine.

See docs/generate.md.
"""
