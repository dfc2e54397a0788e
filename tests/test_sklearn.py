"""cyprop.sklearn: scikit-learn's own estimator checks, and drop-in behaviour."""
import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from cyprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


@parametrize_with_checks([MLPClassifier(max_iter=100, random_state=0),
                          MLPRegressor(max_iter=100, random_state=0),
                          MLPClassifier(solver="lbfgs", max_iter=100, random_state=0),
                          MLPRegressor(solver="lbfgs", max_iter=100, random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def _digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, random_state=0)


def test_same_constructor_parameters_as_sklearn():
    ours = set(MLPClassifier().get_params())
    theirs = set(SkMLPClassifier().get_params())
    assert theirs <= ours and ours - theirs == {"dtype", "n_threads"}
    for name, value in SkMLPClassifier().get_params().items():
        assert MLPClassifier().get_params()[name] == value, name


def test_sgd_follows_sklearn_trajectory():
    """With SGD + constant learning rate the update rules coincide exactly."""
    Xtr, Xte, ytr, yte = _digits()
    kw = dict(hidden_layer_sizes=(32,), solver="sgd", random_state=0, max_iter=15,
              learning_rate_init=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**kw).fit(Xtr, ytr)
        theirs = SkMLPClassifier(**kw).fit(Xtr, ytr)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(ours.predict(Xte), theirs.predict(Xte))


def test_digits_accuracy_close_to_sklearn():
    Xtr, Xte, ytr, yte = _digits()
    kw = dict(hidden_layer_sizes=(64,), random_state=0, max_iter=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**kw).fit(Xtr, ytr).score(Xte, yte)
        theirs = SkMLPClassifier(**kw).fit(Xtr, ytr).score(Xte, yte)
    assert ours >= theirs - 0.01
    assert ours > 0.95


def test_fitted_attributes_like_sklearn():
    Xtr, _, ytr, _ = _digits()
    clf = MLPClassifier(hidden_layer_sizes=(20, 10), max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(Xtr, ytr)
    assert [W.shape for W in clf.coefs_] == [(64, 20), (20, 10), (10, 10)]
    assert [b.shape for b in clf.intercepts_] == [(20,), (10,), (10,)]
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 5 and clf.loss_ == clf.loss_curve_[-1]
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 10 and clf.out_activation_ == "softmax"
    assert clf.t_ == 5 * len(Xtr) and clf.n_features_in_ == 64
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    proba = clf.predict_proba(Xtr[:7])
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(clf.predict_log_proba(Xtr[:7]), np.log(proba))


def test_binary_and_string_labels():
    X, y = make_classification(200, 6, random_state=0)
    labels = np.array(["neg", "pos"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(X, labels)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    assert clf.coefs_[-1].shape == (16, 1)
    assert set(clf.predict(X)) <= {"neg", "pos"} and clf.score(X, labels) > 0.9
    assert clf.predict_proba(X).shape == (200, 2)


def test_multilabel():
    X, _ = make_classification(300, 8, random_state=1)
    Y = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] < 0.5], axis=1).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=500, random_state=0).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    assert clf.predict(X).shape == (300, 3) and clf.score(X, Y) > 0.8


def test_regressor_single_and_multi_output():
    X, y = make_regression(300, 5, noise=0.1, random_state=0)
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=500, random_state=0,
                       learning_rate_init=0.01).fit(X, y / 100)
    assert reg.predict(X).shape == (300,) and reg.score(X, y / 100) > 0.95
    Y = np.stack([y, -y], axis=1) / 100
    reg2 = MLPRegressor(hidden_layer_sizes=(32,), max_iter=500, random_state=0,
                        learning_rate_init=0.01).fit(X, Y)
    assert reg2.predict(X).shape == (300, 2) and reg2.score(X, Y) > 0.95


def test_float32_input_trains_in_float32():
    Xtr, Xte, ytr, yte = _digits()
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(Xtr.astype(np.float32), ytr)
    assert clf.coefs_[0].dtype == np.float32 and clf.score(Xte, yte) > 0.9
    forced = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert forced.fit(Xtr, ytr).coefs_[0].dtype == np.float32


@pytest.mark.parametrize("solver, learning_rate", [("sgd", "invscaling"), ("sgd", "adaptive"),
                                                   ("adam", "constant")])
def test_schedules_and_early_stopping_like_sklearn(solver, learning_rate):
    Xtr, Xte, ytr, yte = _digits()
    kw = dict(hidden_layer_sizes=(32,), solver=solver, learning_rate=learning_rate,
              early_stopping=True, max_iter=200, random_state=0,
              learning_rate_init=0.05 if solver == "sgd" else 0.001)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(**kw).fit(Xtr, ytr)
        ref = SkMLPClassifier(**kw).fit(Xtr, ytr)
    assert clf.best_loss_ is None and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    if solver == "sgd":  # sklearn's update rule exactly, schedules included
        np.testing.assert_allclose(clf.loss_curve_, ref.loss_curve_, rtol=1e-7)
        np.testing.assert_allclose(clf.validation_scores_, ref.validation_scores_)
    assert abs(clf.score(Xte, yte) - ref.score(Xte, yte)) < 0.03
    assert abs(clf.n_iter_ - ref.n_iter_) <= max(5, ref.n_iter_ // 4)


def test_partial_fit_and_warm_start():
    Xtr, Xte, ytr, yte = _digits()
    clf = MLPClassifier(hidden_layer_sizes=(32,), random_state=0, learning_rate_init=0.01)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(Xtr, ytr)
    for _ in range(20):
        clf.partial_fit(Xtr, ytr, classes=np.arange(10))
    assert clf.n_iter_ == 20 and clf.score(Xte, yte) > 0.9
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(Xtr[:5], np.full(5, 11))
    warm = MLPClassifier(hidden_layer_sizes=(32,), max_iter=3, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.fit(Xtr, ytr)
        first = warm.coefs_[0].copy()
        warm.fit(Xtr, ytr)
    assert warm.n_iter_ == 6 and not np.allclose(first, warm.coefs_[0])


def test_pipeline_grid_search_cross_val_clone_pickle():
    X, y = make_classification(150, 5, random_state=0)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=200, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
        grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)]}, cv=3)
        grid.fit(X, y)
    assert scores.mean() > 0.8 and grid.best_params_
    fitted = grid.best_estimator_
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    clf = restored[-1]
    clf.partial_fit(StandardScaler().fit_transform(X), y)  # training continues after unpickling
    assert clone(clf).get_params() == clf.get_params()


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(solver="newton"), ValueError, "solver"),
    (dict(hidden_layer_sizes=(0,)), ValueError, "hidden_layer_sizes"),
    (dict(activation="gelu"), ValueError, "activation"),
    (dict(alpha=-1.0), ValueError, "alpha"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(learning_rate="cosine"), ValueError, "learning_rate"),
    (dict(max_iter=0), ValueError, "max_iter"),
    (dict(validation_fraction=1.0), ValueError, "validation_fraction"),
    (dict(n_threads=0), ValueError, "n_threads"),
])
def test_bad_hyperparameters(kwargs, exc, match):
    X, y = make_classification(30, 4, random_state=0)
    with pytest.raises(exc, match=match):
        MLPClassifier(**kwargs).fit(X, y)


def test_unfitted_and_bad_input():
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(np.zeros((2, 3)))
    X, y = make_classification(30, 3, n_informative=2, n_redundant=0, random_state=0)
    clf = MLPClassifier(max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPClassifier().fit(X, np.zeros(30))


# ------------------------------------------------------------------ solver="lbfgs"
def test_lbfgs_follows_sklearns_trajectory_and_accuracy():
    from sklearn.neural_network import MLPClassifier as SkMLP
    Xtr, Xte, ytr, yte = _digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # the same objective, gradient and start: the same iterates, up to rounding
        ours = MLPClassifier(solver="lbfgs", max_iter=15, random_state=0).fit(Xtr, ytr)
        theirs = SkMLP(solver="lbfgs", max_iter=15, random_state=0).fit(Xtr, ytr)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    ours = MLPClassifier(solver="lbfgs", random_state=0).fit(Xtr, ytr)
    theirs = SkMLP(solver="lbfgs", random_state=0).fit(Xtr, ytr)
    assert abs(ours.score(Xte, yte) - theirs.score(Xte, yte)) <= 0.005
    assert ours.n_iter_ == theirs.n_iter_ and isinstance(ours.loss_, float)
    assert not hasattr(ours, "loss_curve_") and not hasattr(theirs, "loss_curve_")


def test_lbfgs_regressor_r2_as_sklearns():
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPRegressor as SkMLP
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    # A problem where the optimum is well defined (10 units, alpha=1 on
    # standardized targets): the two fits agree to ~1e-4 in R2 on every seed.
    # 100 units on 331 rows interpolate the targets, and which of the many
    # minima L-BFGS reaches then depends on the BLAS's rounding (scikit-learn
    # against itself moved by 0.05 in R2 between NumPy/SciPy releases).
    for seed in range(3):
        kw = dict(solver="lbfgs", hidden_layer_sizes=(10,), alpha=1.0, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours, theirs = MLPRegressor(**kw).fit(Xtr, ytr), SkMLP(**kw).fit(Xtr, ytr)
        assert abs(ours.score(Xte, yte) - theirs.score(Xte, yte)) <= 0.01
        assert ours.score(Xte, yte) > 0.05


def test_lbfgs_warns_stops_and_has_no_partial_fit():
    X, y = make_classification(60, 5, random_state=0)
    clf = MLPClassifier(solver="lbfgs", max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        clf.fit(X, y)
    assert clf.n_iter_ == 3
    assert not hasattr(clf, "partial_fit")
    assert hasattr(MLPClassifier(), "partial_fit")
    with pytest.warns(ConvergenceWarning):
        MLPRegressor(solver="lbfgs", max_fun=5, random_state=0).fit(X, y.astype(float))


def test_lbfgs_then_adam_warm_start_and_pickle():
    X, y = make_classification(80, 5, random_state=1)
    clf = MLPClassifier(solver="lbfgs", max_iter=20, random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        restored = pickle.loads(pickle.dumps(clf))
        np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
        clf.set_params(solver="adam", max_iter=5).fit(X, y)    # continues with adam
    assert len(clf.loss_curve_) == 5


def test_lbfgs_threads_give_the_same_fit():
    X, y = make_classification(300, 20, random_state=2)
    fits = [MLPClassifier(solver="lbfgs", hidden_layer_sizes=(64,), max_iter=30, n_threads=n,
                          random_state=0).fit(X, y) for n in (1, 2)]
    for a, b in zip(fits[0].coefs_, fits[1].coefs_):
        np.testing.assert_array_equal(a, b)
