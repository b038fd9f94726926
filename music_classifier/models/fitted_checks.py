"""The arrays of a loaded model, checked before any use.

skops constructs only allow-listed classes (models.registry), but several of them hand their arrays
to compiled code that trusts them: a decision ``Tree`` walks ``nodes[left_child]``, a HistGradientBoosting
``TreePredictor`` walks ``nodes[left]``, a ``KDTree``/``BallTree`` reads ``data[idx_array[i]]``, libsvm
reads ``n_support`` counts of support vectors. None of them bounds-checks, so one out-of-range index in a
model file (with its sha256 updated in the registry) is an out-of-bounds read: a segfault at best. skops
leaves ``sklearn.tree._tree.Tree`` untrusted for this reason.

:func:`check_fitted_model` walks every object of a loaded model and runs the check of its class
(:data:`CHECKS`, one entry for every class in ``models.pipelines``; a class without one is refused).
Each check validates the object's own arrays (dtype, shape, index ranges, finiteness) and the sizes
its direct children must agree on (a forest's trees read as many features as the forest accepts).
Anything wrong is one :class:`~music_classifier.errors.InputError` line naming where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from music_classifier.errors import InputError

TREE_LEAF = -1  # sklearn.tree._tree.TREE_LEAF: the child index of a leaf
SVM_KERNELS = ("linear", "poly", "rbf", "sigmoid")  # libsvm kernels that never index the data by a stored id
NEIGHBOUR_METHODS = ("kd_tree", "ball_tree", "brute")


class ModelArraysError(InputError):
    """A loaded model whose arrays would send compiled code out of bounds (or are otherwise inconsistent)."""


def _refuse(where: str, what: str) -> ModelArraysError:
    return ModelArraysError(f"{where}: {what}")


def _name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _array(obj: Any, attr: str, where: str, *, ndim: int | None = None, shape: tuple[int | None, ...] | None = None,
           kind: str | None = None, finite: bool = False) -> np.ndarray:
    """``obj.attr`` as a numpy array of the expected kind (numpy dtype kinds, e.g. "f", "iu"), rank and shape."""
    value = getattr(obj, attr, None)
    if not isinstance(value, np.ndarray):
        raise _refuse(where, f"{attr} is {type(value).__name__}, not an array")
    if ndim is not None and value.ndim != ndim:
        raise _refuse(where, f"{attr} has {value.ndim} dimensions, expected {ndim}")
    if shape is not None and (len(shape) != value.ndim or any(
            want is not None and got != want for got, want in zip(value.shape, shape, strict=True))):
        expected = tuple("*" if s is None else s for s in shape)
        raise _refuse(where, f"{attr} has shape {value.shape}, expected {expected}")
    if kind is not None and value.dtype.kind not in kind:
        raise _refuse(where, f"{attr} has dtype {value.dtype}")
    if finite and not np.all(np.isfinite(value)):
        raise _refuse(where, f"{attr} holds a value that is not finite")
    return value


def _int(obj: Any, attr: str, where: str, *, low: int = 0, high: float = np.inf) -> int:
    value = getattr(obj, attr, None)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise _refuse(where, f"{attr} is {value!r}, expected an integer in {low}..{high}")
    return int(value)


def _real(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value):
        raise _refuse(where, f"{what} is {value!r}, expected a finite number")
    return float(value)


def _n_features(obj: Any, where: str) -> int:
    return _int(obj, "n_features_in_", where, low=1)


def _classes(obj: Any, where: str, attr: str = "classes_") -> int:
    """The number of classes of a classifier (at least two, one label each)."""
    n = _array(obj, attr, where, ndim=1).size
    if n < 2:
        raise _refuse(where, f"{attr} holds fewer than two classes")
    return n


def _instance(obj: Any, attr: str, where: str, class_name: str) -> Any:
    value = getattr(obj, attr, None)
    if _name(value) != class_name:
        raise _refuse(where, f"{attr} is {_name(value)}, expected {class_name}")
    return value


# ----------------------------------------------------------------------------------------- pipeline, preprocessing


def _check_pipeline(pipe: Any, where: str) -> None:
    steps = getattr(pipe, "steps", None)
    if not isinstance(steps, list) or not steps or not all(
            isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str) for s in steps):
        raise _refuse(where, "steps is not a list of (name, step) pairs")
    # impute and scale keep every column (keep_empty_features=True), so every step reads the same width
    widths = {name: _n_features(step, f"{where}.steps[{name!r}]") for name, step in steps}  # repr: file text
    if len(set(widths.values())) != 1:
        raise _refuse(where, f"its steps disagree on the number of features ({widths})")


def _check_imputer(imp: Any, where: str) -> None:
    _array(imp, "statistics_", where, shape=(_n_features(imp, where),), kind="f", finite=True)
    if getattr(imp, "indicator_", None) is not None or getattr(imp, "add_indicator", False):
        raise _refuse(where, "a missing-value indicator adds columns; the project's pipelines have none")


def _check_scaler(scaler: Any, where: str) -> None:
    n = _n_features(scaler, where)
    for attr in ("mean_", "var_", "scale_"):
        _array(scaler, attr, where, shape=(n,), kind="f", finite=True)
    if np.any(scaler.scale_ <= 0):
        raise _refuse(where, "scale_ holds a value that is not positive")


# ------------------------------------------------------------------------------------------------- forests, trees


def _check_forest(forest: Any, where: str) -> None:
    n, n_classes = _n_features(forest, where), _classes(forest, where)
    if getattr(forest, "n_outputs_", None) != 1 or getattr(forest, "n_classes_", None) != n_classes:
        raise _refuse(where, "n_outputs_/n_classes_ do not describe one output of classes_")
    trees = getattr(forest, "estimators_", None)
    if not isinstance(trees, list) or not trees:
        raise _refuse(where, "estimators_ is not a non-empty list")
    for i, tree in enumerate(trees):
        at = f"{where}.estimators_[{i}]"
        if _name(tree) != "sklearn.tree._classes.DecisionTreeClassifier" or not hasattr(tree, "tree_"):
            raise _refuse(at, f"{_name(tree)} is not a fitted decision tree")
        if _n_features(tree, at) != n or _classes(tree, at) != n_classes:
            raise _refuse(at, f"reads {tree.n_features_in_} features of {len(tree.classes_)} classes; "
                              f"the forest {n} of {n_classes}")


def _check_decision_tree(est: Any, where: str) -> None:
    if not hasattr(est, "tree_"):  # the forest's unfitted template (estimator): never asked to predict
        if any(hasattr(est, a) for a in ("classes_", "n_features_in_")):
            raise _refuse(where, "a fitted decision tree without tree_")
        return
    n, n_classes = _n_features(est, where), _classes(est, where)
    tree = _instance(est, "tree_", where, "sklearn.tree._tree.Tree")
    if tree.n_features != n or tree.n_outputs != 1 or getattr(est, "n_outputs_", None) != 1 \
            or tree.max_n_classes != n_classes or list(tree.n_classes) != [n_classes]:
        raise _refuse(f"{where}.tree_", f"describes {tree.n_features} features, {tree.n_outputs} outputs, "
                                        f"{list(tree.n_classes)} classes; the estimator {n}, 1, [{n_classes}]")


def _check_tree(tree: Any, where: str) -> None:
    # node_count sizes every array sklearn builds from the node buffer, which holds capacity nodes:
    # check it before reading any of them.
    count, capacity = tree.node_count, tree.capacity
    if not 1 <= count <= capacity:
        raise _refuse(where, f"node_count {count} is outside 1..{capacity} (the nodes stored)")
    state = tree.__getstate__()
    nodes, values = state["nodes"], state["values"]
    left, right = nodes["left_child"].astype(np.int64), nodes["right_child"].astype(np.int64)
    index = np.arange(count)
    leaf = left == TREE_LEAF
    if np.any(leaf != (right == TREE_LEAF)):
        raise _refuse(where, f"node {int(np.flatnonzero(leaf != (right == TREE_LEAF))[0])} has one child")
    # Nodes are stored parent first, so every child's index is above its parent's: no cycles, no escape.
    bad = ~leaf & ~((left > index) & (left < count) & (right > index) & (right < count))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise _refuse(where, f"node {i} has children {left[i]}, {right[i]}: outside {i + 1}..{count - 1}")
    feature, threshold = nodes["feature"][~leaf], nodes["threshold"][~leaf]
    if np.any((feature < 0) | (feature >= tree.n_features)):
        raise _refuse(where, f"a split reads feature {int(feature[(feature < 0) | (feature >= tree.n_features)][0])}"
                             f", outside 0..{tree.n_features - 1}")
    if not np.all(np.isfinite(threshold)):
        raise _refuse(where, "a split threshold is not finite")
    if values.shape != (count, tree.n_outputs, tree.max_n_classes) or not np.all(np.isfinite(values)):
        raise _refuse(where, f"value has shape {values.shape}, expected "
                             f"{(count, tree.n_outputs, tree.max_n_classes)} finite values")


# ------------------------------------------------------------------------------------------------- linear, SVM


def _check_logreg(lr: Any, where: str) -> None:
    n, n_classes = _n_features(lr, where), _classes(lr, where)
    rows = 1 if n_classes == 2 else n_classes
    _array(lr, "coef_", where, shape=(rows, n), kind="f", finite=True)
    _array(lr, "intercept_", where, shape=(rows,), kind="f", finite=True)


def _check_calibrated_cv(cal: Any, where: str) -> None:
    n, n_classes = _n_features(cal, where), _classes(cal, where)
    fitted = getattr(cal, "calibrated_classifiers_", None)
    if not isinstance(fitted, list) or not fitted:
        raise _refuse(where, "calibrated_classifiers_ is not a non-empty list")
    for i, one in enumerate(fitted):
        at = f"{where}.calibrated_classifiers_[{i}]"
        if _name(one) != "sklearn.calibration._CalibratedClassifier":
            raise _refuse(at, f"{_name(one)} is not a calibrated classifier")
        est = getattr(one, "estimator", None)
        if not hasattr(est, "support_vectors_") or _n_features(est, f"{at}.estimator") != n \
                or _classes(one, at, "classes") != n_classes:
            raise _refuse(at, f"its estimator is not a fitted SVC of {n} features and {n_classes} classes")


def _check_calibrated(one: Any, where: str) -> None:
    n_classes = _classes(one, where, "classes")
    est = getattr(one, "estimator", None)
    if _name(est) != "sklearn.svm._classes.SVC" or not hasattr(est, "support_vectors_"):
        raise _refuse(where, f"estimator {_name(est)} is not a fitted SVC")
    if _classes(est, f"{where}.estimator") != n_classes:
        raise _refuse(where, "its estimator has another number of classes")
    calibrators = getattr(one, "calibrators", None)
    if not isinstance(calibrators, list) or len(calibrators) != (1 if n_classes == 2 else n_classes):
        raise _refuse(where, f"calibrators is not a list of one calibrator per class ({n_classes} classes)")
    if getattr(one, "method", None) != "sigmoid":
        raise _refuse(where, f"method {getattr(one, 'method', None)!r} is not 'sigmoid'")


def _check_sigmoid(sig: Any, where: str) -> None:
    _real(getattr(sig, "a_", None), "a_", where)
    _real(getattr(sig, "b_", None), "b_", where)


def _check_svc(svc: Any, where: str) -> None:
    if not hasattr(svc, "support_vectors_"):  # CalibratedClassifierCV's unfitted template (estimator)
        if any(hasattr(svc, a) for a in ("classes_", "n_features_in_", "_n_support", "dual_coef_")):
            raise _refuse(where, "a fitted SVC without support_vectors_")
        return
    n, n_classes = _n_features(svc, where), _classes(svc, where)
    if svc.kernel not in SVM_KERNELS or getattr(svc, "_impl", "c_svc") != "c_svc" or svc._sparse is not False:
        raise _refuse(where, f"kernel {svc.kernel!r} (dense c_svc with {', '.join(SVM_KERNELS)} only)")
    # libsvm splits support_vectors_ by _n_support counts and reads dual_coef_ and intercept_ per
    # class pair without checking any length.
    sv = _array(svc, "support_vectors_", where, shape=(None, n), kind="f", finite=True)
    n_sv, pairs = sv.shape[0], n_classes * (n_classes - 1) // 2
    counts = _array(svc, "_n_support", where, shape=(n_classes,), kind="i")
    if np.any(counts < 0) or int(counts.sum()) != n_sv:
        raise _refuse(where, f"_n_support {counts.tolist()} does not add up to the {n_sv} support vectors")
    _array(svc, "support_", where, shape=(n_sv,), kind="i")
    for attr in ("_dual_coef_", "dual_coef_"):
        _array(svc, attr, where, shape=(n_classes - 1, n_sv), kind="f", finite=True)
    for attr in ("_intercept_", "intercept_"):
        _array(svc, attr, where, shape=(pairs,), kind="f", finite=True)
    for attr in ("_probA", "_probB"):
        if _array(svc, attr, where, ndim=1, kind="f", finite=True).size not in (0, pairs):
            raise _refuse(where, f"{attr} has {getattr(svc, attr).size} values, expected 0 or {pairs}")
    if _real(svc._gamma, "_gamma", where) <= 0 or _real(svc.cache_size, "cache_size", where) <= 0:
        raise _refuse(where, "_gamma and cache_size must be positive")
    _real(svc.coef0, "coef0", where)
    _int(svc, "degree", where, high=100)


# ------------------------------------------------------------------------------------------- gradient boosting


def _check_hgb(hgb: Any, where: str) -> None:
    n, n_classes = _n_features(hgb, where), _classes(hgb, where)
    per_iter = 1 if n_classes == 2 else n_classes
    if getattr(hgb, "_n_features", None) != n or getattr(hgb, "n_trees_per_iteration_", None) != per_iter:
        raise _refuse(where, f"_n_features/n_trees_per_iteration_ do not fit {n} features of {n_classes} classes")
    # The project never declares categorical features; a categorical split would index bitsets.
    if getattr(hgb, "is_categorical_", None) is not None or getattr(hgb, "_preprocessor", None) is not None:
        raise _refuse(where, "categorical features or a preprocessor, which the project never fits")
    _array(hgb, "_baseline_prediction", where, shape=(1, per_iter), kind="f", finite=True)
    encoder = _instance(hgb, "_label_encoder", where, "sklearn.preprocessing._label.LabelEncoder")
    if _classes(encoder, f"{where}._label_encoder") != n_classes or not np.array_equal(encoder.classes_, hgb.classes_):
        raise _refuse(where, "_label_encoder holds other classes than classes_")
    mapper = _instance(hgb, "_bin_mapper", where,
                       "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper")
    n_bins = _array(mapper, "n_bins_non_missing_", f"{where}._bin_mapper", shape=(n,), kind="u")
    predictors = getattr(hgb, "_predictors", None)
    if not isinstance(predictors, list) or not predictors:
        raise _refuse(where, "_predictors is not a non-empty list")
    for i, iteration in enumerate(predictors):
        if not isinstance(iteration, list) or len(iteration) != per_iter:
            raise _refuse(where, f"_predictors[{i}] is not a list of {per_iter} trees")
        for k, predictor in enumerate(iteration):
            at = f"{where}._predictors[{i}][{k}]"
            if _name(predictor) != "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor":
                raise _refuse(at, f"{_name(predictor)} is not a TreePredictor")
            _check_tree_predictor(predictor, at)
            nodes = predictor.nodes
            split = nodes["is_leaf"] == 0
            feature = nodes["feature_idx"][split]
            if np.any((feature < 0) | (feature >= n)):
                raise _refuse(at, f"a split reads feature {int(feature[(feature < 0) | (feature >= n)][0])}, "
                                  f"outside 0..{n - 1}")
            if np.any(nodes["bin_threshold"][split] >= n_bins[feature]):
                raise _refuse(at, "a split's bin_threshold is beyond its feature's bins")


def _check_tree_predictor(predictor: Any, where: str) -> None:
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = _array(predictor, "nodes", where, ndim=1)
    if nodes.dtype != PREDICTOR_RECORD_DTYPE or nodes.size == 0:
        raise _refuse(where, f"nodes has dtype {nodes.dtype} and {nodes.size} entries")
    count, index = nodes.size, np.arange(nodes.size)
    is_leaf = nodes["is_leaf"]
    if np.any(is_leaf > 1):
        raise _refuse(where, "is_leaf holds a value other than 0 and 1")
    split = is_leaf == 0
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    # parent first: a child's index is above its parent's, so the walk ends at a leaf
    bad = split & ~((left > index) & (left < count) & (right > index) & (right < count))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise _refuse(where, f"node {i} has children {left[i]}, {right[i]}: outside {i + 1}..{count - 1}")
    if np.any(nodes["is_categorical"] != 0):
        raise _refuse(where, "a categorical split (the project fits no categorical features)")
    if np.any(np.isnan(nodes["num_threshold"][split])) or not np.all(np.isfinite(nodes["value"][~split])):
        raise _refuse(where, "a threshold is NaN or a leaf value is not finite")
    for attr in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
        _array(predictor, attr, where, shape=(0, 8), kind="u")


def _check_bin_mapper(mapper: Any, where: str) -> None:
    n_bins = _int(mapper, "n_bins", where, low=3, high=256)
    counts = _array(mapper, "n_bins_non_missing_", where, ndim=1, kind="u")
    if np.any(counts > n_bins - 1) or _int(mapper, "missing_values_bin_idx_", where) != n_bins - 1:
        raise _refuse(where, f"bins beyond n_bins {n_bins}")
    thresholds = getattr(mapper, "bin_thresholds_", None)
    if not isinstance(thresholds, list) or len(thresholds) != counts.size:
        raise _refuse(where, f"bin_thresholds_ is not a list of {counts.size} arrays")
    for f, t in enumerate(thresholds):
        if not isinstance(t, np.ndarray) or t.ndim != 1 or t.dtype.kind != "f" or t.size != max(int(counts[f]) - 1, 0) \
                or np.any(np.isnan(t)) or np.any(np.diff(t) < 0):
            raise _refuse(where, f"bin_thresholds_[{f}] is not {max(int(counts[f]) - 1, 0)} sorted numbers")
    categorical = _array(mapper, "is_categorical_", where, shape=(counts.size,), kind="u")
    if np.any(categorical != 0) or getattr(mapper, "known_categories", None) is not None:
        raise _refuse(where, "categorical features (the project fits none)")


def _check_label_encoder(enc: Any, where: str) -> None:
    _array(enc, "classes_", where, ndim=1)


# ---------------------------------------------------------------------------------------------------- neighbours


def _check_knn(knn: Any, where: str) -> None:
    n, n_classes = _n_features(knn, where), _classes(knn, where)
    n_fit = _int(knn, "n_samples_fit_", where, low=1)
    _array(knn, "_fit_X", where, shape=(n_fit, n), kind="f", finite=True)
    # _y holds class indices that compiled code (ArgKminClassMode) uses to index per-class counts
    y = _array(knn, "_y", where, shape=(n_fit,), kind="i")
    if np.any((y < 0) | (y >= n_classes)):
        raise _refuse(where, f"_y holds a class index outside 0..{n_classes - 1}")
    _int(knn, "n_neighbors", where, low=1, high=n_fit)
    if getattr(knn, "outputs_2d_", None) is not False or getattr(knn, "weights", None) not in ("uniform", "distance"):
        raise _refuse(where, "outputs_2d_/weights are not those of a single-output classifier")
    method = getattr(knn, "_fit_method", None)
    if method not in NEIGHBOUR_METHODS:
        raise _refuse(where, f"_fit_method {method!r} is not one of {', '.join(NEIGHBOUR_METHODS)}")
    tree = getattr(knn, "_tree", None)
    if method == "brute":
        if tree is not None:
            raise _refuse(where, "a brute-force model with a tree")
        return
    expected = {"kd_tree": "sklearn.neighbors._kd_tree.KDTree", "ball_tree": "sklearn.neighbors._ball_tree.BallTree"}
    if _name(tree) != expected[method] or tree.__getstate__()[0].shape != (n_fit, n):
        raise _refuse(where, f"_tree is not a {method} over the {n_fit}x{n} fitted samples")


def _check_binary_tree(tree: Any, where: str) -> None:
    """KDTree/BallTree: nodes form a complete binary tree (children 2i+1, 2i+2) over a permutation."""
    data, idx, node_data, bounds, leaf_size, n_levels, n_nodes, *_rest, metric, weights = tree.__getstate__()
    if not (isinstance(data, np.ndarray) and data.ndim == 2 and data.dtype == np.float64 and data.size
            and np.all(np.isfinite(data))):
        raise _refuse(where, "data is not a finite 2-D float64 array")
    n, d = data.shape
    if not isinstance(idx, np.ndarray) or idx.shape != (n,) or idx.dtype.kind != "i" \
            or not np.array_equal(np.sort(idx), np.arange(n)):
        raise _refuse(where, f"idx_array is not a permutation of range({n})")
    if not 1 <= n_levels <= 64 or n_nodes != 2 ** n_levels - 1 or leaf_size < 1:
        raise _refuse(where, f"{n_nodes} nodes on {n_levels} levels (a complete tree has 2**levels - 1)")
    if not isinstance(node_data, np.ndarray) or node_data.shape != (n_nodes,) \
            or node_data.dtype.names != ("idx_start", "idx_end", "is_leaf", "radius"):
        raise _refuse(where, f"node_data is not {n_nodes} node records")
    start, end, is_leaf = node_data["idx_start"], node_data["idx_end"], node_data["is_leaf"]
    if np.any((start < 0) | (start > end) | (end > n)) or np.any((is_leaf != 0) & (is_leaf != 1)):
        raise _refuse(where, f"node_data holds a node range outside 0..{n}")
    inner = np.flatnonzero(is_leaf == 0)
    if inner.size and (2 * int(inner.max()) + 2 >= n_nodes or np.any(start[inner] == end[inner])):
        raise _refuse(where, "an inner node has no children inside the tree")
    if not np.all(np.isfinite(node_data["radius"])) or np.any(node_data["radius"] < 0):
        raise _refuse(where, "a node radius is negative or not finite")
    rows = 2 if _name(tree) == "sklearn.neighbors._kd_tree.KDTree" else 1
    if not isinstance(bounds, np.ndarray) or bounds.shape != (rows, n_nodes, d) or not np.all(np.isfinite(bounds)):
        raise _refuse(where, f"node_bounds is not {rows}x{n_nodes}x{d} finite numbers")
    if weights is not None and (not isinstance(weights, np.ndarray) or weights.shape != (n,)
                                or not np.all(np.isfinite(weights))):
        raise _refuse(where, f"sample_weight is not {n} finite numbers")
    if _name(metric) not in CHECKS or "_dist_metrics" not in _name(metric):
        raise _refuse(where, f"distance {_name(metric)} is not one the project uses")


def _check_distance(metric: Any, where: str) -> None:
    p, vec, _mat = metric.__getstate__()
    expected = {"EuclideanDistance64": 2.0, "ManhattanDistance64": 1.0, "ChebyshevDistance64": np.inf}
    name = type(metric).__qualname__
    if name in expected:
        if p != expected[name]:
            raise _refuse(where, f"p is {p!r}, expected {expected[name]}")
    elif not (np.isfinite(p) and p >= 1) or np.asarray(vec).size != 0:
        # a weighted Minkowski distance reads one weight per feature: the project never sets weights
        raise _refuse(where, f"Minkowski distance with p={p!r} and {np.asarray(vec).size} weights")


def _no_arrays(_obj: Any, _where: str) -> None:
    """Parameters and scalars only (losses, links, a random generator): nothing compiled indexes with them."""


#: One check per class a model file may hold (models.pipelines); tests/test_model_arrays.py keeps them equal.
CHECKS: dict[str, Callable[[Any, str], None]] = {
    "sklearn.pipeline.Pipeline": _check_pipeline,
    "sklearn.impute._base.SimpleImputer": _check_imputer,
    "sklearn.preprocessing._data.StandardScaler": _check_scaler,
    "sklearn.ensemble._forest.RandomForestClassifier": _check_forest,
    "sklearn.tree._classes.DecisionTreeClassifier": _check_decision_tree,
    "sklearn.tree._tree.Tree": _check_tree,
    "sklearn.linear_model._logistic.LogisticRegression": _check_logreg,
    "sklearn.calibration.CalibratedClassifierCV": _check_calibrated_cv,
    "sklearn.calibration._CalibratedClassifier": _check_calibrated,
    "sklearn.calibration._SigmoidCalibration": _check_sigmoid,
    "sklearn.svm._classes.SVC": _check_svc,
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier": _check_hgb,
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper": _check_bin_mapper,
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": _check_tree_predictor,
    "sklearn.preprocessing._label.LabelEncoder": _check_label_encoder,
    "sklearn._loss.loss.HalfBinomialLoss": _no_arrays,
    "sklearn._loss._loss.CyHalfBinomialLoss": _no_arrays,
    "sklearn._loss.link.LogitLink": _no_arrays,
    "sklearn._loss.loss.HalfMultinomialLoss": _no_arrays,
    "sklearn._loss._loss.CyHalfMultinomialLoss": _no_arrays,
    "sklearn._loss.link.MultinomialLogit": _no_arrays,
    "sklearn._loss.link.Interval": _no_arrays,
    "numpy.random._generator.Generator": _no_arrays,
    "numpy.random.PCG64": _no_arrays,
    "numpy.random._pcg64.PCG64": _no_arrays,
    "sklearn.neighbors._classification.KNeighborsClassifier": _check_knn,
    "sklearn.neighbors._kd_tree.KDTree": _check_binary_tree,
    "sklearn.neighbors._ball_tree.BallTree": _check_binary_tree,
    "sklearn.metrics._dist_metrics.EuclideanDistance64": _check_distance,
    "sklearn.metrics._dist_metrics.ManhattanDistance64": _check_distance,
    "sklearn.metrics._dist_metrics.MinkowskiDistance64": _check_distance,
    "sklearn.metrics._dist_metrics.ChebyshevDistance64": _check_distance,
}
_PLAIN = (str, bytes, bool, int, float, complex, type(None), np.generic, np.dtype)


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    if _name(obj) in ("sklearn.neighbors._kd_tree.KDTree", "sklearn.neighbors._ball_tree.BallTree"):
        # Python subclasses of a Cython class: the distance lives in the C part, not in __dict__
        yield ".dist_metric", obj.__getstate__()[11]
    if hasattr(obj, "__dict__"):
        yield from ((f".{k}", v) for k, v in vars(obj).items())
    # Tree, distances, Cython losses, Generator: no Python attributes to walk


def check_fitted_model(model: Any, where: str = "model") -> None:
    """Run every object's :data:`CHECKS` entry, parents first; ModelArraysError (one line) on the first fault."""
    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(model, where)]
    while stack:
        obj, at = stack.pop()
        if isinstance(obj, _PLAIN) or isinstance(obj, type) or id(obj) in seen:
            continue
        seen.add(id(obj))  # the model keeps every object alive, so ids are not reused during the walk
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                stack.extend((v, f"{at}[{i}]") for i, v in enumerate(obj.ravel()))
            continue
        if isinstance(obj, (list, tuple)):
            stack.extend((v, f"{at}[{i}]") for i, v in reversed(list(enumerate(obj))))
            continue
        if isinstance(obj, dict):
            stack.extend((v, f"{at}[{k!r}]") for k, v in obj.items())
            continue
        check = CHECKS.get(_name(obj))
        if check is None:
            raise _refuse(at, f"{_name(obj)} has no array check (models.fitted_checks.CHECKS)")
        check(obj, at)
        stack.extend((v, at + k) for k, v in _children(obj))
