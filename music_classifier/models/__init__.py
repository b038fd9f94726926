"""Genre classifiers: datasets as SQL views, training, the model registry, evaluation, prediction.

Data flows one way: feature views -> ``dataset_<name>`` views (:mod:`.datasets`) -> frames read by
feature *name* (:mod:`.load_data`) -> scikit-learn Pipelines (:mod:`.pipelines`, :mod:`.grids`)
-> training with a grouped held-out split (:mod:`.splits`, :mod:`.train`) -> the registry
(:mod:`.registry`: skops files checked by sha256 and loaded with an explicit trusted-types list)
-> :mod:`.evaluate`, :mod:`.compare`, :mod:`.predict`. Every metric comes from
:func:`.metrics.classification_metrics`, always called as ``(y_true, y_pred)``.

Nothing here imports scikit-learn at module level where the CLI could import it at start-up.
"""
