"""The evaluation layer: loading sets, running registered metrics, caching real features, checkpoints.

:mod:`breastflow.metrics` holds the pure metric functions; this package holds
the orchestration shared by ``breastflow evaluate``, checkpoint selection
(:mod:`breastflow.select`) and the utility stage: set evaluation
(:mod:`.sets`), the metric registry (:mod:`.evaluators`), data-range policy
(:mod:`.data_range`), pairing (:mod:`.pairing`), fairness groups
(:mod:`.groups`), the memorisation check (:mod:`.privacy_check`), the
evaluation report (:mod:`.report`) and one checkpoint -> metrics
(:mod:`.checkpoint`).
"""
