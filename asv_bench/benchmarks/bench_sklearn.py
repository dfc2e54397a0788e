"""cyprop.sklearn.MLPClassifier on scikit-learn's digits: fit time and accuracy."""
import warnings

from .common import THREADS, BesideABusyProcess, use_threads


class DigitsMLPClassifier:
    """scikit-learn's defaults (one hidden layer of 100, batch 200), 50 epochs."""

    params = (THREADS,)
    param_names = ["threads"]
    timeout = 120
    hyperparameters = dict(max_iter=50)

    def setup(self, threads):
        try:
            from sklearn.datasets import load_digits
            from sklearn.model_selection import train_test_split
        except ImportError:
            raise NotImplementedError("scikit-learn is not installed")
        use_threads(threads)
        X, y = load_digits(return_X_y=True)
        self.Xtr, self.Xte, self.ytr, self.yte = train_test_split(X / 16.0, y, random_state=0,
                                                                  stratify=y)

    def _fit(self):
        from cyprop.sklearn import MLPClassifier

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return MLPClassifier(random_state=0, **self.hyperparameters).fit(self.Xtr, self.ytr)

    def time_fit(self, threads):
        self._fit()

    def track_test_accuracy(self, threads):
        return float(self._fit().score(self.Xte, self.yte))

    track_test_accuracy.unit = "accuracy"


class DigitsMLPClassifierSmallBatch(DigitsMLPClassifier):
    """Two hidden layers of 128 at batch 32, 20 epochs: the estimator loop's per-batch cost."""

    hyperparameters = dict(hidden_layer_sizes=(128, 128), batch_size=32, max_iter=20)


class DigitsFitUnderLoad(BesideABusyProcess):
    """The digits fit beside a busy process (see TrainingStepUnderLoad)."""

    params = (THREADS,)
    param_names = ["threads"]
    timeout = 120

    def setup(self, threads):
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise NotImplementedError("scikit-learn is not installed")
        from cyprop.bench import digits_fit_step

        self.fit = digits_fit_step(threads)
        self.start_load()

    def time_fit(self, threads):
        self.fit()
